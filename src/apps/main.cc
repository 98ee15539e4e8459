// cliphba: the command-line entry point. Parses the command line, runs one subcommand, and catches
// errors once: a cliphba::Error prints its message and exits with its documented code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

using cliphba::apps::CommonArgs;

namespace {

// Adds --config/--set/--json to a subcommand.
void AddCommon(CLI::App* cmd, CommonArgs* args) {
  cmd->add_option("--config", args->config_file,
                  "YAML configuration file (see configs/reference.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args->overrides,
                  "override a configuration key: --set key.path=value (repeatable)")
      ->allow_extra_args(false)
      ->take_all();
  cmd->add_flag("--json", args->json, "print one machine-readable JSON object on stdout");
}

// An explicit flag bound to a configuration key: recorded as an override applied after --set.
void AddKeyOption(CLI::App* cmd, const std::string& flag, const std::string& key,
                  const std::string& help, std::vector<std::string>* flag_overrides) {
  cmd->add_option_function<std::string>(
      flag, [=](const std::string& v) { flag_overrides->push_back(key + "=" + v); },
      help + " (config key " + key + ")");
}

}  // namespace

int main(int argc, char** argv) {
  // Log lines go to stderr (the default spdlog logger writes to stdout, which is reserved for
  // results and --json).
  cliphba::SetLogRank(0, 1);
  CLI::App app{"cliphba: brain-aligned CLIP models of individual people, at cohort scale"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return std::string("cliphba ") + cliphba::Version(); });

  CommonArgs args;
  std::vector<std::string> flag_overrides;
  int (*run)(const CommonArgs&) = nullptr;

  CLI::App* version = app.add_subcommand(
      "version", "versions of cliphba, LibTorch, MPI, HDF5 (parallel?) and the loaded BLAS");
  version->add_flag("--json", args.json, "print one JSON object");
  version->callback([&] { run = cliphba::apps::RunVersion; });

  CLI::App* config = app.add_subcommand("config", "print the resolved configuration as YAML");
  AddCommon(config, &args);
  config->callback([&] { run = cliphba::apps::RunConfigShow; });

  CLI::App* synth = app.add_subcommand("synth", "generate synthetic data with known ground truth");
  synth->require_subcommand(1);
  CLI::App* synth_behavior = synth->add_subcommand(
      "behavior", "a behaviour set: sparse embedding + triplet-derived human RDM (SPoSE rule)");
  AddCommon(synth_behavior, &args);
  AddKeyOption(synth_behavior, "--out-dir", "synth.behavior.out_dir", "output folder",
               &flag_overrides);
  AddKeyOption(synth_behavior, "--n-objects", "synth.behavior.n_objects", "number of objects",
               &flag_overrides);
  AddKeyOption(synth_behavior, "--seed", "synth.behavior.seed", "random seed", &flag_overrides);
  synth_behavior->callback([&] { run = cliphba::apps::RunSynthBehavior; });

  CLI::App* rsa = app.add_subcommand("rsa", "representational similarity analyses");
  rsa->require_subcommand(1);
  CLI::App* rsa_behavior = rsa->add_subcommand(
      "behavior", "an embedding vs a human RDM: 4 RDM types x 4 comparisons, triplet accuracy");
  AddCommon(rsa_behavior, &args);
  AddKeyOption(rsa_behavior, "--embedding", "rsa.behavior.embedding",
               "embedding CSV (,image_name,0..d-1)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--rdm", "rsa.behavior.rdm", "reference RDM (n x n NPY)",
               &flag_overrides);
  AddKeyOption(rsa_behavior, "--rdm-names", "rsa.behavior.rdm_names",
               "names of the RDM rows in RDM order (.txt or CSV)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--triplets", "rsa.behavior.triplets",
               "behavioural choices (t x 3 int64 NPY: a, b, odd)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--out", "rsa.behavior.out", "HDF5 results file", &flag_overrides);
  rsa_behavior->callback([&] { run = cliphba::apps::RunRsaBehavior; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    if (code == 0) return 0;
    // CLI11 reports a missing subcommand before unexpected arguments: name what was not understood.
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      for (const std::string& extra : app.remaining(true))
        std::fprintf(stderr, "cliphba: error: unknown command or argument '%s'\n", extra.c_str());
    }
    return static_cast<int>(cliphba::ExitCode::kUsage);
  }
  args.overrides.insert(args.overrides.end(), flag_overrides.begin(), flag_overrides.end());
  try {
    return run(args);
  } catch (const cliphba::Error& e) {
    std::fprintf(stderr, "cliphba: error: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cliphba: internal error: %s\n", e.what());
    return static_cast<int>(cliphba::ExitCode::kInternal);
  }
}
