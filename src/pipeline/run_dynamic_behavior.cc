// Dynamic behavioural validation (issue 17, the reference's notebook analysis; pipeline/run.h):
// each MEG model's RDM at every timepoint against the human behaviour RDM, on the MEG alignment's
// out-of-sample design, and the MEG models collapsed over time against plain CLIP.
//
// Dimension legend: M models, T timepoints, n objects of the design, m = n (n - 1) / 2, K folds,
// n_k / m_k objects / pairs of fold k, B bootstrap samples.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "pipeline/run.h"
#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "stats/bootstrap.h"

namespace cliphba::pipeline {

namespace {

constexpr uint64_t kDynamicBehaviorStream = 0xC6ull << 56;  // | fold << 40 | sample

double Nan() { return std::numeric_limits<double>::quiet_NaN(); }

// Spearman, NaN where it is undefined (a constant input, e.g. a degenerate model RDM).
double SpearmanOrNan(const at::Tensor& a, const at::Tensor& b) {
  auto constant = [](const at::Tensor& x) {
    return x.numel() < 2 || (x.max() == x.min()).item<bool>();
  };
  return constant(a) || constant(b) ? Nan() : rsa::Spearman(a, b);
}

}  // namespace

HumanRdm HumanRdmOn(const config::Config& cfg, const std::vector<std::string>& names) {
  const config::TrainBehaviorOptions& b = cfg.train_behavior;
  HumanRdm out;
  const int64_t n = int64_t(names.size());
  // Names of `names` missing from `have`, as a reason to skip (not an error of the run).
  auto missing = [&](const std::vector<std::string>& have, const std::string& source) {
    const std::set<std::string> set(have.begin(), have.end());
    int64_t k = 0;
    std::string first;
    for (const std::string& x : names)
      if (!set.count(x) && k++ == 0) first = x;
    return k == 0 ? std::string()
                  : source + " lacks " + std::to_string(k) + " of the " + std::to_string(n) +
                        " objects of the MEG design (first: " + first + ")";
  };
  if (!b.reference_rdm.empty()) {
    const std::vector<std::string> rdm_names = io::ReadNameList(b.reference_rdm_names);
    const at::Tensor square = io::ReadNpy(b.reference_rdm).to(at::kDouble);
    if (square.dim() != 2 || square.size(0) != int64_t(rdm_names.size()) ||
        square.size(1) != int64_t(rdm_names.size()))
      throw DataError(b.reference_rdm + " (train.behavior.reference_rdm): expected a square RDM "
                      "with one row per name of " + b.reference_rdm_names);
    rsa::CondenseSquare(square, b.reference_rdm);  // symmetric, zero diagonal, finite (or throws)
    out.source = b.reference_rdm;
    out.problem = missing(rdm_names, b.reference_rdm_names + " (train.behavior.reference_rdm_names)");
    if (!out.problem.empty()) return out;
    const std::vector<int64_t> rows =
        meg::IndicesOfNames(rdm_names, names, b.reference_rdm_names, "meg.rdm's objects");
    const at::Tensor idx = at::tensor(rows, at::kLong);
    const at::Tensor sub = square.index_select(0, idx).index_select(1, idx);
    const at::Tensor iu = at::triu_indices(n, n, 1);
    out.rdm = sub.index({iu[0], iu[1]}).contiguous();
  } else if (!b.targets_csv.empty()) {
    out.source = "targets: " + b.targets_csv;
    if (!std::filesystem::exists(b.targets_csv)) {
      out.problem = b.targets_csv + " (train.behavior.targets_csv) does not exist";
      return out;
    }
    const io::EmbeddingTable table = io::ReadEmbeddingCsv(b.targets_csv);
    out.problem = missing(table.names, b.targets_csv + " (train.behavior.targets_csv)");
    if (!out.problem.empty()) return out;
    const std::vector<int64_t> rows =
        meg::IndicesOfNames(table.names, names, b.targets_csv, "meg.rdm's objects");
    const at::Tensor x = table.values.index_select(0, at::tensor(rows, at::kLong));
    out.rdm = rsa::ComputeRdm(x, rsa::RdmMetric::kCorrelation).values.contiguous();
  }
  return out;
}

void WriteDynamicBehavior(io::ResultsStore* store, const std::vector<std::string>& model_names,
                          const std::vector<at::Tensor>& model_rdms, const FoldPairs& folds,
                          const HumanRdm& human, const std::string& meg_init,
                          int64_t behavior_heldout, const at::Tensor& times_ms,
                          const config::RunOptions& run, const AlignmentObjects& objects) {
  const int64_t M = int64_t(model_names.size()), K = int64_t(folds.model_pairs.size());
  const int64_t T = times_ms.size(0), B = run.compare_bootstrap_n;
  if (M == 0 || !human.rdm.defined() || K == 0) return;
  const at::Tensor times = times_ms.to(at::kDouble).contiguous();
  const at::Tensor from0 = times >= 0;
  const std::string g = "/compare/dynamic_behavior";

  const at::Tensor t0 = times.index({from0});
  const int64_t clip =
      std::find(model_names.begin(), model_names.end(), "clip") - model_names.begin();  // M: none

  // Per fold: the human sub-RDM, each model's curve on the fold's pairs (rsa::TimeGeneralization
  // of its T rows with the one human row; NaN for a constant human sub-RDM), and each model
  // collapsed over t >= 0 ms with its bootstrap samples (the same resamples for every model).
  at::Tensor curves = at::zeros({M, T}, at::kDouble);
  at::Tensor collapsed = at::zeros({M}, at::kDouble);
  at::Tensor samples = at::zeros({M, std::max<int64_t>(B, 0)}, at::kDouble);  // (M, B)
  const at::Tensor one = at::zeros({1}, at::kDouble);
  for (int64_t k = 0; k < K; ++k) {
    const at::Tensor& pairs = folds.model_pairs[size_t(k)];
    const at::Tensor h = human.rdm.index_select(0, pairs).unsqueeze(0);  // (1, m_k)
    const bool h_constant = (h.max() == h.min()).item<bool>();
    at::Tensor idx;
    if (B > 0)
      idx = stats::ResampleIndices(uint64_t(run.seed),
                                   kDynamicBehaviorStream | (uint64_t(k) << 40), 0, B,
                                   folds.sizes[size_t(k)]);
    for (int64_t i = 0; i < M; ++i) {
      const at::Tensor& rdm = model_rdms[size_t(i)];  // (T, m)
      TORCH_CHECK(rdm.dim() == 2 && rdm.size(0) == T, "WriteDynamicBehavior: rdm (T, m)");
      const at::Tensor rows = rdm.index_select(1, pairs);  // (T, m_k)
      curves[i] += h_constant ? at::full({T}, Nan(), at::kDouble)
                              : rsa::TimeGeneralization(rows, h).select(1, 0) / double(K);
      const at::Tensor x = rows.index({from0}).mean(0).contiguous();  // collapsed (m_k)
      collapsed[i] += SpearmanOrNan(x, h[0]) / double(K);
      if (B > 0)
        samples[i] += stats::BootstrapObjectsBlock(x, h, one, rsa::Comparison::kSpearman, idx)
                          .curves.select(1, 0) / double(K);
    }
  }
  at::Tensor peak = at::full({M}, Nan(), at::kDouble);  // first maximum from 0 ms
  for (int64_t i = 0; i < M; ++i) {
    const at::Tensor c0 = curves[i].index({from0});
    if (c0.numel() > 0 && at::isfinite(c0).all().item<bool>())
      peak[i] = stats::PeakLatency(c0, t0);
  }

  at::Tensor delta = at::full({M}, Nan(), at::kDouble);
  at::Tensor lower = delta.clone(), upper = delta.clone();
  at::Tensor n_valid = at::zeros({M}, at::kLong);
  const bool boot = clip < M && B > 0;
  if (boot) {
    for (int64_t i = 0; i < M; ++i) {
      if (i == clip) continue;
      delta[i] = collapsed[i] - collapsed[clip];
      const at::Tensor d = samples[i] - samples[clip];
      const at::Tensor valid = d.index({at::isfinite(d)});
      n_valid[i] = valid.numel();
      if (valid.numel() > 0) {
        lower[i] = stats::Percentile(valid, 2.5).item<double>();
        upper[i] = stats::Percentile(valid, 97.5).item<double>();
      }
    }
  }

  store->WriteStrings(g + "/models", model_names);
  store->WriteTensor(g + "/spearman", curves);
  store->WriteTensor(g + "/peak_ms", peak);
  store->WriteTensor(g + "/reference_rdm", human.rdm);
  store->WriteTensor(g + "/collapsed", collapsed);
  store->WriteTensor(g + "/collapsed_delta_vs_clip", delta);
  store->WriteTensor(g + "/collapsed_delta_lower", lower);
  store->WriteTensor(g + "/collapsed_delta_upper", upper);
  store->WriteTensor(g + "/collapsed_delta_n_valid", n_valid);
  store->SetAttribute(g, "reference", human.source);
  store->SetAttribute(g, "level", 0.95);
  store->SetAttribute(g, "n_boot", boot ? B : int64_t(0));
  store->SetAttribute(g, "meg_init", meg_init);
  store->SetAttribute(g, "behavior_heldout_objects", behavior_heldout);
  store->SetAttribute(
      g, "definition",
      std::string(
          "dynamic behavioural validation: spearman[i, t] = Spearman of model i's RDM at "
          "timepoint t with the human behaviour RDM (reference_rdm, over the design's objects "
          "in /meg/<model>/alignment's order), mean over folds of each fold's within-fold "
          "pairs, whose MEG-model rows come from fold models that never trained on those "
          "objects' MEG; clip (plain CLIP) and behavior (CLIP-HBA-Behavior) are static, the "
          "same RDM at every timepoint. meg_init: what the MEG models started from; when it is "
          "the behaviour model, they inherited its fine-tune on the behaviour stage's training "
          "objects, so on the objects other than the behaviour_heldout_objects (-1: unknown) "
          "the values are not out of sample for that inherited part, as for behavior itself. "
          "peak_ms: first maximum from 0 ms. collapsed[i]: the model's RDM averaged over t >= 0 "
          "ms, then as above; collapsed_delta_vs_clip with a 95 % percentile bootstrap CI over "
          "the objects of each fold (pairs of distinct resampled objects, the same resamples "
          "for every model, mean over folds; collapsed_delta_n_valid samples used)"));
  WriteObjectsAttributes(store, g, objects);
}

}  // namespace cliphba::pipeline
