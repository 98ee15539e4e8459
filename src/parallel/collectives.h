// The collectives that keep the ranks of a communicator in step when something fails: one error
// agreement (AgreeOnFailure) under every "all ranks stop together" rule of cliphba — work done on
// the root only (RunOnRoot), and the argument checks of collective writers (AgreeOnArguments,
// io/'s results store). Serial communicators (Comm::Serial()) make them local and call no MPI.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/error.h"
#include "parallel/comm.h"

namespace cliphba::parallel {

// An error as the ranks agree on it: the failing rank, the exit code of its error and its message.
struct Failure {
  int rank = 0;
  ExitCode code = ExitCode::kInternal;
  std::string message;
};

// Collective: if any rank passes a failure, every rank returns the failure of the lowest failing
// rank (its rank, code and message); otherwise every rank returns nullopt. `local->rank` is ignored
// (the caller's rank is used). Serial: returns `local`.
std::optional<Failure> AgreeOnFailure(const Comm& comm, const std::optional<Failure>& local);

// Collective: runs fn on the root of comm only. An exception there is rethrown on every rank with
// its exit code and message (a cliphba Error keeps its code; any other exception is kInternal), so
// all ranks stop together instead of the others waiting in the next collective.
void RunOnRoot(const Comm& comm, const std::function<void()>& fn);

// Collective: runs fn on every rank (local work that may fail on some ranks only, e.g. decoding
// the images a rank owns); a failure anywhere is rethrown on every rank (the lowest failing
// rank's code and message), so that no rank waits in the next collective.
void RunOnAll(const Comm& comm, const std::function<void()>& fn);

// Collective, for calls that every rank must make with identical arguments (e.g. the metadata
// operations of a parallel HDF5 file): throws DataError on every rank if any rank has a non-empty
// `local_error` (that rank throws its own message, the others name it) or if the ranks passed
// different `signature`s (a text of the arguments that must agree). `what` names the call.
void AgreeOnArguments(const Comm& comm, const std::string& what, const std::string& signature,
                      const std::string& local_error);

}  // namespace cliphba::parallel
