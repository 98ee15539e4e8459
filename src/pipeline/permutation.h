// Permutation sweeps: the Mantel test over a neural RDM time course and the sign-flip cluster /
// t-max tests over participants, sharded over MPI ranks, checkpointed and resumable.
//
// Work unit: a block of `batch` permutations against one chunk of `chunk_timepoints` timepoints.
// Chunks are streamed one after the other (peak memory ~ 4 m Tc bytes + the gather buffer, not
// O(T)); the blocks of a chunk are split over ranks in rounds of `checkpoint_every` permutations.
// After each round the ranks reduce their integer counts and per-permutation maxima (exact, so the
// result is bit-identical for any number of ranks) and rank 0 writes OUT.ckpt atomically.
// SIGTERM is honoured at round boundaries: checkpoint, then ExitCode::kPreempted.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "config/options.h"
#include "parallel/comm.h"
#include "stats/bootstrap.h"

namespace cliphba::pipeline {

struct RunFlags {
  bool resume = false;  // continue from OUT.ckpt if it exists
  bool force = false;   // resume/overwrite even if OUT or OUT.ckpt came from another config
};

struct MantelOutcome {
  bool ran = false;
  at::Tensor observed;  // (T) float64 statistics (exact, float64)
  at::Tensor p;         // (T) uncorrected
  at::Tensor p_fwer;    // (T) max-statistic corrected over timepoints
  at::Tensor p_fdr;     // (T) Benjamini-Hochberg adjusted uncorrected p
  at::Tensor null_max;  // (N) per-permutation maximum over timepoints (|r| when two-sided);
                        // defined only with permute.save_null
  double null_max_mean = 0;
  int64_t n = 0;  // permutations
  int64_t n_objects = 0;
  bool has_ci = false;  // permute.bootstrap_n > 0: CIs by resampling objects
  stats::CurveCi ci;
};

struct ClusterRow {
  int64_t start = 0, stop = 0;  // timepoint indices, stop exclusive
  double mass = 0, p = 0;
};

struct ClusterOutcome {
  bool ran = false;
  at::Tensor t_obs;   // (T)
  at::Tensor p_tmax;  // (T) t-max family-wise p
  at::Tensor h0;      // (n) max cluster statistic per sign pattern, observed first
  std::vector<ClusterRow> clusters;
  double threshold = 0;
  int64_t n = 0;        // sign patterns incl. the observed one
  bool exact = false;   // every sign pattern of MNE's exact test (stats::UseExactSignFlips)
  bool has_ci = false;  // permute.bootstrap_n > 0: CIs of the mean curve by resampling participants
  stats::CurveCi ci;
};

struct PermuteOutcome {
  MantelOutcome mantel;
  ClusterOutcome cluster;
  std::string out;  // results file written ("" if none configured)
};

// Collective over comm: runs the configured tests (Mantel if permute.mantel.model_rdm is set,
// cluster if permute.cluster.data is set) and writes permute.out (if set) collectively.
// Throws ConfigError/IoError/DataError (the same on every rank where the cause is shared input) and
// Error(kPreempted) after checkpointing on SIGTERM.
PermuteOutcome RunPermute(const config::Config& config, const parallel::Comm& comm,
                          const RunFlags& flags);

// Hash of the settings that determine the numbers (inputs, statistic, tail, N, seed, batch,
// chunking, precision): a checkpoint or result is resumable only under the same hash.
std::string ResultsHash(const config::Config& config);

}  // namespace cliphba::pipeline
