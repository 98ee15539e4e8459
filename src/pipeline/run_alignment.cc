// The alignment unit of `cliphba run` (pipeline/run.h); the model-RDM files: model_rdms.cc.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/shard.h"
#include "io/results_reader.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "meg/target.h"
#include "parallel/collectives.h"
#include "pipeline/alignment_results.h"
#include "pipeline/run.h"
#include "rsa/alignment.h"
#include "rsa/rdm.h"
#include "stats/cluster.h"
#include "stats/signflip.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

void WriteClusterTest(io::ResultsStore* store, const std::string& g, const at::Tensor& values,
                      int64_t n, double cluster_p, uint64_t seed, stats::Tail tail,
                      int64_t first) {
  const int64_t P = values.size(0), T = values.size(1);
  // A timepoint whose values are equal for every participant (e.g. identical pre-stimulus model
  // RDMs on tiny data) has no t statistic: the test is then not run (a warning says why; no
  // /significant).
  const at::Tensor data = values.to(at::kDouble).slice(1, first, T).contiguous();
  if ((data.var(0) <= 0).any().item<bool>()) {
    LOG_WARN("{}: a timepoint has zero variance over participants; no cluster test", g);
    return;
  }
  const double threshold = stats::ClusterFormingThreshold(cluster_p, P, tail);
  const bool exact = stats::UseExactSignFlips(n, P, tail);
  const at::Tensor flips = stats::SignFlipsFor(n, P, tail, seed);
  const stats::ClusterTestResult res = stats::ClusterTest(data, threshold, tail, flips);
  at::Tensor significant = at::zeros({T}, at::kChar);
  at::Tensor rows = at::zeros({int64_t(res.clusters.size()), 4}, at::kDouble);
  for (size_t k = 0; k < res.clusters.size(); ++k) {
    const stats::Cluster& cl = res.clusters[k];
    rows[int64_t(k)][0] = double(first + cl.start);
    rows[int64_t(k)][1] = double(first + cl.stop);
    rows[int64_t(k)][2] = cl.mass;
    rows[int64_t(k)][3] = cl.p;
    if (cl.p < 0.05) significant.slice(0, first + cl.start, first + cl.stop).fill_(1);
  }
  store->WriteTensor(g + "/significant", significant);
  store->SetAttribute(g + "/significant", "threshold", threshold);
  store->SetAttribute(g + "/significant", "cluster_p_threshold", 0.05);
  store->SetAttribute(g + "/significant", "n_permutations", flips.size(0) + 1);
  store->SetAttribute(g + "/significant", "exact", int64_t(exact ? 1 : 0));
  store->SetAttribute(g + "/significant", "tail", int64_t(stats::TailValue(tail)));
  store->SetAttribute(g + "/significant", "first_timepoint", first);
  if (!res.clusters.empty()) store->WriteTensor(g + "/clusters", rows);
}


bool StageConfigured(const config::Config& cfg, const std::string& stage) {
  return std::find(cfg.run.stages.begin(), cfg.run.stages.end(), stage) != cfg.run.stages.end();
}

std::vector<std::string> CohortParticipants(const config::Config& cfg) {
  if (cfg.meg_rdm.path.empty()) return cfg.run.participants;
  if (!fs::exists(cfg.meg_rdm.path))
    throw IoError("meg.rdm.path: '" + cfg.meg_rdm.path +
                  "' does not exist (an input of the MEG stages)");
  const meg::RdmStack stack = meg::RdmStack::Open(cfg.meg_rdm);
  const std::vector<std::string>& all = stack.participant_labels();
  if (cfg.run.participants.empty()) return all;
  std::vector<std::string> out;
  for (const std::string& want : cfg.run.participants) {
    if (std::find(all.begin(), all.end(), want) != all.end()) {
      out.push_back(want);
      continue;
    }
    char* end = nullptr;
    const long idx = std::strtol(want.c_str(), &end, 10);
    if (want.empty() || *end != '\0' || idx < 0 || idx >= long(all.size()))
      throw ConfigError("run.participants: '" + want + "' is neither a participant of " +
                        cfg.meg_rdm.path + " nor an index in [0, " + std::to_string(all.size()) +
                        ")");
    out.push_back(all[size_t(idx)]);
  }
  return out;
}

