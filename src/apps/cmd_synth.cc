// `cliphba synth behavior`: writes a synthetic behaviour set (see data/synth_behavior.h).
#include <fmt/core.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "data/synth_behavior.h"
#include "data/synth_cohort.h"

namespace cliphba::apps {

void RefuseNonEmptyOutDir(const std::string& dir, const std::string& key, bool force) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw ConfigError(dir + ": " + key + " exists and is not a folder");
  if (!force && std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec))
    throw ConfigError(dir + ": " + key +
                      " is not empty: refusing to write over it (pass --force to replace what "
                      "this command writes there, or choose another " + key + ")");
}

int RunSynthBehavior(const CommonArgs& args, bool force) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  RefuseNonEmptyOutDir(cfg.synth_behavior.out_dir, "synth.behavior.out_dir", force);
  LOG_INFO("generating {} objects x {} dims into {}", cfg.synth_behavior.n_objects,
           cfg.synth_behavior.n_dims, cfg.synth_behavior.out_dir);
  data::SynthBehaviorSummary s = data::GenerateSynthBehavior(cfg.synth_behavior);
  if (args.json) {
    nlohmann::json j = {{"out_dir", s.out_dir},   {"n_objects", s.n_objects},
                        {"n_dims", s.n_dims},     {"n_choices", s.n_choices},
                        {"n_listed", s.n_listed}, {"mean_dissimilarity", s.mean_dissimilarity},
                        {"files", s.files},       {"config_hash", config::ConfigHash(cfg)}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print(
      "synthetic behaviour set: {} objects, {} dims, {} simulated choices, mean RDM {:.4f}\n",
      s.n_objects, s.n_dims, s.n_choices, s.mean_dissimilarity);
  for (const auto& f : s.files) fmt::print("  wrote {}\n", f);
  return 0;
}

int RunSynthCohort(const CommonArgs& args, bool force) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  const config::SynthCohortOptions& o = cfg.synth_cohort;
  LOG_INFO(
      "generating a cohort: {} objects x {} exemplars, {} participants x {} sensors x {} "
      "times into {}",
      o.n_objects, o.n_exemplars, o.n_participants, o.n_sensors, o.n_times, o.out_dir);
  data::SynthCohortSummary s = data::GenerateSynthCohort(o, force);
  if (args.json) {
    nlohmann::json j = {{"out_dir", s.out_dir},
                        {"n_objects", s.n_objects},
                        {"n_images", s.n_images},
                        {"n_dims", s.n_dims},
                        {"n_participants", s.n_participants},
                        {"n_trials_total", s.n_trials_total},
                        {"files", s.files},
                        {"config_hash", config::ConfigHash(cfg)}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print(
      "synthetic cohort: {} MEG objects + {} behaviour-only ({} images), {} behavioural dims, "
      "{} participants, {} files in {} (manifest: cohort.json)\n",
      s.n_objects, cfg.synth_cohort.behavior_only_objects, s.n_images, s.n_dims,
      s.n_participants, s.files.size(), s.out_dir);
  return 0;
}

int RunConfigShow(const CommonArgs& args) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  if (args.json) {
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& k : config::ConfigKeys())
      keys.push_back(
          {{"key", k.path}, {"type", k.type}, {"default", k.default_value}, {"doc", k.doc}});
    fmt::print("{}\n", nlohmann::json{{"config_hash", config::ConfigHash(cfg)},
                                      {"yaml", config::DumpConfig(cfg)},
                                      {"keys", keys}}
                           .dump());
    return 0;
  }
  fmt::print("# config hash {}\n{}", config::ConfigHash(cfg), config::DumpConfig(cfg));
  return 0;
}

int RunConfigGet(const CommonArgs& args, const std::string& key) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  fmt::print("{}", config::GetConfigValue(cfg, key));
  return 0;
}

}  // namespace cliphba::apps
