// Writing the MEG alignment block of a results file (schema: results/README.md, "MEG alignment").
//
// Dimension legend: P participants, T timepoints, M models. Every function writes through one
// io::ResultsStore; in parallel mode each call is collective (all ranks, same arguments), like the
// store's own Write*/SetAttribute. Each path may be written once per file (the store refuses an
// existing dataset), so write the axes once and each model's block once.
//
// Layout (all float64 unless stated):
//   /meg/times_ms (T), /meg/participants string (P)                       WriteMegAxes
//   /meg/<model>/alignment/{spearman,pearson} (P, T), {auc,peak_ms} (P)   WriteMegAlignment
//   /meg/ceiling/{lower,upper} (P, T)                                      WriteCeiling
//   /meg/own_vs_other/matrix (M, P), /meg/own_vs_other/own int64 (M)      WriteOwnVsOther
// <model> is "group" or "individual/<participant label>".
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rsa/alignment.h"

namespace cliphba::io {
class ResultsStore;
}

namespace cliphba::pipeline {

// The time axis of a times_ms vector (T >= 1, strictly increasing, evenly spaced within 1e-9 ms
// relative): start = times_ms[0], step = times_ms[1] - times_ms[0] (1 when T == 1).
// Throws DataError otherwise.
struct AlignmentAxis {
  double start_ms = 0, step_ms = 1;
  int64_t size = 0;
};
AlignmentAxis AxisFromTimes(const at::Tensor& times_ms);

// Throws DataError unless name is "group" or "individual/<label>" with a non-empty label without
// '/'.
void CheckModelName(const std::string& name);

// /meg/times_ms (T) and /meg/participants string (P). times_ms: (T) any float dtype.
void WriteMegAxes(io::ResultsStore* store, const at::Tensor& times_ms,
                  const std::vector<std::string>& participants);

// /meg/<model>/alignment/{spearman, pearson} (P, T) as given; auc (P) = rsa::AreaFromZero and
// peak_ms (P) = rsa::PeakLatencyMs of each participant's Spearman curve. Group attrs:
// participants (string P), time_start_ms, time_step_ms, comparison. Throws DataError for a bad
// model name or shapes that do not match times_ms (T) and participants (P).
void WriteMegAlignment(io::ResultsStore* store, const std::string& model_name,
                       const rsa::TimeResolvedAlignment& alignment, const at::Tensor& times_ms,
                       const std::vector<std::string>& participants);

// /meg/ceiling/{lower, upper} (P, T) Spearman, attrs participants, definition, mean_lower and
// mean_upper (float64 arrays (T): mean over participants). Throws DataError for shapes.
void WriteCeiling(io::ResultsStore* store, const rsa::TimeResolvedCeiling& ceiling,
                  const at::Tensor& times_ms, const std::vector<std::string>& participants);

// /meg/own_vs_other/matrix (M, P) and /own int64 (M); attrs statistic, p_value, n_permutations,
// exact (int64 0/1), rows (M model names), columns (P participant labels), definition.
// Throws DataError for shapes or M model names / own entries that do not match the matrix.
void WriteOwnVsOther(io::ResultsStore* store, const at::Tensor& matrix, const rsa::OwnVsOther& test,
                     const std::vector<std::string>& model_names,
                     const std::vector<std::string>& participants, const std::vector<int64_t>& own);

}  // namespace cliphba::pipeline
