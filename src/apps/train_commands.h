// The stage-1 subcommands: `cliphba train behavior`, `cliphba evaluate behavior` and the demo data
// generator `cliphba synth images`. Each returns the process exit code and throws cliphba::Error
// (caught once in main).
#pragma once

#include "apps/commands.h"
#include "parallel/comm.h"

namespace cliphba::apps {

// Trains stage 1 (train/behavior.h) from the config's train.behavior section; resume: continue
// from OUT_DIR/last_state.json. Collective over comm (MPI_COMM_WORLD under a launcher, else the
// serial communicator). Prints the loss curve and the held-out evaluation (rank 0; --json: one
// object). Returns 0, or ExitCode::kPreempted (75) after a SIGTERM (rerun with --resume).
// force: train over an out_dir that holds an earlier run (refused otherwise, exit 2, unless
// resume).
int RunTrainBehavior(const CommonArgs& args, bool resume, bool force, const parallel::Comm& comm);

// Evaluates OUT_DIR/best.safetensors on the held-out objects; writes OUT_DIR/evaluation.h5.
// Collective over comm.
int RunEvaluateBehavior(const CommonArgs& args, const parallel::Comm& comm);

// Trains a MEG model (train/meg.h) from train.meg + meg.rdm; resume as for behaviour.
// Returns 0, or ExitCode::kPreempted (75) after a SIGTERM.
int RunTrainMeg(const CommonArgs& args, bool resume, bool force, const parallel::Comm& comm);

// Time-resolved alignment of the MEG checkpoint on the held-out objects; writes
// OUT_DIR/evaluation.h5. Collective.
int RunEvaluateMeg(const CommonArgs& args, const parallel::Comm& comm);

// Writes the synthetic image set of the synth.images section (data/behavior_dataset.h).
int RunSynthImages(const CommonArgs& args, bool force);

}  // namespace cliphba::apps
