// The model comparisons of `cliphba run` (pipeline/run.h, "Comparisons"): the static baselines
// plain CLIP and CLIP-HBA-Behavior on the MEG objects, and the differences between models'
// out-of-sample alignment curves with bootstrap CIs and cluster tests over participants.
//
// Dimension legend: P participants, T timepoints, n objects of the MEG RDM stack,
// m = n (n - 1) / 2, K prompts, B bootstrap samples.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/log.h"
#include "io/results_reader.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "pipeline/run.h"
#include "predict/behavior_model.h"
#include "predict/predict.h"
#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "stats/bootstrap.h"
#include "train/meg_predictor.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

namespace {

// Plain CLIP's text options: a training section's prompts, vocabulary, remap and labels.
template <typename Options>
predict::TextArgs TextArgsOf(const Options& o) {
  predict::TextArgs text;
  text.prompts = o.prompts;
  text.vocab = o.vocab;
  text.vocab_remap = config::Name(o.vocab_remap);
  text.labels = o.labels;
  return text;
}

}  // namespace

std::vector<Baseline> BaselineRdms(const config::Config& cfg, const std::string& run_dir,
                                   const meg::RdmStack& stack, const parallel::Comm& comm) {
  std::vector<Baseline> out;
  const config::TrainMegOptions& t = cfg.train_meg;
  if (t.checkpoint.empty() || t.image_dir.empty()) return out;
  const std::vector<std::string> paths =
      train::ResolveImages(stack.names(), t.image_dir, "meg.rdm's objects");
  auto add = [&](const std::string& name, const std::string& model,
                 const predict::TextArgs& text) {
    predict::BehaviorModel bm = predict::LoadBehaviorModel(model, text, /*strict=*/false);
    if (name == "clip") bm.normalization = t.normalization;  // as the MEG models see images
    const at::Tensor emb =
        predict::BehaviorEmbeddings(bm, paths, int(std::max<int64_t>(1, t.loader_threads)), comm);
    out.push_back({name, model, rsa::ComputeRdm(emb.to(at::kDouble), rsa::RdmMetric::kCorrelation)
                                    .values.contiguous()});
  };
  add("clip", t.checkpoint, TextArgsOf(t));
  const std::string behavior = run_dir + "/behavior";
  if (StageConfigured(cfg, "behavior") && fs::exists(behavior + "/best.safetensors"))
    add("behavior", behavior, {});
  return out;
}

namespace {

// One comparison: A - B per participant.
struct Pair {
  std::string name, a, b;
  at::Tensor curves_a, curves_b;  // (P, T)
};

std::vector<Pair> ComparisonPairs(const std::map<std::string, at::Tensor>& curves,
                                  const std::vector<std::string>& participants) {
  std::vector<Pair> out;
  auto has = [&](const std::string& m) { return curves.count(m) > 0; };
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"group", "clip"}, {"group", "behavior"}, {"behavior", "clip"}})
    if (has(a) && has(b)) out.push_back({a + "_vs_" + b, a, b, curves.at(a), curves.at(b)});
  // Each participant's own individual model against the group model, on that participant.
  bool all = has("group");
  for (const auto& p : participants) all = all && has("individual/" + p);
  if (all && !participants.empty()) {
    std::vector<at::Tensor> rows;
    for (size_t p = 0; p < participants.size(); ++p)
      rows.push_back(curves.at("individual/" + participants[p])[int64_t(p)]);
    out.push_back({"individual_vs_group", "individual", "group", at::stack(rows),
                   curves.at("group")});
  }
  return out;
}

}  // namespace

