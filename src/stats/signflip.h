// Sign-flip one-sample t tests with max-statistic (t-max) correction, equal to MNE-Python 1.3's
// mne.stats.ttest_1samp_no_p and mne.stats.permutation_t_test when given the same flips.
//
// Dimension legend: N = participants (rows of data), T = tests/timepoints (columns), K = sign
// flips (rows of a flip matrix; each row holds one +-1 per participant). data is (N x T) float32 or
// float64; all arithmetic is float64. A flip row s turns data into diag(s) data (participant i's
// row multiplied by s_i); the unflipped data are the "observed" member of the null distribution.
//
// H0 convention (here and in stats/cluster.h): h0 has K + 1 entries, h0[0] the observed statistic
// and h0[1 + k] the statistic under flip row k. MNE's permutation_t_test returns the same values
// sorted ascending; p-values do not depend on the order. Blocks of flip rows can be evaluated
// independently (AccumulateTMax) and concatenated, which is how ranks/resumed runs share work.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "stats/common.h"

namespace cliphba::stats {

// RNG stream family of the sign flips (high byte 7 of the 64-bit stream id): flip row k of seed s
// is drawn from CounterRng(s, kSignFlipStream | k). (6 = Mantel, 0xB1/0xB2 = bootstrap.)
inline constexpr uint64_t kSignFlipStream = 7ull << 56;

// One-sample t statistic per column: t = mean / sqrt(var / N), var with ddof = 1 (MNE's
// ttest_1samp_no_p with sigma = 0). data: (N x T) float; returns (T) float64.
// Throws DataError if data is not 2-D floating, N < 2, T < 1, any entry is NaN/Inf, or a column has
// zero variance (MNE would return +-inf or NaN there; the message names the timepoint).
at::Tensor OneSampleT(const at::Tensor& data);

// Random sign flips: (n_flips x n_participants) int8 of +-1. Row k is a pure function of
// (seed, first + k): participant j's sign is bit (j mod 32) of the (j / 32)-th 32-bit word of
// CounterRng(seed, kSignFlipStream | (first + k)), bit 1 -> +1, bit 0 -> -1. So any block of rows
// is reproducible on its own: DrawSignFlips(m, n, s, a) equals rows [a, a + m) of
// DrawSignFlips(a + m, n, s, 0), whichever rank or resumed run draws it. Draws are independent
// (with replacement; the identity may occur, with probability 2^-N per row).
// Throws DataError for n_flips < 0, n_participants < 1, first < 0 or first + n_flips > 2^56.
at::Tensor DrawSignFlips(int64_t n_flips, int64_t n_participants, uint64_t seed, int64_t first = 0);

// t statistics of all flipped data sets at once: row k is OneSampleT(diag(flips[k]) data) computed
// with exactly OneSampleT's arithmetic (numpy's: mean row by row, then the squared deviations from
// it row by row), so the all +1 pattern reproduces the observed t bit for bit and the all -1
// pattern its exact negation, as in MNE (where such a pattern ties with the observed statistic,
// it is counted as MNE counts it). An own kernel (each row summed over participants in order, rows
// in parallel), not BLAS, so every row's values are bit-identical however the flips are split into
// blocks, threads or ranks.
// data: (N x T) float; flips: (K x N) int8 or floating, every entry +1 or -1 (K may be 0).
// Returns (K x T) float64, equal to OneSampleT(diag(flips[k]) data) to ~1e-12 relative.
// A flipped column whose variance vanishes (all |x_i| equal, all signs made equal) gives +-inf or a
// huge |t| instead of an error (an extreme null sample; MNE gives +-inf too); an all-zero data
// column gives NaN. Throws DataError for shape/dtype mismatches, NaN/Inf in data, N < 2, or flip
// entries other than +-1.
at::Tensor FlippedT(const at::Tensor& data, const at::Tensor& flips);

// MNE's exact test (mne.stats.cluster_level._get_1samp_orders, 1.3, used by
// permutation_cluster_1samp_test and permutation_t_test): when n_permutations (the observed
// included) exceeds the 2^(N - (tail == 0)) - 1 patterns MNE considers, it enumerates all of them
// instead of drawing (the seed is then ignored). True in that case.
bool UseExactSignFlips(int64_t n_permutations, int64_t n_participants, Tail tail);

// The most sign-pattern bits ExactSignFlips enumerates (2^24 - 1 rows).
inline constexpr int64_t kMaxExactBits = 24;

// Every pattern of MNE's exact test, in MNE's order: row k (k = 0 .. 2^(N - (tail == 0)) - 2)
// holds the N binary digits of k + 1, participant 0 the most significant, digit b -> sign 2b - 1
// (MNE's bin_perm_rep(N)[1 : max_perms + 1]). So for tails -1 and 1 the last row is the identity
// (all +1; it ties with the observed statistic) and all -1 is absent; for tail 0 participant 0's
// sign is always -1 (each |t| pattern once). (2^bits - 1) x N int8. Throws DataError for more than
// kMaxExactBits bits.
at::Tensor ExactSignFlips(int64_t n_participants, Tail tail);

// The flips of a sign-flip test of n_permutations patterns (observed included): ExactSignFlips
// when MNE would run the exact test, else DrawSignFlips(n_permutations - 1, n_participants, seed).
at::Tensor SignFlipsFor(int64_t n_permutations, int64_t n_participants, Tail tail, uint64_t seed);

// Streaming t-max: h0_out[k] = max over the T columns of |FlippedT(data, flips_block)[k]| for the
// K_b rows of flips_block (K_b x N). h0_out must hold K_b doubles. Rows are processed in chunks so
// memory stays O(chunk x T). Throws as FlippedT.
void AccumulateTMax(const at::Tensor& data, const at::Tensor& flips_block, double* h0_out);

// t-max p-values from t_obs (T) and h0 (K + 1, any order, observed included), as MNE's
// permutation_t_test: with c_j = #{h0 >= |t_j|} (tail 0), #{h0 >= t_j} (tail 1),
// #{-h0 <= t_j} (tail -1), p_j = c_j / (K + 1). Note that MNE's H0 holds max |t| for every tail.
// Returns (T) float64. Throws DataError if h0 is empty or t_obs/h0 are not 1-D.
at::Tensor TMaxPValues(const at::Tensor& t_obs, const at::Tensor& h0, Tail tail);

struct TMaxResult {
  at::Tensor t_obs;  // (T) float64: OneSampleT(data)
  at::Tensor p;      // (T) float64: family-wise corrected p-values (TMaxPValues)
  at::Tensor h0;     // (K + 1) float64: h0[0] = max_j |t_obs_j|, h0[1 + k] = max_j |t_j| of flip k
};

// The whole t-max test: data (N x T), flips (K x N). Equals mne.stats.permutation_t_test(data,
// n_permutations = K + 1, tail) when MNE draws exactly these flips (its H0 is our h0 sorted).
// Throws as OneSampleT and FlippedT.
TMaxResult TMaxTest(const at::Tensor& data, const at::Tensor& flips, Tail tail);

// Internal helpers shared with stats/cluster.cc.
namespace detail {
// data as a validated contiguous (N x T) float64 tensor (throws DataError as OneSampleT, except
// that zero-variance columns are allowed). what names the caller in messages.
at::Tensor CheckedData(const at::Tensor& data, const char* what);
// flips as a validated contiguous (K x n) float64 tensor of +-1.
at::Tensor CheckedFlips(const at::Tensor& flips, int64_t n, const char* what);
// FlippedT on already-checked inputs (d: N x T float64, f: K x N float64).
at::Tensor FlippedTChecked(const at::Tensor& d, const at::Tensor& f);
// The one t computation of OneSampleT and FlippedT: x (n x n_times) row-major, signs (n) of +-1 or
// nullptr (all +1); writes t into out (n_times); mean is scratch (n_times).
void SignedT(const double* x, int64_t n, int64_t n_times, const double* signs, double* out,
             double* mean);
// Number of flip rows per chunk so that a chunk's (rows x T) t matrix stays ~32 MB.
int64_t ChunkRows(int64_t n_times);
}  // namespace detail

}  // namespace cliphba::stats
