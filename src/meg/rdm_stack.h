// MEG RDM stacks: time-resolved representational dissimilarity matrices per participant.
//
// Dimension legend: P participants, T timepoints, n objects in the file, k objects selected,
// m = n (n - 1) / 2 pairs (condensed: strict upper triangle, row-major i < j, scipy order).
//
// Sources (config::MegRdmOptions, YAML `meg.rdm`):
//   NPY  (P, T, n, n) square or (P, T, m) condensed, float32/float64, C order; memory-mapped.
//        Names from options.names, time axis from options.time_start_ms / time_step_ms.
//   HDF5 dataset options.dataset (default /meg/rdm), rank 4 (P, T, n, n) or rank 3 (P, T, m);
//        names from /meg/names (or options.names), participants from /meg/participants
//        (optional), time axis from the attributes time_start_ms / time_step_ms of the dataset or
//        of its parent group (/meg). Reads are hyperslabs: memory is bounded by what is asked for.
// Smoothing (options.smooth_ms > 0, the reference's smoothen_rdm): every accessor sees the
// block-mean stack: timepoint 0 as in the file, then timepoint t >= 1 = mean of file samples
// [1 + (t - 1) w, 1 + t w) with w = smooth_ms / step (a whole number; a trailing remainder is
// dropped), on the axis (start, w * step). E.g. Cichy's 1 ms stacks, -100..1000 ms: 1101 -> 221
// timepoints at 5 ms.
// Nothing is repaired silently: every violation is a DataError naming the file, the field and
// what was expected (NaN/Inf become 0 only under nan_policy "zero", with a logged count).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::meg {

// A time axis: timepoint i is at start_ms + i * step_ms (CONTRACTS "Time axis convention").
struct TimeAxis {
  double start_ms = 0, step_ms = 1;
  int64_t size = 0;
  double TimeAt(int64_t i) const { return start_ms + double(i) * step_ms; }
  // floor((ms - start_ms) / step_ms): Python // semantics of the reference's ms_to_timepoints.
  // May be < 0 or >= size (the caller checks coverage).
  int64_t IndexOf(double ms) const;
  // (0 - start_ms) // step_ms + 1: curves are zeroed for indices < this (reference quirk: the
  // 0 ms sample itself is zeroed too). May be <= 0 (axis starts after 0 ms) or > size.
  int64_t ZeroMsPosition() const;
};

class RdmStack {
 public:
  // Opens the source named by `o` and validates what can be checked without reading the data:
  // dataset rank and shape (square or condensed with m = n (n - 1) / 2), dtype, names (count ==
  // n, no duplicates, none empty), participants labels (count == P), time step > 0.
  // Throws ConfigError (path/names not set, unknown extension), IoError (missing file) or
  // DataError (malformed content), each naming the file and the field.
  static RdmStack Open(const config::MegRdmOptions& o);

  int64_t participants() const;
  int64_t timepoints() const;
  int64_t objects() const;
  const std::vector<std::string>& names() const;               // (n), RDM order
  const std::vector<std::string>& participant_labels() const;  // (P); "0".."P-1" for NPY
  const TimeAxis& time() const;
  const std::string& source() const;  // the file path (for messages)
  bool condensed() const;             // stored as (P, T, m)

  // Participant p, timepoints [t0, t0 + count), objects `idx` (k indices into names()):
  // returns (count, k, k) float32, validated: finite (NaN/Inf -> 0 under nan_policy "zero"),
  // symmetric within symmetry_tolerance, zero diagonal (|a_ii| <= tolerance).
  // Throws ConfigError for p, the range or an index out of bounds, DataError naming the file,
  // participant, timepoint and the (i, j) entry for a violation. Memory: O(count * n * n) for
  // square HDF5 sources (hyperslab), O(count * k * k) otherwise. Not for concurrent calls from
  // several threads (HDF5 is built without thread safety); copies share the open file.
  at::Tensor Read(int64_t p, int64_t t0, int64_t count, const std::vector<int64_t>& idx) const;

  // Mean over participants ps (non-empty) of Read(p, ...): (count, k, k) float32 (summed in
  // float64).
  at::Tensor ReadMean(const std::vector<int64_t>& ps, int64_t t0, int64_t count,
                      const std::vector<int64_t>& idx) const;

  // Every timepoint of every object for participant p: Read(p, 0, T, 0..n-1).
  at::Tensor ReadParticipant(int64_t p) const;

  // Smallest and largest value over every participant, timepoint and entry (diagonal included),
  // i.e. np.min / np.max of the whole array as the reference's load_rdm takes them, validated as
  // Read (so NaN/Inf count as 0 under nan_policy "zero"). Streams `chunk` timepoints at a time.
  struct Range {
    double min = 0, max = 0;
  };
  Range ValueRange(int64_t chunk = 16) const;
  // The same over timepoints [t0, t0 + count) only (every participant): a shard's part, for a
  // caller that combines shards (max of max, min of min). count 0 gives {+inf, -inf}.
  Range ValueRange(int64_t t0, int64_t count, int64_t chunk = 16) const;

  struct Impl;

 private:
  explicit RdmStack(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Global min-max rescale of a (T, k, k) stack to [0, 1] (reference load_rdm): (v - min) /
// (max - min) with min and max over every entry (diagonal included), then the diagonal is set to
// 0 (it already is when the entries are >= 0, as for decoding RDMs). Computed in float64; returns
// float64 for a float64 stack, else float32. Throws DataError if the stack is constant
// (max == min) or not 3-D square.
at::Tensor RescaleMinMax(const at::Tensor& stack);
// The same with given bounds (e.g. RdmStack::ValueRange() of the whole file, which is what the
// reference rescales by; meg::RdmScale applies it): (v - min) / (max - min), diagonal set to 0.
// Throws DataError if max <= min.
at::Tensor RescaleMinMax(const at::Tensor& stack, double min, double max);

// Indices of `wanted` (e.g. image names) in `names` (RDM order): result[w] = index of wanted[w].
// Throws DataError naming both sources, the number of missing names and the first 10 of them,
// or a repeated wanted name.
std::vector<int64_t> IndicesOfNames(const std::vector<std::string>& names,
                                    const std::vector<std::string>& wanted,
                                    const std::string& names_source,
                                    const std::string& wanted_source);

}  // namespace cliphba::meg
