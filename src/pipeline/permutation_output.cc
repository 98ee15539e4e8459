// The output side of `cliphba permute`: output checks and the results writer
// (pipeline/permutation_output.h).
#include "pipeline/permutation_output.h"

#include <filesystem>
#include <string>

#include "config/config.h"
#include "core/error.h"
#include "core/shard.h"
#include "io/csv.h"
#include "io/output_policy.h"
#include "io/results_store.h"
#include "stats/bootstrap.h"

namespace cliphba::pipeline::detail {

namespace {

// Collective: each rank writes its slice [ShardRange of dim 0] of a (T)-shaped float64 result.
void WriteSharded(io::ResultsStore* store, const parallel::Comm& comm, const std::string& path,
                  const at::Tensor& full) {
  const int64_t len = full.size(0);
  Range r = ShardRange(len, comm.size(), comm.rank());
  store->WriteRows(path, {len}, full.scalar_type(), r.begin,
                   full.narrow(0, r.begin, r.size()).contiguous());
}

void WriteCi(io::ResultsStore* store, const std::string& g, const stats::CurveCi& ci,
             const char* over) {
  store->WriteTensor(g + "/estimate", ci.estimate);
  store->WriteTensor(g + "/lower", ci.lower);
  store->WriteTensor(g + "/upper", ci.upper);
  store->SetAttribute(g, "resampled", std::string(over));
  store->SetAttribute(g, "method",
                      std::string("percentile bootstrap (numpy 'linear' percentiles)"));
  store->SetAttribute(g, "level", ci.level);
  store->SetAttribute(g, "n_boot", ci.n_boot);
  store->SetAttribute(g, "n_valid", ci.n_valid);
  store->SetAttribute(g, "peak_ms", std::vector<double>{ci.peak_ms, ci.peak_lower, ci.peak_upper});
  store->SetAttribute(g, "auc_from_0ms", std::vector<double>{ci.auc, ci.auc_lower, ci.auc_upper});
  store->SetAttribute(g, "auc_units", std::string("value x s"));
}

}  // namespace

void WriteResults(const config::Config& cfg, const parallel::Comm& comm, const std::string& hash,
                  const PermuteOutcome& res, int64_t n_timepoints) {
  const auto& po = cfg.permute;
  io::ResultsStore store = comm.is_mpi() ? io::ResultsStore::CreateParallel(po.out, comm)
                                         : io::ResultsStore::Create(po.out);
  io::WriteProvenance(&store, "permute", config::ConfigHash(cfg), config::DumpConfig(cfg));
  store.SetAttribute("/", "results_hash", hash);
  at::Tensor times = po.time_start_ms + po.time_step_ms * at::arange(n_timepoints, at::kDouble);
  store.WriteTensor("/permute/time_ms", times);
  store.SetAttribute("/permute/time_ms", "units", std::string("ms"));
  if (res.mantel.ran) {
    const auto& o = po.mantel;
    const auto& r = res.mantel;
    const std::string g = "/permute/mantel";
    WriteSharded(&store, comm, g + "/observed", r.observed);
    WriteSharded(&store, comm, g + "/p", r.p);
    WriteSharded(&store, comm, g + "/p_fwer", r.p_fwer);
    WriteSharded(&store, comm, g + "/p_fdr", r.p_fdr);
    if (po.save_null) WriteSharded(&store, comm, g + "/null_max", r.null_max);
    store.SetAttribute(
        g, "definition",
        std::string("object-label permutation of the model RDM (M'[i,j] = "
                    "M[p[i],p[j]]); p = (1 + #{null >= obs}) / (1 + N); p_fwer by "
                    "the maximum statistic over timepoints; p_fdr Benjamini-Hochberg"));
    store.SetAttribute(g, "statistic", std::string(config::Name(o.statistic)));
    store.SetAttribute(g, "tail", o.tail);
    store.SetAttribute(g, "n", r.n);
    store.SetAttribute(g, "seed", o.seed);
    store.SetAttribute(g, "permutations", o.permutations);
    store.SetAttribute(g, "model_rdm", o.model_rdm);
    store.SetAttribute(g, "neural_rdm", o.neural_rdm);
    store.SetAttribute(g, "n_objects", r.n_objects);
    store.SetAttribute(g, "null_max_mean", r.null_max_mean);
    store.SetAttribute(g, "fdr_alpha", po.fdr_alpha);
    if (!o.neural_names.empty())
      store.WriteStrings(g + "/object_names", io::ReadNameList(o.neural_names));
  }
  if (res.cluster.ran) {
    const auto& o = po.cluster;
    const auto& r = res.cluster;
    const std::string g = "/permute/cluster";
    WriteSharded(&store, comm, g + "/t_obs", r.t_obs);
    WriteSharded(&store, comm, g + "/p_tmax", r.p_tmax);
    at::Tensor table = at::empty({int64_t(r.clusters.size()), 4}, at::kDouble);
    for (size_t i = 0; i < r.clusters.size(); ++i) {
      table[i][0] = double(r.clusters[i].start), table[i][1] = double(r.clusters[i].stop);
      table[i][2] = r.clusters[i].mass, table[i][3] = r.clusters[i].p;
    }
    store.WriteTensor(g + "/clusters", table);
    store.SetAttribute(g + "/clusters", "columns",
                       std::vector<std::string>{"start", "stop", "mass", "p"});
    if (po.save_null) WriteSharded(&store, comm, g + "/h0", r.h0);
    store.SetAttribute(g, "definition",
                       std::string("sign-flip cluster permutation test over participants "
                                   "(MNE permutation_cluster_1samp_test, 1-D, no adjacency): "
                                   "cluster mass = sum of t; H0 includes the observed pattern"));
    store.SetAttribute(g, "threshold", r.threshold);
    store.SetAttribute(g, "tail", o.tail);
    store.SetAttribute(g, "n", r.n);
    store.SetAttribute(g, "seed", o.seed);
    store.SetAttribute(g, "flips", o.flips);
    store.SetAttribute(g, "exact", int64_t(r.exact ? 1 : 0));
    store.SetAttribute(g, "data", o.data);
    if (r.has_ci) WriteCi(&store, g + "/bootstrap", r.ci, "participants");
  }
  store.Commit();
}

// Before any work (the output policy of README.md): permute.out (and its checkpoint) must not be
// one of the inputs, nor a folder; without --resume an existing result or checkpoint is replaced
// only with --force. ConfigError (exit 2) naming the file and the flag otherwise.
void CheckOutputPath(const config::PermuteOptions& po, const RunFlags& flags) {
  const std::string& out = po.out;
  if (out.empty()) return;
  io::RefuseOutputOverInputs(
      "permute.out", out, {CheckpointPath(out), NullMaxPath(out)},
      {po.mantel.model_rdm, po.mantel.neural_rdm, po.mantel.model_names, po.mantel.neural_names,
       po.mantel.permutations, po.cluster.data, po.cluster.flips});
  namespace fs = std::filesystem;
  if (flags.resume || flags.force) return;
  if (fs::exists(out))
    throw ConfigError("permute.out " + out +
                      " exists: refusing to replace a result (use --force to replace it, or "
                      "--resume to check it against these settings)");
  if (fs::exists(CheckpointPath(out)))
    throw ConfigError(CheckpointPath(out) +
                      " holds an unfinished run: --resume continues it, --force discards it");
}

void RemoveCheckpoint(const std::string& out) {
  std::error_code ec;
  std::filesystem::remove(CheckpointPath(out), ec);
  std::filesystem::remove(NullMaxPath(out), ec);
}

// On --resume: an existing finished OUT must come from the same settings.
void CheckExistingOutput(const std::string& out, const std::string& hash, const RunFlags& flags) {
  if (out.empty() || !std::filesystem::exists(out) || flags.force) return;
  std::string existing;
  try {
    io::ResultsReader r(out);
    existing = r.ReadStringAttribute("/", "results_hash");
  } catch (const Error&) {
    throw ConfigError(out +
                      " exists but is not a cliphba permute results file; refusing to "
                      "overwrite it (use --force, or choose another permute.out)");
  }
  if (existing != hash)
    throw ConfigError(out + " was written under different settings (results hash " + existing +
                      ", now " + hash +
                      "); refusing to resume into it. Use --force to replace it.");
}

}  // namespace cliphba::pipeline::detail
