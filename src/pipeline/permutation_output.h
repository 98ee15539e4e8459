// The output side of `cliphba permute` (internal to cliphba_pipeline): the output policy checks
// made before any work, and the collective writer of the results file.
#pragma once

#include <string>

#include "config/options.h"
#include "parallel/comm.h"
#include "pipeline/permutation.h"

namespace cliphba::pipeline::detail {

// The checkpoint beside a results file: OUT.ckpt.
inline std::string CheckpointPath(const std::string& out) { return out + ".ckpt"; }

// Beside the checkpoint, when a sweep must keep every permutation's null maximum (timepoints in
// more than one chunk, or permute.save_null): OUT.ckpt.null_max, N float64 written in place.
inline std::string NullMaxPath(const std::string& out) { return CheckpointPath(out) + ".null_max"; }

// Removes OUT.ckpt and OUT.ckpt.null_max (those that exist). Never throws. Call on one rank.
void RemoveCheckpoint(const std::string& out);

// Before any work (the output policy of README.md): permute.out (and its checkpoint) must not be
// one of the inputs, nor a folder; without --resume an existing result or checkpoint is replaced
// only with --force. Throws ConfigError (exit 2) naming the file and the flag.
void CheckOutputPath(const config::PermuteOptions& po, const RunFlags& flags);

// On --resume: an existing finished OUT must come from the same settings (results hash), unless
// --force. Throws ConfigError.
void CheckExistingOutput(const std::string& out, const std::string& hash, const RunFlags& flags);

// Collective: writes permute.out (results of res, provenance, the results hash) through one
// parallel store; each rank writes its share of the per-timepoint rows.
void WriteResults(const config::Config& cfg, const parallel::Comm& comm, const std::string& hash,
                  const PermuteOutcome& res, int64_t n_timepoints);

}  // namespace cliphba::pipeline::detail