namespace {

// Single-threaded ATen within a scope: per-timepoint reductions then do not depend on how many
// timepoints a rank holds or on the thread count (bit-identical for any number of ranks).
struct OneThread {
  int saved = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved); }
};

// Sign-flip cluster test over participants of one model's alignment curves (stats/cluster.h, equal
// to MNE's permutation_cluster_1samp_test given the same flips): H1 "the model's RDM correlates
// positively with the participants' MEG RDMs", tail 1, cluster-forming t at the one-sided
// quantile 1 - cluster_p (MNE's default threshold). See WriteClusterTest (run.h).
void WriteAlignmentClusters(io::ResultsStore* store, const std::string& model,
                            const at::Tensor& spearman, int64_t n, double cluster_p,
                            uint64_t seed) {
  WriteClusterTest(store, "/meg/" + model + "/alignment", spearman, n, cluster_p, seed,
                   stats::Tail::kUpper, 0);
}

// One model's RDMs on the run's objects: per fold, the pairs of its objects as indices into the
// model's condensed RDM and into the stack's (all objects).
struct FoldedRdms {
  std::string name;
  at::Tensor rdm;                               // (T, m_model) float64
  std::vector<at::Tensor> model_pairs, stack_pairs;  // per fold, int64 (m_k) each
  AlignmentObjects objects;
  std::vector<std::string> names;
  std::vector<int64_t> fold;
  at::Tensor block_weights;  // (T, L) or undefined (ModelRdms::block_weights)
};

FoldedRdms Fold(const std::string& name, const std::string& path, const ModelRdms& r,
                const meg::RdmStack& stack, int64_t T) {
  if (r.rdm.size(0) != T)
    throw DataError(path + ": " + std::to_string(r.rdm.size(0)) + " timepoints, the MEG axis of " +
                    stack.source() + " has " + std::to_string(T));
  const std::vector<int64_t> in_stack =
      meg::IndicesOfNames(stack.names(), r.names, stack.source(), path + " /model/names");
  const int64_t n = int64_t(r.names.size()), n_all = int64_t(stack.names().size());
  const int64_t K = *std::max_element(r.fold.begin(), r.fold.end()) + 1;
  FoldedRdms f{name, r.rdm, {}, {}, {r.objects, n, 0, K}, r.names, r.fold, r.block_weights};
  for (int64_t k = 0; k < K; ++k) {
    std::vector<int64_t> local, global;
    for (int64_t i = 0; i < n; ++i)
      if (r.fold[size_t(i)] == k) {
        local.push_back(i);
        global.push_back(in_stack[size_t(i)]);
      }
    if (local.size() < 3)
      throw DataError(path + ": fold " + std::to_string(k) + " has " +
                      std::to_string(local.size()) + " object(s); each fold needs >= 3");
    f.model_pairs.push_back(rsa::SubsetPairIndices(n, local));
    f.stack_pairs.push_back(rsa::SubsetPairIndices(n_all, global));
    f.objects.n_pairs += rsa::NumPairs(int64_t(local.size()));
  }
  return f;
}

// The mean over folds of the alignment on each fold's pairs. model: (count, m_model) rows of this
// rank's timepoints; meg: (P, count, m_all).
rsa::TimeResolvedAlignment AlignFolds(const FoldedRdms& f, const at::Tensor& model,
                                      const at::Tensor& meg) {
  rsa::TimeResolvedAlignment sum;
  for (size_t k = 0; k < f.model_pairs.size(); ++k) {
    const rsa::TimeResolvedAlignment a =
        rsa::AlignTimeResolved(model.index_select(1, f.model_pairs[k]).contiguous(),
                               meg.index_select(2, f.stack_pairs[k]).contiguous());
    sum.spearman = k == 0 ? a.spearman : sum.spearman + a.spearman;
    sum.pearson = k == 0 ? a.pearson : sum.pearson + a.pearson;
  }
  const double K = double(f.model_pairs.size());
  return {sum.spearman / K, sum.pearson / K};
}

