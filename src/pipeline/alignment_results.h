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
//   /meg/<model>/alignment_insample/...  the same, in-sample (diagnostic)  WriteMegAlignment
//   /meg/ceiling/{lower,upper} (P, T)                                      WriteCeiling
//   /meg/own_vs_other/matrix (M, P), /meg/own_vs_other/own int64 (M)      WriteOwnVsOther
// <model> is "group", "individual/<participant label>", or a static baseline "clip" / "behavior".
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rsa/alignment.h"

namespace cliphba::io {
class ResultsStore;
class ResultsReader;
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

// What a block of alignment values was computed on (attributes of its group): objects
// "heldout" (one set of objects no model trained on), "cross_validated" (the mean over n_folds
// folds of the values on each fold's within-fold pairs, each fold predicted by a model that never
// trained on it) or "insample" (objects the model trained on: a diagnostic, not a result);
// n_objects and n_pairs (all folds together) used.
struct AlignmentObjects {
  std::string objects;
  int64_t n_objects = 0, n_pairs = 0, n_folds = 1;
};
// Writes the attributes objects, n_objects, n_pairs, n_folds (and a definition) on `group`.
void WriteObjectsAttributes(io::ResultsStore* store, const std::string& group,
                            const AlignmentObjects& objects);
// Reads them back; throws DataError when `group` lacks them.
AlignmentObjects ReadObjectsAttributes(const io::ResultsReader& in, const std::string& group);

// Throws DataError unless name is "group", "individual/<label>" with a non-empty label without
// '/', or one of the static baselines "clip" (plain CLIP) and "behavior" (CLIP-HBA-Behavior).
void CheckModelName(const std::string& name);

// /meg/times_ms (T) and /meg/participants string (P). times_ms: (T) any float dtype.
void WriteMegAxes(io::ResultsStore* store, const at::Tensor& times_ms,
                  const std::vector<std::string>& participants);

// /meg/<model>/<block>/{spearman, pearson} (P, T) as given; auc (P) = rsa::AreaFromZero and
// peak_ms (P) = rsa::PeakLatencyMs of each participant's Spearman curve. Group attrs:
// participants (string P), time_start_ms, time_step_ms, definition and the objects attributes.
// block: "alignment" (out-of-sample) or "alignment_insample". Throws DataError for a bad model
// name or block, an in-sample block named "alignment" (or an out-of-sample one
// "alignment_insample"), or shapes that do not match times_ms (T) and participants (P).
void WriteMegAlignment(io::ResultsStore* store, const std::string& model_name,
                       const rsa::TimeResolvedAlignment& alignment, const at::Tensor& times_ms,
                       const std::vector<std::string>& participants,
                       const AlignmentObjects& objects, const std::string& block = "alignment");

// A time-generalisation matrix (P, T, T) float64 at `path` (/meg/group/time_generalization:
// [p, i, j] = Spearman of the model RDM at timepoint i with participant p's MEG RDM at j;
// /meg/time_generalization: participant p's MEG RDMs at i and j), with attrs participants,
// time_start_ms, time_step_ms, definition and the objects attributes (the same objects, folds and
// pairs as the curves). Throws DataError for shapes that do not match times_ms and participants.
void WriteTimeGeneralization(io::ResultsStore* store, const std::string& path,
                             const at::Tensor& matrix, const at::Tensor& times_ms,
                             const std::vector<std::string>& participants,
                             const AlignmentObjects& objects, const std::string& definition);

// /meg/<model>/block_weights (T, L) float64: a MEG model's learned block weights over time
// (train::MegPredictor::BlockWeights of the unit's own model: each row >= 0, summing to 1, or all
// 0 where the mix is the same for every block), with
// attrs time_start_ms, time_step_ms, n_blocks and definition. A model parameter fitted on the
// unit's training objects, not an evaluation. Throws DataError for a bad model name or a shape
// that does not match times_ms (T) or has a negative or non-finite weight.
void WriteBlockWeights(io::ResultsStore* store, const std::string& model_name,
                       const at::Tensor& weights, const at::Tensor& times_ms);

// /meg/ceiling/{lower, upper} (P, T) Spearman, attrs participants, definition, mean_lower and
// mean_upper (float64 arrays (T): mean over participants), and the objects attributes (the same
// objects, pairs and folds as the out-of-sample curves it bounds). Throws DataError for shapes.
void WriteCeiling(io::ResultsStore* store, const rsa::TimeResolvedCeiling& ceiling,
                  const at::Tensor& times_ms, const std::vector<std::string>& participants,
                  const AlignmentObjects& objects);

// /meg/own_vs_other/matrix (M, P) and /own int64 (M); attrs statistic, p_value, n_permutations,
// exact (int64 0/1), rows (M model names), columns (P participant labels), definition.
// Throws DataError for shapes or M model names / own entries that do not match the matrix.
void WriteOwnVsOther(io::ResultsStore* store, const at::Tensor& matrix, const rsa::OwnVsOther& test,
                     const std::vector<std::string>& model_names,
                     const std::vector<std::string>& participants, const std::vector<int64_t>& own);

}  // namespace cliphba::pipeline
