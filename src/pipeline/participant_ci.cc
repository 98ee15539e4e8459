// Per-participant peak and AUC CIs of the alignment curves (issue 17; pipeline/run.h): a bootstrap
// over objects within the folds of the out-of-sample design, for each participant's curve with
// the group model and with their own individual model.
//
// Dimension legend: C curves, B bootstrap samples, T timepoints (count of them on this rank),
// K folds, n_k / m_k objects / pairs of fold k, P participants.
#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/log.h"
#include "io/results_store.h"
#include "parallel/collectives.h"
#include "pipeline/run.h"
#include "rsa/compare.h"
#include "stats/bootstrap.h"

namespace cliphba::pipeline {

namespace {

constexpr uint64_t kParticipantCiStream = 0xC7ull << 56;  // | fold << 40 | sample
constexpr double kMaxWork = 4e9;  // pair visits (B x T x pairs x curves) before skipping

}  // namespace

std::vector<stats::CurveCi> ParticipantCis(const std::vector<ParticipantCurve>& curves,
                                           const at::Tensor& meg, const FoldPairs& folds,
                                           int64_t begin, const std::vector<int64_t>& counts,
                                           const at::Tensor& times_ms, int64_t n_boot,
                                           uint64_t seed, const parallel::Comm& comm) {
  const int64_t C = int64_t(curves.size()), K = int64_t(folds.model_pairs.size());
  const int64_t T = times_ms.size(0), B = n_boot, count = meg.size(1);
  const at::Tensor times = times_ms.to(at::kDouble).contiguous();
  const int64_t first = (times < 0).sum().item<int64_t>();  // peak and AUC from 0 ms
  // Every early return depends on arguments equal on every rank (no rank left in a collective).
  if (C == 0 || B < 1 || K == 0 || first == T) return {};
  double pairs = 0;
  for (const at::Tensor& p : folds.model_pairs) pairs += double(p.numel());
  const double work = double(B) * double(T) * pairs * double(C);
  if (work > kMaxWork) {
    if (comm.is_root())
      LOG_WARN("per-participant peak/AUC CIs skipped: {} samples x {} timepoints x {} pairs x {} "
               "curves = {:.2g} pair visits (> {:.0g}); lower run.participant_ci_n",
               B, T, int64_t(pairs), C, work, kMaxWork);
    return {};
  }
  // The same resamples of each fold's objects for every curve (group and own model comparable).
  std::vector<at::Tensor> indices;
  for (int64_t k = 0; k < K; ++k)
    indices.push_back(stats::ResampleIndices(seed, kParticipantCiStream | (uint64_t(k) << 40), 0,
                                             B, folds.sizes[size_t(k)]));
  at::Tensor rows = at::zeros({T, C * B}, at::kDouble);  // [t, c * B + b]
  parallel::RunOnAll(comm, [&] {  // a rank's error reaches every rank (none waits in the gather)
    if (count == 0) return;
    const at::Tensor t_local = times.slice(0, begin, begin + count).contiguous();
    for (int64_t c = 0; c < C; ++c) {
      const ParticipantCurve& pc = curves[size_t(c)];
      const at::Tensor model = pc.model_rdm.slice(0, begin, begin + count);  // (count, m_model)
      at::Tensor sum = at::zeros({B, count}, at::kDouble);
      for (int64_t k = 0; k < K; ++k)
        sum += stats::BootstrapObjectsTimeResolvedBlock(
                   model.index_select(1, folds.model_pairs[size_t(k)]).contiguous(),
                   meg[pc.participant].index_select(1, folds.stack_pairs[size_t(k)]).contiguous(),
                   t_local, rsa::Comparison::kSpearman, indices[size_t(k)])
                   .curves;
      rows.slice(0, begin, begin + count).slice(1, c * B, (c + 1) * B).copy_((sum / double(K)).t());
    }
  });
  comm.AllgatherRows(rows, counts);
  std::vector<stats::CurveCi> out;
  const at::Tensor t0 = times.slice(0, first).contiguous();
  parallel::RunOnRoot(comm, [&] {
    for (int64_t c = 0; c < C; ++c) {
      const at::Tensor samples = rows.slice(1, c * B, (c + 1) * B).t().slice(1, first).contiguous();
      const at::Tensor estimate = curves[size_t(c)].estimate.slice(0, first).contiguous();
      const at::Tensor finite = at::isfinite(samples).all(1);
      stats::CurveCi ci;
      if (finite.any().item<bool>() && at::isfinite(estimate).all().item<bool>()) {
        ci = stats::SummarizeBootstrap(estimate, t0, stats::SamplesFromCurves(samples, t0), 0.95);
      } else {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        ci.peak_ms = ci.peak_lower = ci.peak_upper = ci.auc = ci.auc_lower = ci.auc_upper = nan;
        ci.level = 0.95;
        ci.n_boot = B;
      }
      out.push_back(ci);
    }
  });
  return out;
}

void WriteParticipantCis(io::ResultsStore* store, const std::string& model,
                         const std::vector<std::string>& participants,
                         const std::vector<stats::CurveCi>& cis) {
  if (cis.empty()) return;
  const int64_t K = int64_t(cis.size());
  at::Tensor table = at::empty({K, 6}, at::kDouble);
  at::Tensor valid = at::empty({K}, at::kLong);
  for (int64_t i = 0; i < K; ++i) {
    const stats::CurveCi& c = cis[size_t(i)];
    const double row[6] = {c.peak_ms, c.peak_lower, c.peak_upper, c.auc, c.auc_lower, c.auc_upper};
    for (int j = 0; j < 6; ++j) table[i][j] = row[j];
    valid[i] = c.n_valid;
  }
  const std::string d = "/meg/" + model + "/alignment/participant_ci";
  store->WriteTensor(d, table);
  store->WriteTensor(d + "_n_valid", valid);
  store->SetAttribute(d, "columns",
                      std::vector<std::string>{"peak_ms", "peak_lower", "peak_upper", "auc",
                                               "auc_lower", "auc_upper"});
  store->SetAttribute(d, "participants", participants);
  store->SetAttribute(d, "level", cis[0].level);
  store->SetAttribute(d, "n_boot", cis[0].n_boot);
  store->SetAttribute(
      d, "definition",
      std::string("row i: participant participants[i]'s curve with this model (its spearman row; "
                  "an individual model: its own participant only): peak latency (first maximum "
                  "from 0 ms) and area from 0 ms (rho x s) with 95 % percentile bootstrap CIs "
                  "over objects: each fold's objects resampled with replacement (pairs of "
                  "distinct resampled objects), the curve the mean over folds; the same "
                  "resamples for every model (run.participant_ci_n samples from run.seed); "
                  "samples with a NaN at a timepoint from 0 ms are left out (_n_valid)"));
}

}  // namespace cliphba::pipeline