rsa::TimeResolvedCeiling CeilingFolds(const FoldedRdms& f, const at::Tensor& meg) {
  rsa::TimeResolvedCeiling sum;
  for (size_t k = 0; k < f.stack_pairs.size(); ++k) {
    const rsa::TimeResolvedCeiling c =
        rsa::CeilingTimeResolved(meg.index_select(2, f.stack_pairs[k]).contiguous());
    sum.lower = k == 0 ? c.lower : sum.lower + c.lower;
    sum.upper = k == 0 ? c.upper : sum.upper + c.upper;
  }
  const double K = double(f.stack_pairs.size());
  return {sum.lower / K, sum.upper / K};
}

// Time generalisation on the out-of-sample design of `design` (its objects, folds and within-fold
// pairs; means over folds): model[p, i, j] = Spearman of the group model's RDM at timepoint i with
// participant p's MEG RDM at j; meg[p, i, j] of participant p's MEG RDMs at i and j. meg_own
// (P, count, m_all) holds this rank's timepoints [r.begin, r.end); each rank computes the columns j
// of its timepoints, then the columns are gathered (every entry is computed alone: the same
// numbers for any rank count); counts: every rank's timepoint count, as the gathers take them.
// The MEG x MEG matrix needs every timepoint's within-fold MEG rows on every rank: computed only
// when they fit in kTimeGenBytes (else undefined, logged). Collective.
struct TimeGen {
  at::Tensor model, meg;  // (P, T, T) float64 or undefined
};
constexpr int64_t kTimeGenBytes = int64_t(1) << 30;

TimeGen TimeGeneralizationFolds(const FoldedRdms* group, const FoldedRdms& design,
                                const at::Tensor& meg_own, const Range& r, int64_t T,
                                const std::vector<int64_t>& counts, const parallel::Comm& comm) {
  const int64_t P = meg_own.size(0), count = r.end - r.begin, K = int64_t(design.stack_pairs.size());
  int64_t m_total = 0;
  for (const at::Tensor& s : design.stack_pairs) m_total += s.numel();
  const bool do_meg = P * T * m_total * int64_t(sizeof(double)) <= kTimeGenBytes;
  if (!do_meg && comm.is_root())
    LOG_WARN("alignment: the MEG x MEG time generalisation is skipped ({} participants x {} "
             "timepoints x {} pairs exceed {} GiB on every rank)", P, T, m_total,
             kTimeGenBytes >> 30);
  at::Tensor part_model = at::zeros({P, count, T}, at::kDouble);
  at::Tensor part_meg = at::zeros({P, count, T}, at::kDouble);
  for (int64_t k = 0; k < K; ++k) {
    const at::Tensor own = meg_own.index_select(2, design.stack_pairs[size_t(k)]);  // (P, count, m_k)
    const int64_t mk = own.size(2);
    // Standardised ranks: the model's once per fold, this rank's MEG rows once per participant.
    at::Tensor z_own = at::zeros({P, count, mk}, at::kDouble);
    for (int64_t p = 0; p < P && count > 0; ++p)
      z_own[p] = rsa::SpearmanRows(own[p].contiguous(), "time generalisation: MEG RDMs");
    at::Tensor z_all;  // (T, P * m_k): every timepoint's standardised within-fold ranks
    if (do_meg) {
      z_all = at::zeros({T, P * mk}, at::kDouble);
      if (count > 0)
        z_all.slice(0, r.begin, r.end).copy_(z_own.permute({1, 0, 2}).reshape({count, P * mk}));
      comm.AllgatherRows(z_all, counts);
    }
    at::Tensor z_model;
    if (group && count > 0)
      z_model = rsa::SpearmanRows(
          group->rdm.index_select(1, group->model_pairs[size_t(k)]).contiguous(),
          "time generalisation: group model RDMs");
    for (int64_t p = 0; p < P && count > 0; ++p) {
      if (group) part_model[p] += rsa::RowDots(z_own[p], z_model);
      if (do_meg)
        part_meg[p] += rsa::RowDots(z_own[p], z_all.view({T, P, mk}).select(1, p).contiguous());
    }
  }
  if (!group && !do_meg) return {};  // the same decision on every rank
  // Gathered by rows (this rank's MEG timepoints j), then [p, i, j].
  at::Tensor rows = at::zeros({T, 2 * P * T}, at::kDouble);
  if (count > 0)
    rows.slice(0, r.begin, r.end)
        .copy_(at::cat({part_model, part_meg}, 0).permute({1, 0, 2}).reshape({count, 2 * P * T}) /
               double(K));
  comm.AllgatherRows(rows, counts);
  const at::Tensor both = rows.view({T, 2 * P, T}).permute({1, 2, 0}).contiguous();  // (2P, i, j)
  TimeGen out;
  if (group) out.model = both.slice(0, 0, P).contiguous();
  if (do_meg) out.meg = both.slice(0, P, 2 * P).contiguous();
  return out;
}

