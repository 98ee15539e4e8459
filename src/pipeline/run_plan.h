// The run plan of `cliphba run` (internal to pipeline/): which stages, participants and units one
// invocation handles, the input checks made before any work, and the upstream-done check of a
// stage. The public names, hashes and dependencies are declared in pipeline/run.h.
#pragma once

#include <string>
#include <vector>

#include "config/options.h"
#include "pipeline/run.h"

namespace cliphba::pipeline {

struct Plan {
  std::vector<Stage> configured;  // run.stages, pipeline order
  std::vector<Stage> stages;      // what this invocation runs (configured, filtered by --only)
  std::vector<std::string> participants;  // every participant of the cohort
  std::vector<std::string> selected;      // the ones this invocation models
  std::vector<std::string> all_units;     // every unit of the configured stages
  bool whole = true;                      // no --only: the run lock is exclusive
};

// Deterministic (the same on every rank). Throws ConfigError for an unknown stage, an --only stage
// that is not configured, a stage that `impl` does not provide, missing participants, or an
// invalid --participants selection.
Plan MakePlan(const config::Config& cfg, const RunArgs& args, const StageSet& impl);

// The stage function of `stage` in `impl` (may be empty; MakePlan refuses planned empty ones).
const StageFn& FnOf(const StageSet& impl, Stage stage);

// Inputs named by the configuration that must exist before the first unit starts: those of the
// behaviour stage (CheckInputs) and of the MEG stages (CheckMegInputs), when planned. Throw
// ConfigError (a required key is empty) or IoError (a file does not exist).
void CheckInputs(const config::Config& cfg, const Plan& plan);
void CheckMegInputs(const config::Config& cfg, const Plan& plan);

// Throws ConfigError naming the units of `stage`'s configured upstream stages that are not done in
// run_dir's manifest (only those of stages that this invocation does not run, if unplanned_only).
void CheckUpstreamDone(const std::string& run_dir, const Plan& plan, Stage stage,
                       bool unplanned_only = false);

}  // namespace cliphba::pipeline
