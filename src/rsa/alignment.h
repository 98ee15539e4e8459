// Time-resolved alignment of model RDMs with MEG RDMs: per-timepoint Spearman/Pearson, noise
// ceilings, area under the curve from 0 ms, peak latency and the own-versus-other permutation test
// of individual models.
//
// Dimension legend: P participants, T timepoints, m = n (n - 1) / 2 condensed object pairs
// (upper triangle i < j, row-major), M models. All results are float64; inputs of any floating
// dtype are promoted. Definitions equal scipy.stats (spearmanr with average ranks, pearsonr);
// reference numbers: scripts/reference/alignment_reference.py, checked by
// tests/rsa/alignment_test.cc at 1e-10.
//
// Time axis: timepoint i is at start_ms + i * step_ms (step_ms > 0). "From 0 ms" means the
// timepoints whose time is >= 0 (no interpolation to exactly 0 ms), as stats/bootstrap.h.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba::rsa {

// RNG stream family of the own-vs-other permutations: permutation k uses the Philox stream
// (seed, kOwnVsOtherStream | k) through RandomPermutation (core/rng.h).
inline constexpr uint64_t kOwnVsOtherStream = 0x4F56ull << 48;  // "OV"

struct TimeResolvedAlignment {
  at::Tensor spearman;  // (P, T) float64
  at::Tensor pearson;   // (P, T) float64
};

// model: (T, m) condensed model RDMs (one per timepoint); meg: (P, T, m) condensed MEG RDMs.
// spearman[p, t] = spearmanr(model[t], meg[p, t]); pearson likewise.
// Throws DataError for shapes that do not match, m < 2, NaN/Inf, or a constant RDM (correlation
// undefined; the message names the participant and timepoint).
TimeResolvedAlignment AlignTimeResolved(const at::Tensor& model, const at::Tensor& meg);

// Time generalisation: out[i, j] = spearmanr(a[i], b[j]) for condensed RDMs a (T1, m) and
// b (T2, m) -> (T1, T2) float64. Each entry is the dot product of two standardised rank rows (as
// AlignTimeResolved), so it does not depend on which other rows are computed with it (results are
// the same for any split of the rows over ranks). Cost T1 * T2 * m. Throws DataError for shapes,
// m < 2, NaN/Inf or a constant row.
at::Tensor TimeGeneralization(const at::Tensor& a, const at::Tensor& b);
// Its two parts, for callers that reuse rows: SpearmanRows = the standardised average ranks of
// every row of x (R, m) -> (R, m) float64 (DataError for NaN/Inf or a constant row, naming
// `what`); RowDots(za (T1, m), zb (T2, m)) -> (T1, T2) their dot products, clamped to [-1, 1].
at::Tensor SpearmanRows(const at::Tensor& x, const std::string& what);
at::Tensor RowDots(const at::Tensor& za, const at::Tensor& zb);

struct TimeResolvedCeiling {
  at::Tensor lower;  // (P, T) Spearman of meg[p, t] with the mean of the other participants at t
  at::Tensor upper;  // (P, T) Spearman of meg[p, t] with the mean of all participants at t
};

// meg: (P, T, m), P >= 2. Throws DataError for P < 2, m < 2, NaN/Inf or a constant RDM.
TimeResolvedCeiling CeilingTimeResolved(const at::Tensor& meg);

// Trapezoid area of curve (T) over the timepoints with time >= 0 ms, time in seconds (value x s):
// numpy np.trapz(c[t >= 0], t[t >= 0] / 1000). 0 when fewer than two timepoints lie at or after
// 0 ms. Throws DataError for a non-1-D/empty curve, step_ms <= 0 or NaN in the used part.
double AreaFromZero(const at::Tensor& curve, double start_ms, double step_ms);

// Time (ms) of the maximum of curve (T) over the timepoints with time >= 0 ms; the first one on
// ties. Throws DataError as AreaFromZero, and when no timepoint lies at or after 0 ms.
double PeakLatencyMs(const at::Tensor& curve, double start_ms, double step_ms);

// Mean over the timepoints with time >= 0 ms of each row of curves (R, T) -> (R) float64.
// Throws DataError when no timepoint lies at or after 0 ms or on NaN there.
at::Tensor MeanFromZero(const at::Tensor& curves, double start_ms, double step_ms);

// The own-vs-other matrix from the alignment of M models: spearman[i] is model i's (P, T)
// Spearman curve vs every participant; result (M, P) = MeanFromZero of each. Throws DataError for
// differing shapes.
at::Tensor OwnVsOtherMatrix(const std::vector<at::Tensor>& spearman, double start_ms,
                            double step_ms);

struct OwnVsOther {
  double statistic;        // mean(own entries) - mean(other entries)
  double p_value;          // see OwnVsOtherTest
  int64_t n_permutations;  // P! (exact) or the number of random permutations
  bool exact;              // all P! label permutations were enumerated
};

// matrix (M, P): model i vs participant j, 1 <= M <= P, P >= 2; own[i] (M entries, distinct, in
// [0, P)) = the participant model i was trained on.
// statistic = mean(matrix[i, own[i]]) - mean(every other entry). Null: permute the participant
// labels, own[i] -> perm[own[i]]. If P! <= n every one of the P! permutations is enumerated
// (identity included) and p = #{stat_perm >= statistic} / P!; else n random permutations,
// permutation k drawn from (seed, kOwnVsOtherStream | k), and p = (1 + #{null >= obs}) / (1 + n).
// Throws DataError for a bad shape, NaN/Inf, own out of range or repeated; ConfigError for n < 1.
OwnVsOther OwnVsOtherTest(const at::Tensor& matrix, const std::vector<int64_t>& own, int64_t n,
                          uint64_t seed);

// The same test with explicit permutations perms (N, P) int64 (row k: a permutation of 0..P-1),
// p = (1 + #{null >= obs}) / (1 + N), exact = false. For reference tests and external
// permutation sources. Throws DataError for a row that is not a permutation.
OwnVsOther OwnVsOtherTestWithPermutations(const at::Tensor& matrix, const std::vector<int64_t>& own,
                                          const at::Tensor& perms);

}  // namespace cliphba::rsa