// A static baseline on the out-of-sample design of `design`: its objects and folds, the
// within-fold pairs of the baseline's (m_all) RDM, NaN across folds, the same at every timepoint
// (a broadcast view: no T copies).
FoldedRdms StaticOn(const Baseline& b, const FoldedRdms& design, const meg::RdmStack& stack,
                    int64_t T) {
  const int64_t n_all = int64_t(stack.names().size()), n = int64_t(design.names.size());
  const std::vector<int64_t> in_stack =
      meg::IndicesOfNames(stack.names(), design.names, stack.source(), "the models' objects");
  at::Tensor sub = b.rdm.index_select(0, rsa::SubsetPairIndices(n_all, in_stack)).clone();
  const at::Tensor fold = at::tensor(design.fold, at::kLong);
  const at::Tensor iu = at::triu_indices(n, n, 1);
  sub.masked_fill_(fold.index({iu[0]}).ne(fold.index({iu[1]})),
                   std::numeric_limits<double>::quiet_NaN());
  ModelRdms r{sub.unsqueeze(0).expand({T, sub.numel()}), design.names, design.fold,
              design.objects.objects, {}};
  return Fold(b.name, "baseline " + b.name, r, stack, T);
}

}  // namespace

UnitOutcome AlignmentStage(const StageContext& c) {
  const config::Config& cfg = *c.config;
  const parallel::Comm& comm = *c.comm;
  if (cfg.meg_rdm.path.empty())
    throw ConfigError("stage alignment needs meg.rdm.path (the MEG RDM stacks)");
  const meg::RdmStack stack = meg::RdmStack::Open(cfg.meg_rdm);
  const std::vector<std::string>& labels = c.participants;
  const int64_t P = int64_t(labels.size()), T = stack.timepoints();
  const std::vector<int64_t> pidx =
      meg::ParticipantIndices(stack, labels, "the run's participants");
  // The models: the group model and one per participant, each from its unit's folder. Every
  // out-of-sample file covers the same objects in the same folds (so the ceiling is one); the
  // in-sample diagnostics, where present, are compared on their own objects.
  std::vector<FoldedRdms> models, insample;
  auto add_model = [&](const std::string& name) {
    const std::string path = ModelRdmPath(c.run_dir + "/" + name);
    FoldedRdms f = Fold(name, path, ReadModelRdms(path), stack, T);
    if (!models.empty() && (f.names != models[0].names || f.fold != models[0].fold ||
                            f.objects.objects != models[0].objects.objects))
      throw DataError(path + ": objects, folds or kind (" + f.objects.objects +
                      ") differ from those of model " + models[0].name +
                      " (every model of a run is compared on the same objects)");
    models.push_back(std::move(f));
    const std::string in_path = ModelRdmInsamplePath(c.run_dir + "/" + name);
    if (fs::exists(in_path)) insample.push_back(Fold(name, in_path, ReadModelRdms(in_path), stack, T));
  };
  if (StageConfigured(cfg, "group")) add_model("group");
  std::vector<int64_t> own;  // individual models: column of their participant
  if (StageConfigured(cfg, "individual"))
    for (int64_t p = 0; p < P; ++p) {
      add_model(UnitName(Stage::kIndividual, labels[size_t(p)]));
      own.push_back(p);
    }
  if (models.empty())
    throw ConfigError("stage alignment: no model stage (group, individual) in run.stages");
  const int64_t n_all = int64_t(stack.names().size()), m_all = rsa::NumPairs(n_all);
  std::vector<int64_t> all_idx(static_cast<size_t>(n_all));
  for (int64_t i = 0; i < n_all; ++i) all_idx[size_t(i)] = i;
  // The static baselines (plain CLIP, CLIP-HBA-Behavior), compared on the same objects, folds and
  // pairs as the MEG models (collective).
  const std::vector<Baseline> baselines =
      cfg.run.compare_bootstrap_n > 0 ? BaselineRdms(cfg, c.run_dir, stack, comm)
                                      : std::vector<Baseline>{};
  std::vector<FoldedRdms> statics;
  for (const Baseline& b : baselines)
    statics.push_back(StaticOn(b, models[0], stack, T));

  // This rank's timepoints, rescaled by meg/'s one rule (meg.rdm.rescale: the whole file's range,
  // as training uses): each rank streams the range of its timepoints, the ranks combine them.
  const Range r = ShardRange(T, comm.size(), comm.rank());
  const int64_t count = r.end - r.begin;
  const meg::RdmStack::Range part = stack.ValueRange(r.begin, count);
  at::Tensor bounds = at::tensor({part.max, -part.min}, at::kDouble);
  comm.AllreduceMax(bounds);
  const meg::RdmScale scale = meg::RdmScale::FromRange(
      cfg.meg_rdm.rescale, {-bounds[1].item<double>(), bounds[0].item<double>()}, stack.source());
  const at::Tensor iu = at::triu_indices(n_all, n_all, 1);
  at::Tensor meg = at::empty({P, count, m_all}, at::kDouble);
  for (int64_t p = 0; p < P && count > 0; ++p) {
    const at::Tensor x =
        scale.Apply(stack.Read(pidx[size_t(p)], r.begin, count, all_idx).to(at::kDouble));
    meg[p] = x.index({at::indexing::Slice(), iu[0], iu[1]});
  }

  // Per-timepoint statistics of this rank's timepoints, gathered in timepoint order: per model
  // its out-of-sample Spearman and Pearson, then the in-sample pairs, then the ceiling.
  std::vector<at::Tensor> parts;  // each (count, P)
  if (count > 0) {
    OneThread one;
    for (const std::vector<FoldedRdms>* set : {&models, &insample, &statics})
      for (const FoldedRdms& f : *set) {
        const rsa::TimeResolvedAlignment a =
            AlignFolds(f, f.rdm.slice(0, r.begin, r.end).contiguous(), meg);
        parts.push_back(a.spearman.t());
        parts.push_back(a.pearson.t());
      }
    if (P >= 2) {
      const rsa::TimeResolvedCeiling ceil = CeilingFolds(models[0], meg);
      parts.push_back(ceil.lower.t());
      parts.push_back(ceil.upper.t());
    }
  }
  const int64_t Q =
      2 * int64_t(models.size() + insample.size() + statics.size()) + (P >= 2 ? 2 : 0);
  at::Tensor rows = at::zeros({T, Q * P}, at::kDouble);
  if (count > 0) rows.slice(0, r.begin, r.end).copy_(at::cat(parts, 1));
  std::vector<int64_t> counts;
  for (int k = 0; k < comm.size(); ++k) {
    const Range rk = ShardRange(T, comm.size(), k);
    counts.push_back(rk.end - rk.begin);
  }
  comm.AllgatherRows(rows, counts);
  auto block = [&](int64_t q) { return rows.slice(1, q * P, (q + 1) * P).t().contiguous(); };
  const meg::TimeAxis& axis = stack.time();
  at::Tensor times = at::arange(T, at::kDouble) * axis.step_ms + axis.start_ms;
  // The out-of-sample design's folds (every model's: checked above), for the analyses below.
  FoldPairs folds{models[0].model_pairs, models[0].stack_pairs,
                  std::vector<int64_t>(models[0].model_pairs.size(), 0)};
  for (int64_t k : models[0].fold) ++folds.sizes[size_t(k)];
  TimeGen tg;  // time-generalisation matrices (collective)
  std::vector<ParticipantCurve> pcurves;  // per-participant CIs: the group model x every
  std::vector<stats::CurveCi> pcis;       // participant, each individual model x its own
  {
    OneThread one;  // thread-count-free reductions, as above
    tg = TimeGeneralizationFolds(models[0].name == "group" ? &models[0] : nullptr, models[0], meg,
                                 r, T, counts, comm);
    for (size_t i = 0, j = 0; i < models.size(); ++i) {
      const at::Tensor sp = block(2 * int64_t(i));  // (P, T)
      if (models[i].name == "group") {
        for (int64_t p = 0; p < P; ++p) pcurves.push_back({"group", p, models[i].rdm, sp[p]});
      } else {
        const int64_t p = own[j++];  // the individual model's own participant
        pcurves.push_back({models[i].name, p, models[i].rdm, sp[p]});
      }
    }
    if (cfg.run.participant_ci_n > 0)
      pcis = ParticipantCis(pcurves, meg, folds, r.begin, counts, times,
                            cfg.run.participant_ci_n, uint64_t(cfg.run.seed), comm);
  }

  UnitOutcome out;
  parallel::RunOnRoot(comm, [&] {
    io::ResultsStore store = io::ResultsStore::Create(c.out_dir + "/alignment.h5");
    io::WriteProvenance(&store, "run alignment", c.config_hash, config::DumpConfig(cfg));
    WriteMegAxes(&store, times, labels);
    std::vector<at::Tensor> individual_spearman;
    std::vector<std::string> individual_names;
    for (size_t i = 0; i < models.size(); ++i) {
      const FoldedRdms& f = models[i];
      const rsa::TimeResolvedAlignment a{block(2 * int64_t(i)), block(2 * int64_t(i) + 1)};
      WriteMegAlignment(&store, f.name, a, times, labels, f.objects);
      if (P >= 2 && cfg.run.cluster_n > 1)
        WriteAlignmentClusters(&store, f.name, a.spearman, cfg.run.cluster_n, cfg.run.cluster_p,
                               uint64_t(cfg.run.seed));
      if (f.name == "group") {
        const at::Tensor mean_curve = a.spearman.mean(0);
        out.metric_name = "group_peak_ms";
        out.metric = rsa::PeakLatencyMs(mean_curve, axis.start_ms, axis.step_ms);
        out.metrics["group_auc"] = rsa::AreaFromZero(mean_curve, axis.start_ms, axis.step_ms);
      } else {
        individual_spearman.push_back(a.spearman);
        individual_names.push_back(f.name);
      }
    }
    if (!pcis.empty()) {
      std::vector<stats::CurveCi> group_cis;
      std::vector<std::string> group_labels;
      for (size_t c = 0; c < pcurves.size(); ++c) {
        const std::string label = labels[size_t(pcurves[c].participant)];
        if (pcurves[c].model == "group") {
          group_cis.push_back(pcis[c]);
          group_labels.push_back(label);
        } else {
          WriteParticipantCis(&store, pcurves[c].model, {label}, {pcis[c]});
        }
      }
      WriteParticipantCis(&store, "group", group_labels, group_cis);
    }
    for (size_t i = 0; i < insample.size(); ++i) {
      const int64_t q = 2 * int64_t(models.size() + i);
      WriteMegAlignment(&store, insample[i].name, {block(q), block(q + 1)}, times, labels,
                        insample[i].objects, "alignment_insample");
      if (insample[i].block_weights.defined())
        WriteBlockWeights(&store, insample[i].name, insample[i].block_weights, times);
    }
    std::map<std::string, at::Tensor> curves;  // out of sample, for the comparisons
    for (size_t i = 0; i < models.size(); ++i) curves[models[i].name] = block(2 * int64_t(i));
    for (size_t i = 0; i < statics.size(); ++i) {
      const int64_t q = 2 * int64_t(models.size() + insample.size() + i);
      const FoldedRdms& f = statics[i];
      WriteMegAlignment(&store, f.name, {block(q), block(q + 1)}, times, labels, f.objects);
      if (P >= 2 && cfg.run.cluster_n > 1)
        WriteAlignmentClusters(&store, f.name, block(q), cfg.run.cluster_n, cfg.run.cluster_p,
                               uint64_t(cfg.run.seed));
      store.WriteTensor("/meg/" + f.name + "/rdm", baselines[i].rdm);
      store.SetAttribute("/meg/" + f.name + "/rdm", "source", baselines[i].source);
      store.SetAttribute("/meg/" + f.name + "/rdm", "definition",
                         std::string("static baseline: correlation distance of the HBA logits "
                                     "over every object of meg.rdm (its order), the same RDM at "
                                     "every timepoint"));
      curves[f.name] = block(q);
    }
    if (P >= 2) {
      const int64_t q = 2 * int64_t(models.size() + insample.size() + statics.size());
      WriteCeiling(&store, {block(q), block(q + 1)}, times, labels, models[0].objects);
      WriteMegComparisons(&store, curves, labels, times, cfg.run, models[0].objects);
    }
    if (individual_spearman.size() >= 2) {
      const at::Tensor matrix =
          rsa::OwnVsOtherMatrix(individual_spearman, axis.start_ms, axis.step_ms);
      const rsa::OwnVsOther test =
          rsa::OwnVsOtherTest(matrix, own, cfg.run.own_vs_other_n, uint64_t(cfg.run.seed));
      WriteOwnVsOther(&store, matrix, test, individual_names, labels, own);
      WriteObjectsAttributes(&store, "/meg/own_vs_other", models[0].objects);
      store.WriteStrings("/run/own_vs_other_models", individual_names);
      out.metrics["own_minus_other"] = test.statistic;
      out.metrics["own_vs_other_p"] = test.p_value;
      if (out.metric_name.empty()) {
        out.metric_name = "own_minus_other";
        out.metric = test.statistic;
      }
    }
    {
      // Dynamic behavioural validation: the MEG models and plain CLIP against the human
      // behaviour RDM on the same out-of-sample design.
      std::vector<std::string> dyn_names;
      std::vector<at::Tensor> dyn_rdms;
      for (const FoldedRdms& f : models) {
        dyn_names.push_back(f.name);
        dyn_rdms.push_back(f.rdm);
      }
      for (const FoldedRdms& f : statics) {
        dyn_names.push_back(f.name);
        dyn_rdms.push_back(f.rdm);
      }
      // What the MEG models started from (as run_meg.cc decides) and how many of the design's
      // objects the behaviour stage held out.
      const std::string beh = c.run_dir + "/behavior";
      const bool from_behavior =
          StageConfigured(cfg, "behavior") && fs::exists(beh + "/best.safetensors");
      int64_t heldout = from_behavior ? -1 : int64_t(models[0].names.size());
      if (from_behavior && fs::exists(beh + "/evaluation.h5")) {
        const std::vector<std::string> h =
            io::ResultsReader(beh + "/evaluation.h5").ReadStrings("/behavior/object_names");
        heldout = 0;
        for (const std::string& x : models[0].names)
          heldout += std::find(h.begin(), h.end(), x) != h.end();
      }
      const HumanRdm human = HumanRdmOn(cfg, models[0].names);
      if (!human.problem.empty())
        LOG_WARN("alignment: the dynamic behavioural validation is skipped: {}", human.problem);
      OneThread one;
      WriteDynamicBehavior(&store, dyn_names, dyn_rdms, folds, human,
                           from_behavior ? "behavior: " + beh + "/best.safetensors"
                                         : "base: " + cfg.train_meg.checkpoint,
                           heldout, times, cfg.run, models[0].objects);
    }
    if (tg.model.defined())
      WriteTimeGeneralization(
          &store, "/meg/group/time_generalization", tg.model, times, labels, models[0].objects,
          "time generalisation of the group model: [p, i, j] = Spearman of the model RDM at "
          "timepoint i with participant p's MEG RDM at timepoint j (mean over folds of the "
          "within-fold pairs)");
    if (tg.meg.defined())
      WriteTimeGeneralization(
          &store, "/meg/time_generalization", tg.meg, times, labels, models[0].objects,
          "MEG time generalisation: [p, i, j] = Spearman of participant p's MEG RDMs at "
          "timepoints i and j (mean over folds of the within-fold pairs)");
    std::vector<std::string> names;
    for (const FoldedRdms& f : models) names.push_back(f.name);
    store.WriteStrings("/run/models", names);
    names.clear();
    for (const FoldedRdms& f : statics) names.push_back(f.name);
    if (!names.empty()) store.WriteStrings("/run/baselines", names);
    store.Commit();
  });
  // Every rank returns the root's key numbers (the record is written by the root).
  return out;
}

