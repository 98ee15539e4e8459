// `cliphba meg rdm`: epochs HDF5 files (one per participant) -> the MEG RDM HDF5 that the MEG
// stages read (condensed (P, T, m) under /meg/rdm; layout in results/README.md).
//
// Flow: load config -> read and cross-check every file's header -> plan crop/window/step ->
// per participant, stream the sensor data over time into RDMs -> one HDF5 (atomic) -> print.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "config/config.h"
#include "core/log.h"
#include "meg/epochs.h"

namespace cliphba::apps {

int RunMegRdm(const CommonArgs& args) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  meg::MegRdmSummary s =
      meg::WriteMegRdms(cfg.meg_epochs, config::ConfigHash(cfg), config::DumpConfig(cfg));
  LOG_INFO("meg rdm: wrote {} ({} participants x {} timepoints x {} objects, {})", s.out,
           s.participants.size(), s.axis.size, s.names.size(), s.method);
  nlohmann::json j;
  j["out"] = s.out;
  j["method"] = s.method;
  j["participants"] = s.participants;
  j["n_objects"] = s.names.size();
  j["n_timepoints"] = s.axis.size;
  j["time_start_ms"] = s.axis.start_ms;
  j["time_step_ms"] = s.axis.step_ms;
  j["config_hash"] = config::ConfigHash(cfg);
  if (args.json) {
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print(
        "MEG RDMs: {} participants x {} timepoints ({} ms + k * {} ms) x {} objects "
        "({}) -> {}\n",
        s.participants.size(), s.axis.size, s.axis.start_ms, s.axis.step_ms, s.names.size(),
        s.method, s.out);
  }
  return 0;
}

}  // namespace cliphba::apps
