// The alignment unit of `cliphba run` and the model-RDM files it reads (pipeline/run.h).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/shard.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "meg/target.h"
#include "parallel/collectives.h"
#include "pipeline/alignment_results.h"
#include "pipeline/run.h"
#include "rsa/alignment.h"
#include "stats/cluster.h"
#include "stats/signflip.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

std::string ModelRdmPath(const std::string& unit_dir) { return unit_dir + "/model_rdms.h5"; }

void WriteModelRdms(const std::string& path, const at::Tensor& rdms,
                    const std::vector<std::string>& names) {
  const int64_t n = int64_t(names.size());
  if (rdms.dim() != 2 || rdms.size(1) != n * (n - 1) / 2)
    throw DataError(path + ": model RDMs must be (T, m) with m = n (n - 1) / 2 = " +
                    std::to_string(n * (n - 1) / 2) + " for " + std::to_string(n) + " objects");
  io::ResultsStore store = io::ResultsStore::Create(path);
  store.WriteTensor("/model/rdm", rdms.to(at::kDouble).contiguous());
  store.WriteStrings("/model/names", names);
  store.Commit();
}

ModelRdms ReadModelRdms(const std::string& path) {
  if (!fs::exists(path))
    throw IoError(path + ": no model RDMs (the model unit did not finish writing them)");
  io::ResultsReader in(path);
  ModelRdms m{in.ReadTensor("/model/rdm").to(at::kDouble).contiguous(),
              in.ReadStrings("/model/names")};
  const int64_t n = int64_t(m.names.size());
  if (m.rdm.dim() != 2 || m.rdm.size(1) != n * (n - 1) / 2)
    throw DataError(path + ": /model/rdm must be (T, " + std::to_string(n * (n - 1) / 2) + ")");
  return m;
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

bool Configured(const config::Config& cfg, const std::string& stage) {
  return std::find(cfg.run.stages.begin(), cfg.run.stages.end(), stage) != cfg.run.stages.end();
}

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
// quantile 1 - cluster_p (MNE's default threshold); the sign flips of stats::SignFlipsFor: every
// pattern when n reaches MNE's exact test (n >= 2^P: as MNE), else n - 1 random flips drawn from
// (seed, k). Writes /meg/<model>/alignment/significant (T) int8 (1 inside a cluster with p < 0.05)
// with attributes threshold, cluster_p_threshold, n_permutations (patterns used, the observed
// included), exact (1 for the exact test), and clusters (K, 4) float64
// rows (start, stop, mass, p) when there is a cluster. spearman: (P, T) float64.
void WriteAlignmentClusters(io::ResultsStore* store, const std::string& model,
                            const at::Tensor& spearman, int64_t n, double cluster_p,
                            uint64_t seed) {
  const int64_t P = spearman.size(0), T = spearman.size(1);
  const std::string g = "/meg/" + model + "/alignment";
  // A timepoint whose curves are equal for every participant (e.g. identical pre-stimulus model
  // RDMs on tiny data) has no t statistic: the test is then not run (a warning says why; no
  // /significant).
  const at::Tensor data = spearman.to(at::kDouble).contiguous();
  if ((data.var(0) <= 0).any().item<bool>()) {
    LOG_WARN("alignment {}: a timepoint has zero variance over participants; no cluster test",
             model);
    return;
  }
  const double threshold = stats::ClusterFormingThreshold(cluster_p, P, stats::Tail::kUpper);
  const bool exact = stats::UseExactSignFlips(n, P, stats::Tail::kUpper);
  const at::Tensor flips = stats::SignFlipsFor(n, P, stats::Tail::kUpper, seed);
  const stats::ClusterTestResult res =
      stats::ClusterTest(data, threshold, stats::Tail::kUpper, flips);
  at::Tensor significant = at::zeros({T}, at::kChar);
  at::Tensor rows = at::zeros({int64_t(res.clusters.size()), 4}, at::kDouble);
  for (size_t k = 0; k < res.clusters.size(); ++k) {
    const stats::Cluster& cl = res.clusters[k];
    rows[int64_t(k)][0] = double(cl.start);
    rows[int64_t(k)][1] = double(cl.stop);
    rows[int64_t(k)][2] = cl.mass;
    rows[int64_t(k)][3] = cl.p;
    if (cl.p < 0.05) significant.slice(0, cl.start, cl.stop).fill_(1);
  }
  store->WriteTensor(g + "/significant", significant);
  store->SetAttribute(g + "/significant", "threshold", threshold);
  store->SetAttribute(g + "/significant", "cluster_p_threshold", 0.05);
  store->SetAttribute(g + "/significant", "n_permutations", flips.size(0) + 1);
  store->SetAttribute(g + "/significant", "exact", int64_t(exact ? 1 : 0));
  if (!res.clusters.empty()) store->WriteTensor(g + "/clusters", rows);
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
  // The models: the group model and one per participant, each from its unit's folder, all over
  // the same objects (a subset of the stack's, in its order).
  std::vector<std::string> model_names, objects;
  std::vector<at::Tensor> models;  // (T, m) float64
  auto add_model = [&](const std::string& name) {
    const std::string path = ModelRdmPath(c.run_dir + "/" + name);
    ModelRdms r = ReadModelRdms(path);
    if (models.empty()) objects = r.names;
    if (r.names != objects)
      throw DataError(path + ": /model/names differ from those of model " + model_names[0] +
                      " (every model of a run is compared on the same objects)");
    if (r.rdm.size(0) != T)
      throw DataError(path + ": " + std::to_string(r.rdm.size(0)) +
                      " timepoints, the MEG axis of " + stack.source() + " has " +
                      std::to_string(T));
    model_names.push_back(name);
    models.push_back(r.rdm);
  };
  if (Configured(cfg, "group")) add_model("group");
  std::vector<int64_t> own;  // individual models: column of their participant
  if (Configured(cfg, "individual"))
    for (int64_t p = 0; p < P; ++p) {
      add_model(UnitName(Stage::kIndividual, labels[size_t(p)]));
      own.push_back(p);
    }
  if (models.empty())
    throw ConfigError("stage alignment: no model stage (group, individual) in run.stages");
  const std::vector<int64_t> all_idx =
      meg::IndicesOfNames(stack.names(), objects, stack.source(), "the model RDMs' /model/names");
  const int64_t n = int64_t(all_idx.size()), m = n * (n - 1) / 2;

  // This rank's timepoints, rescaled by meg/'s one rule (meg.rdm.rescale: the whole file's range,
  // as training uses): each rank streams the range of its timepoints, the ranks combine them.
  const Range r = ShardRange(T, comm.size(), comm.rank());
  const int64_t count = r.end - r.begin;
  const meg::RdmStack::Range part = stack.ValueRange(r.begin, count);
  at::Tensor bounds = at::tensor({part.max, -part.min}, at::kDouble);
  comm.AllreduceMax(bounds);
  const meg::RdmScale scale = meg::RdmScale::FromRange(
      cfg.meg_rdm.rescale, {-bounds[1].item<double>(), bounds[0].item<double>()}, stack.source());
  const at::Tensor iu = at::triu_indices(n, n, 1);
  at::Tensor meg = at::empty({P, count, m}, at::kDouble);
  for (int64_t p = 0; p < P && count > 0; ++p) {
    const at::Tensor x =
        scale.Apply(stack.Read(pidx[size_t(p)], r.begin, count, all_idx).to(at::kDouble));
    meg[p] = x.index({at::indexing::Slice(), iu[0], iu[1]});
  }

  // Per-timepoint statistics of this rank's timepoints, gathered in timepoint order.
  std::vector<at::Tensor> parts;  // each (count, P)
  {
    OneThread one;
    for (const at::Tensor& model : models) {
      const rsa::TimeResolvedAlignment a =
          rsa::AlignTimeResolved(model.slice(0, r.begin, r.end).contiguous(), meg);
      parts.push_back(a.spearman.t());
      parts.push_back(a.pearson.t());
    }
    if (P >= 2) {
      const rsa::TimeResolvedCeiling ceil = rsa::CeilingTimeResolved(meg);
      parts.push_back(ceil.lower.t());
      parts.push_back(ceil.upper.t());
    }
  }
  const int64_t Q = int64_t(parts.size());
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
  UnitOutcome out;
  parallel::RunOnRoot(comm, [&] {
    io::ResultsStore store = io::ResultsStore::Create(c.out_dir + "/alignment.h5");
    io::WriteProvenance(&store, "run alignment", c.config_hash, config::DumpConfig(cfg));
    WriteMegAxes(&store, times, labels);
    std::vector<at::Tensor> individual_spearman;
    std::vector<std::string> individual_names;
    for (size_t i = 0; i < models.size(); ++i) {
      const rsa::TimeResolvedAlignment a{block(2 * int64_t(i)), block(2 * int64_t(i) + 1)};
      WriteMegAlignment(&store, model_names[i], a, times, labels);
      if (P >= 2 && cfg.run.cluster_n > 1)
        WriteAlignmentClusters(&store, model_names[i], a.spearman, cfg.run.cluster_n,
                               cfg.run.cluster_p, uint64_t(cfg.run.seed));
      if (model_names[i] == "group") {
        const at::Tensor mean_curve = a.spearman.mean(0);
        out.metric_name = "group_peak_ms";
        out.metric = rsa::PeakLatencyMs(mean_curve, axis.start_ms, axis.step_ms);
        out.metrics["group_auc"] = rsa::AreaFromZero(mean_curve, axis.start_ms, axis.step_ms);
      } else {
        individual_spearman.push_back(a.spearman);
        individual_names.push_back(model_names[i]);
      }
    }
    if (P >= 2)
      WriteCeiling(&store,
                   {block(2 * int64_t(models.size())), block(2 * int64_t(models.size()) + 1)},
                   times, labels);
    if (individual_spearman.size() >= 2) {
      const at::Tensor matrix =
          rsa::OwnVsOtherMatrix(individual_spearman, axis.start_ms, axis.step_ms);
      const rsa::OwnVsOther test =
          rsa::OwnVsOtherTest(matrix, own, cfg.run.own_vs_other_n, uint64_t(cfg.run.seed));
      WriteOwnVsOther(&store, matrix, test, individual_names, labels, own);
      store.WriteStrings("/run/own_vs_other_models", individual_names);
      out.metrics["own_minus_other"] = test.statistic;
      out.metrics["own_vs_other_p"] = test.p_value;
      if (out.metric_name.empty()) {
        out.metric_name = "own_minus_other";
        out.metric = test.statistic;
      }
    }
    store.WriteStrings("/run/models", model_names);
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
                      times, labels);
    if (in.Exists(g + "/significant")) {
      store->WriteTensor(g + "/significant", in.ReadTensor(g + "/significant"));
      for (const char* attr : {"threshold", "cluster_p_threshold"})
        store->SetAttribute(g + "/significant", attr,
                            in.ReadDoubleAttribute(g + "/significant", attr));
      for (const char* attr : {"n_permutations", "exact"})
        store->SetAttribute(g + "/significant", attr,
                            in.ReadIntAttribute(g + "/significant", attr));
      if (in.Exists(g + "/clusters"))
        store->WriteTensor(g + "/clusters", in.ReadTensor(g + "/clusters"));
    }
  }
  if (in.Exists("/meg/ceiling/lower"))
    WriteCeiling(store, {in.ReadTensor("/meg/ceiling/lower"), in.ReadTensor("/meg/ceiling/upper")},
                 times, labels);
  if (in.Exists("/meg/own_vs_other/matrix")) {
    const std::string g = "/meg/own_vs_other/matrix";
    rsa::OwnVsOther test{
        in.ReadDoubleAttribute(g, "statistic"), in.ReadDoubleAttribute(g, "p_value"),
        in.ReadIntAttribute(g, "n_permutations"), in.ReadIntAttribute(g, "exact") != 0};
    const at::Tensor own = in.ReadTensor("/meg/own_vs_other/own").to(at::kLong).contiguous();
    WriteOwnVsOther(
        store, in.ReadTensor(g), test, in.ReadStrings("/run/own_vs_other_models"), labels,
        std::vector<int64_t>(own.data_ptr<int64_t>(), own.data_ptr<int64_t>() + own.numel()));
  }
}

}  // namespace cliphba::pipeline