void CopyMegAlignment(io::ResultsStore* store, const std::string& path) {
  io::ResultsReader in(path);
  const at::Tensor times = in.ReadTensor("/meg/times_ms");
  const std::vector<std::string> labels = in.ReadStrings("/meg/participants");
  WriteMegAxes(store, times, labels);
  for (const std::string& name : in.ReadStrings("/run/models")) {
    const std::string g = "/meg/" + name + "/alignment";
    WriteMegAlignment(store, name, {in.ReadTensor(g + "/spearman"), in.ReadTensor(g + "/pearson")},
                      times, labels, ReadObjectsAttributes(in, g));
    const std::string gi = "/meg/" + name + "/alignment_insample";
    if (in.Exists(gi))
      WriteMegAlignment(store, name,
                        {in.ReadTensor(gi + "/spearman"), in.ReadTensor(gi + "/pearson")}, times,
                        labels, ReadObjectsAttributes(in, gi), "alignment_insample");
    for (const char* part :
         {"/significant", "/clusters", "/participant_ci", "/participant_ci_n_valid"})
      if (in.Exists(g + part)) store->CopyObject(path, g + part);
    if (in.Exists("/meg/" + name + "/block_weights"))
      store->CopyObject(path, "/meg/" + name + "/block_weights");
  }
  for (const char* tg : {"/meg/group/time_generalization", "/meg/time_generalization"})
    if (in.Exists(tg)) store->CopyObject(path, tg);
  if (in.Exists("/meg/ceiling/lower"))
    WriteCeiling(store, {in.ReadTensor("/meg/ceiling/lower"), in.ReadTensor("/meg/ceiling/upper")},
                 times, labels, ReadObjectsAttributes(in, "/meg/ceiling"));
  if (in.Exists("/meg/own_vs_other/matrix")) {
    const std::string g = "/meg/own_vs_other/matrix";
    rsa::OwnVsOther test{
        in.ReadDoubleAttribute(g, "statistic"), in.ReadDoubleAttribute(g, "p_value"),
        in.ReadIntAttribute(g, "n_permutations"), in.ReadIntAttribute(g, "exact") != 0};
    const at::Tensor own = in.ReadTensor("/meg/own_vs_other/own").to(at::kLong).contiguous();
    WriteOwnVsOther(
        store, in.ReadTensor(g), test, in.ReadStrings("/run/own_vs_other_models"), labels,
        std::vector<int64_t>(own.data_ptr<int64_t>(), own.data_ptr<int64_t>() + own.numel()));
    WriteObjectsAttributes(store, "/meg/own_vs_other",
                           ReadObjectsAttributes(in, "/meg/own_vs_other"));
  }
  // The static baselines and the comparisons, as written (groups copied whole).
  if (in.Exists("/run/baselines"))
    for (const std::string& name : in.ReadStrings("/run/baselines"))
      store->CopyObject(path, "/meg/" + name);
  for (const char* g : {"/compare/meg", "/compare/dynamic_behavior"})
    if (in.Exists(g)) store->CopyObject(path, g);
}

}  // namespace cliphba::pipeline
