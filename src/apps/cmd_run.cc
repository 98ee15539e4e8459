// `cliphba run`: the whole pipeline (pipeline/run.h) from one configuration, under one MPI job.
//
// Flow: load config -> runtime, rank-aware logging, SIGTERM handler -> pipeline::RunPipeline
// (collective) -> the summary table on rank 0 (text or one JSON object).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "apps/run_commands.h"
#include "config/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "pipeline/run.h"

namespace cliphba::apps {

int RunRun(const CommonArgs& args, const RunCommandArgs& run_args, const parallel::Comm& comm) {
  SetLogRank(comm.rank(), comm.size());
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  SetLogRank(comm.rank(), comm.size(), cfg.log.all_ranks);
  InstallTerminationHandler();
  pipeline::RunArgs ra;
  ra.only = run_args.only;
  ra.force = run_args.force;
  for (const std::string& list : run_args.participants) {  // "3,4" and repeated flags
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) ra.participants.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
  }
  const pipeline::RunSummary s = pipeline::RunPipeline(cfg, ra, comm, pipeline::DefaultStages());
  if (!comm.is_root()) return 0;
  if (args.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : s.rows)
      rows.push_back({{"unit", r.unit},
                      {"state", r.state},
                      {"wall_seconds", r.wall_seconds},
                      {"metric_name", r.metric_name},
                      {"metric", std::isfinite(r.metric) ? nlohmann::json(r.metric) : nullptr}});
    fmt::print("{}\n", nlohmann::json{{"run_dir", s.run_dir},
                                      {"results", s.results},
                                      {"units", rows},
                                      {"config_hash", config::ConfigHash(cfg)}}
                           .dump());
    return 0;
  }
  fmt::print("{}", pipeline::FormatSummary(s));
  return 0;
}

}  // namespace cliphba::apps
