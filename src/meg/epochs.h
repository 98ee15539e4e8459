// Epoched sensor data -> time-resolved RDMs per participant (`cliphba meg rdm`).
//
// Dimension legend: N trials, C channels, S samples per epoch, K conditions (objects),
// T output timepoints, m = K (K - 1) / 2 pairs.
//
// Input: one epochs HDF5 per participant (results/README.md "Epochs file"):
//   /epochs/data float (N, C, S), /epochs/condition int (N) in 0..K-1, /epochs/condition_names
//   string (K), attributes sfreq (Hz) and tmin_ms (time of sample 0) on /epochs.
// Output: the MEG RDM HDF5 (condensed (P, T, m) float32 under /meg/rdm) that meg::RdmStack reads.
//
// Time handling, in this order: crop to [tmin_ms, tmax_ms]; boxcar average of w = round(window_ms
// * sfreq / 1000) samples (made odd by + 1, centred; at the edges of the epoch the mean of the
// samples that exist); keep every k-th sample of the cropped range, k = round(step_ms * sfreq /
// 1000) (step_ms must be a whole number of sample periods). All operations before the distance
// are linear, so they are applied to condition (half-)means rather than to every trial.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"
#include "meg/rdm_stack.h"

namespace cliphba::meg {

// Header and labels of one epochs file (the sensor data stay on disk).
struct EpochsInfo {
  std::string path;
  int64_t trials = 0, channels = 0, samples = 0;
  std::vector<int64_t> condition;            // (N) in 0..K-1
  std::vector<std::string> condition_names;  // (K), RDM order
  double sfreq = 0, tmin_ms = 0;
  std::string participant;  // the `participant` attribute, "" if absent
};

// Reads and validates the header: shapes, condition range, names (unique, non-empty), sfreq > 0,
// every condition has at least one trial. Throws IoError / DataError naming file and field.
EpochsInfo ReadEpochsInfo(const std::string& path);

// Which samples become output timepoints.
struct EpochsPlan {
  int64_t first = 0;   // first kept sample (after the crop)
  int64_t stride = 1;  // k: every k-th sample
  int64_t window = 1;  // boxcar width in samples (odd)
  TimeAxis axis;       // output axis: start = time of `first`, step = k * 1000 / sfreq
};

// The plan for `info` under o.window_ms / step_ms / tmin_ms / tmax_ms. Throws ConfigError when
// step_ms is not a whole number of samples, the window is longer than the epoch, or the crop
// keeps no sample (each message names the key, the file and the numbers).
EpochsPlan PlanEpochs(const EpochsInfo& info, const config::MegEpochsOptions& o);

// Time-resolved RDMs of one participant: (T, m) float64, condensed.
// method "correlation": 1 - Pearson r across channels of the condition means;
// method "crossnobis": trials of each condition, in file order, split into halves A (1st, 3rd,
// ...) and B (2nd, 4th, ...); d_ij = (A_i - A_j) . (B_i - B_j) / C (unbiased, can be < 0).
// Streams the data in blocks of `block` output timepoints (read buffer N * C * (block * k + w)
// float32; block <= 0: as many as fit 64 MiB), so memory does not grow with the epoch length.
// Throws DataError (a condition with < 2 trials for crossnobis; a constant condition mean for
// correlation, naming condition and time; non-finite data).
at::Tensor EpochsRdms(const EpochsInfo& info, const EpochsPlan& plan, const std::string& method,
                      int64_t block = 0);

struct MegRdmSummary {
  std::string out;
  std::vector<std::string> participants, names;
  TimeAxis axis;
  std::string method;
};

// The whole `cliphba meg rdm`: every file of o.files -> o.out (MEG RDM HDF5, written as
// OUT.partial and renamed), with provenance attributes (config hash and YAML). All files must
// share condition names, sfreq, tmin_ms and sample count (DataError otherwise). `sources`, when
// given, is what the /meg@sources attribute records instead of o.files (files read from a staging
// folder are recorded under their final names).
MegRdmSummary WriteMegRdms(const config::MegEpochsOptions& o, const std::string& config_hash,
                           const std::string& config_yaml,
                           const std::vector<std::string>* sources = nullptr);

}  // namespace cliphba::meg
