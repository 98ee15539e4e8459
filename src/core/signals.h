// Cooperative termination: Slurm sends SIGTERM before preempting a job (`--signal=B:TERM@120`).
// The handler only records the request; long loops poll TerminationRequested() at safe points,
// write a checkpoint and exit with ExitCode::kPreempted.
#pragma once

namespace cliphba {

// Installs handlers for SIGTERM and SIGINT (idempotent). Not thread-safe against concurrent calls.
void InstallTerminationHandler();

// True once SIGTERM or SIGINT has been received. Async-signal-safe to set, cheap to poll.
bool TerminationRequested();

// "SIGTERM" or "SIGINT": the signal this process received, "" if none (e.g. on a rank that stops
// because another rank was signalled).
const char* TerminationSignalName();

}  // namespace cliphba
