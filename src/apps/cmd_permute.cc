// `cliphba permute`: permutation tests (Mantel over time, sign-flip cluster and t-max over
// participants), MPI-sharded, checkpointed, resumable. Rank 0 prints; all ranks compute.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "config/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "parallel/comm.h"
#include "pipeline/permutation.h"

namespace cliphba::apps {

namespace {

std::vector<double> ToVector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void PrintTable(const pipeline::PermuteOutcome& r) {
  if (r.mantel.ran) {
    const auto& m = r.mantel;
    fmt::print("Mantel test: {} objects, {} timepoints, {} permutations (null max mean {:.6f})\n",
               m.n_objects, m.observed.size(0), m.n, m.null_max_mean);
    fmt::print("{:>6} {:>12} {:>10} {:>10} {:>10}\n", "t", "observed", "p", "p_fwer", "p_fdr");
    for (int64_t t = 0; t < m.observed.size(0); ++t)
      fmt::print("{:>6} {:>12.6f} {:>10.5f} {:>10.5f} {:>10.5f}\n", t, m.observed[t].item<double>(),
                 m.p[t].item<double>(), m.p_fwer[t].item<double>(), m.p_fdr[t].item<double>());
  }
  if (r.cluster.ran) {
    const auto& c = r.cluster;
    fmt::print("Cluster test: {} timepoints, {} sign patterns, threshold t = {:.6f}\n",
               c.t_obs.size(0), c.n, c.threshold);
    fmt::print("{:>6} {:>6} {:>14} {:>10}\n", "start", "stop", "mass", "p");
    for (const auto& k : c.clusters)
      fmt::print("{:>6} {:>6} {:>14.6f} {:>10.5f}\n", k.start, k.stop, k.mass, k.p);
    if (c.clusters.empty()) fmt::print("(no cluster above the threshold)\n");
  }
  if (!r.out.empty()) fmt::print("results written to {}\n", r.out);
}

}  // namespace

int RunPermute(const CommonArgs& args, const PermuteArgs& pargs, const parallel::Comm& comm) {
  SetLogRank(comm.rank(), comm.size());
  std::vector<std::string> overrides = args.overrides;
  // Ad-hoc forms run one test only, whatever else the config file names.
  if (pargs.only == "mantel") overrides.insert(overrides.begin(), "permute.cluster.data=");
  if (pargs.only == "cluster") overrides.insert(overrides.begin(), "permute.mantel.model_rdm=");
  // Flags of the ad-hoc forms come last so they win over the file and --set.
  config::Config cfg = config::LoadConfig(args.config_file, overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  SetLogRank(comm.rank(), comm.size(), cfg.log.all_ranks);  // after the level: quiets ranks != 0
  InstallTerminationHandler();
  pipeline::RunFlags flags;
  flags.resume = pargs.resume;
  flags.force = pargs.force;
  pipeline::PermuteOutcome r = pipeline::RunPermute(cfg, comm, flags);
  if (!comm.is_root()) return 0;
  if (!args.json) {
    PrintTable(r);
    return 0;
  }
  nlohmann::json j;
  if (r.mantel.ran) {
    nlohmann::json m = {
        {"observed", ToVector(r.mantel.observed)}, {"p", ToVector(r.mantel.p)},
        {"p_fwer", ToVector(r.mantel.p_fwer)},     {"p_fdr", ToVector(r.mantel.p_fdr)},
        {"null_max_mean", r.mantel.null_max_mean}, {"n", r.mantel.n}};
    if (pargs.only == "mantel")
      j = m;
    else
      j["mantel"] = m;
  }
  if (r.cluster.ran) {
    nlohmann::json clusters = nlohmann::json::array();
    for (const auto& k : r.cluster.clusters)
      clusters.push_back({{"start", k.start}, {"stop", k.stop}, {"mass", k.mass}, {"p", k.p}});
    nlohmann::json c = {{"t_obs", ToVector(r.cluster.t_obs)},
                        {"clusters", clusters},
                        {"p_tmax", ToVector(r.cluster.p_tmax)},
                        {"threshold", r.cluster.threshold},
                        {"n", r.cluster.n},
                        {"exact", r.cluster.exact}};
    if (pargs.only == "cluster")
      j = c;
    else
      j["cluster"] = c;
  }
  if (!r.out.empty()) j["out"] = r.out;
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace cliphba::apps
