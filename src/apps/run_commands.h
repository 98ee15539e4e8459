// `cliphba run`: the pipeline command (pipeline/run.h). Returns the exit code and throws
// cliphba::Error (caught once in main): ConfigError (2) for a changed config without --force,
// IoError (3) for a locked run folder, Error(kPreempted) (75) after SIGTERM.
#pragma once

#include <string>
#include <vector>

#include "apps/commands.h"
#include "parallel/comm.h"

namespace cliphba::apps {

struct RunCommandArgs {
  std::vector<std::string> only;          // --only STAGE (repeatable)
  std::vector<std::string> participants;  // --participants 0,2,5 (labels or indices)
  bool force = false;                     // --force
};

// Collective over comm (MPI_COMM_WORLD under a launcher, else the serial communicator). Prints
// the summary table on rank 0 (--json: one object).
int RunRun(const CommonArgs& args, const RunCommandArgs& run_args, const parallel::Comm& comm);

}  // namespace cliphba::apps