void WriteMegComparisons(io::ResultsStore* store, const std::map<std::string, at::Tensor>& curves,
                         const std::vector<std::string>& participants, const at::Tensor& times_ms,
                         const config::RunOptions& run, const AlignmentObjects& objects) {
  const int64_t P = int64_t(participants.size()), B = run.compare_bootstrap_n;
  if (B < 1 || P < 2) return;
  const at::Tensor times = times_ms.to(at::kDouble).contiguous();
  // The cluster tests cover the timepoints from 0 ms (before the stimulus, models trained from
  // 0 ms can be identical, and a difference with no variance has no t).
  const int64_t first = (times < 0).sum().item<int64_t>();
  // The same resamples of participants for every comparison and for both models of one.
  const at::Tensor idx = stats::ResampleIndices(uint64_t(run.seed),
                                                stats::kBootstrapParticipantsStream, 0, B, P);
  for (const Pair& c : ComparisonPairs(curves, participants)) {
    const std::string g = "/compare/meg/" + c.name;
    const at::Tensor diff = (c.curves_a - c.curves_b).contiguous();  // (P, T)
    const stats::CurveCi ci = stats::BootstrapParticipants(diff, times, idx, 0.95);
    // Peak latency difference (from 0 ms, as the alignment's peak_ms): of the two mean curves, on
    // the same resamples.
    const at::Tensor t0 = times.slice(0, first);
    const at::Tensor a0 = c.curves_a.slice(1, first).contiguous();
    const at::Tensor b0 = c.curves_b.slice(1, first).contiguous();
    const at::Tensor dpeak = stats::BootstrapParticipantsBlock(a0, t0, idx).peak_ms -
                             stats::BootstrapParticipantsBlock(b0, t0, idx).peak_ms;
    const double peak =
        stats::PeakLatency(a0.mean(0), t0) - stats::PeakLatency(b0.mean(0), t0);
    store->WriteTensor(g + "/difference", diff);
    store->WriteTensor(g + "/mean", ci.estimate);
    store->WriteTensor(g + "/ci_lower", ci.lower);
    store->WriteTensor(g + "/ci_upper", ci.upper);
    store->SetAttribute(g, "model_a", c.a);
    store->SetAttribute(g, "model_b", c.b);
    store->SetAttribute(
        g, "definition",
        std::string("difference[p, t] = Spearman of model_a minus Spearman of model_b with "
                    "participant p's MEG RDM at t (out of sample; individual: each "
                    "participant's own model); mean over participants with its percentile "
                    "bootstrap CI over participants (ci_lower, ci_upper); delta_auc: area from 0 "
                    "ms of the mean difference (rho x s); delta_peak_ms: peak latency (from 0 "
                    "ms) of model_a's mean curve minus model_b's, CIs on the same resamples; "
                    "significant: two-sided sign-flip cluster test of the difference over the "
                    "timepoints from 0 ms"));
    store->SetAttribute(g, "delta_auc", ci.auc);
    store->SetAttribute(g, "delta_auc_lower", ci.auc_lower);
    store->SetAttribute(g, "delta_auc_upper", ci.auc_upper);
    store->SetAttribute(g, "delta_peak_ms", peak);
    store->SetAttribute(g, "delta_peak_lower", stats::Percentile(dpeak, 2.5).item<double>());
    store->SetAttribute(g, "delta_peak_upper", stats::Percentile(dpeak, 97.5).item<double>());
    store->SetAttribute(g, "level", 0.95);
    store->SetAttribute(g, "n_boot", B);
    store->SetAttribute(g, "participants", participants);
    WriteObjectsAttributes(store, g, objects);
    if (run.cluster_n > 1)
      WriteClusterTest(store, g, diff, run.cluster_n, run.cluster_p, uint64_t(run.seed),
                       stats::Tail::kTwo, first);
  }
}

namespace {

constexpr uint64_t kObjectSwapStream = 0xC5ull << 56;  // | permutation

// Spearman of the correlation-distance RDM of embeddings (n, K) with a reference RDM (m).
double RdmSpearman(const at::Tensor& emb, const at::Tensor& reference) {
  return rsa::Spearman(rsa::ComputeRdm(emb, rsa::RdmMetric::kCorrelation).values, reference);
}

}  // namespace

void WriteBehaviorComparison(io::ResultsStore* store, const config::Config& cfg,
                             const std::string& run_dir) {
  const int64_t B = cfg.run.compare_bootstrap_n;
  const std::string eval = run_dir + "/behavior/evaluation.h5";
  const config::TrainBehaviorOptions& t = cfg.train_behavior;
  if (B < 1 || !fs::exists(eval) || t.checkpoint.empty()) return;
  io::ResultsReader in(eval);
  const std::vector<std::string> names = in.ReadStrings("/behavior/object_names");
  const at::Tensor reference = in.ReadTensor("/behavior/reference_rdm").to(at::kDouble);
  const at::Tensor behavior = in.ReadTensor("/behavior/predicted").to(at::kDouble);  // (n, K)
  const int64_t n = int64_t(names.size());
  if (n < 3) return;
  // Plain CLIP on the same held-out images: the base checkpoint, the stage's prompts, no
  // adapters, the stage's image normalisation.
  predict::BehaviorModel bm =
      predict::LoadBehaviorModel(t.checkpoint, TextArgsOf(t), /*strict=*/false);
  bm.normalization = t.normalization;
  const std::vector<std::string> paths = train::ResolveImages(
      names, t.image_dir, "the behaviour evaluation's objects", "train.behavior.image_dir");
  const at::Tensor clip =
      predict::BehaviorEmbeddings(bm, paths, 1, parallel::Comm::Serial()).to(at::kDouble);
  if (clip.sizes() != behavior.sizes())
    throw DataError(eval + ": /behavior/predicted is " + std::to_string(behavior.size(0)) + " x " +
                    std::to_string(behavior.size(1)) + ", plain CLIP gives " +
                    std::to_string(clip.size(0)) + " x " + std::to_string(clip.size(1)) +
                    " (another prompt count?)");
  const at::Tensor rdm_clip = rsa::ComputeRdm(clip, rsa::RdmMetric::kCorrelation).values;
  const at::Tensor rdm_beh = rsa::ComputeRdm(behavior, rsa::RdmMetric::kCorrelation).values;
  const double rho_clip = rsa::Spearman(rdm_clip, reference);
  const double rho_beh = rsa::Spearman(rdm_beh, reference);
  const double delta = rho_beh - rho_clip;
  // Bootstrap over objects: the same resamples for both models (pairs of distinct resampled
  // objects, as stats::BootstrapObjects).
  const at::Tensor idx =
      stats::ResampleIndices(uint64_t(cfg.run.seed), stats::kBootstrapObjectsStream, 0, B, n);
  const at::Tensor one = at::zeros({1}, at::kDouble);
  const at::Tensor ref1 = reference.unsqueeze(0);
  const at::Tensor db =
      stats::BootstrapObjectsBlock(rdm_beh, ref1, one, rsa::Comparison::kSpearman, idx)
          .curves.select(1, 0) -
      stats::BootstrapObjectsBlock(rdm_clip, ref1, one, rsa::Comparison::kSpearman, idx)
          .curves.select(1, 0);
  const at::Tensor valid = db.index({at::isfinite(db)});
  // Object-swap permutation test: under H0 each object's embedding is exchangeable between the
  // two models (they share the K prompts); permutation k swaps the objects whose coin is 1 and
  // compares the two hybrid models. p = (1 + #{|delta*| >= |delta|}) / (1 + n).
  int64_t extreme = 0;
  for (int64_t k = 0; k < B; ++k) {
    CounterRng r(uint64_t(cfg.run.seed), kObjectSwapStream | uint64_t(k));
    at::Tensor coin = at::empty({n, 1}, at::kBool);
    for (int64_t i = 0; i < n; ++i) coin[i][0] = (r.NextU32() & 1u) != 0;
    const at::Tensor h1 = at::where(coin, clip, behavior), h2 = at::where(coin, behavior, clip);
    const double d = RdmSpearman(h1, reference) - RdmSpearman(h2, reference);
    if (std::fabs(d) >= std::fabs(delta) - 1e-12) ++extreme;
  }
  const std::string g = "/compare/behavior";
  store->WriteTensor(g + "/rdm_clip", rdm_clip);
  store->WriteTensor(g + "/rdm_behavior", rdm_beh);
  store->WriteStrings(g + "/object_names", names);
  store->SetAttribute(g, "spearman_clip", rho_clip);
  store->SetAttribute(g, "spearman_behavior", rho_beh);
  store->SetAttribute(g, "delta", delta);
  store->SetAttribute(g, "delta_lower", valid.numel() > 0 ? stats::Percentile(valid, 2.5).item<double>()
                                                          : std::nan(""));
  store->SetAttribute(g, "delta_upper", valid.numel() > 0 ? stats::Percentile(valid, 97.5).item<double>()
                                                          : std::nan(""));
  store->SetAttribute(g, "p_value", double(1 + extreme) / double(1 + B));
  store->SetAttribute(g, "n_permutations", B);
  store->SetAttribute(g, "n_boot", B);
  store->SetAttribute(g, "n_boot_valid", valid.numel());
  store->SetAttribute(g, "level", 0.95);
  store->SetAttribute(g, "objects", std::string("heldout"));
  store->SetAttribute(g, "n_objects", n);
  store->SetAttribute(g, "n_pairs", rsa::NumPairs(n));
  store->SetAttribute(g, "reference", in.ReadStringAttribute("/behavior", "reference"));
  store->SetAttribute(g, "clip_checkpoint", t.checkpoint);
  store->SetAttribute(
      g, "definition",
      std::string("Spearman of each model's RDM (correlation distance of its HBA logits) with "
                  "the reference RDM on the behaviour stage's held-out objects; clip = plain "
                  "CLIP (train.behavior.checkpoint, no adapters), behavior = CLIP-HBA-Behavior; "
                  "delta = behavior - clip with a 95 % percentile bootstrap CI over objects "
                  "(pairs of distinct resampled objects); p: two-sided object-swap permutation "
                  "test (each object's embedding exchanged between the models with probability "
                  "1/2; the observed pattern included)"));
}

}  // namespace cliphba::pipeline
