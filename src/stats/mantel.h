// Mantel (object-label permutation) tests of model-vs-neural RDM correlations, GEMM-shaped.
//
// Dimension legend: n objects, m = n (n - 1) / 2 pairs, T timepoints (Tc in one chunk),
// B permutations in one batch, N permutations in all.
//
// Statistic: Pearson or Spearman r between the model RDM (condensed, m) and the neural RDM of each
// timepoint. Rows are standardised once (ranked first for Spearman: the ranks of a permuted vector
// are the permuted ranks), so r = z_model . z_neural. Permutation p relabels the model's objects:
// M'[i, j] = M[p[i], p[j]]; the neural RDMs stay fixed. A batch of B permutations is one gather
// (B x m) and one GEMM (B x m) x (m x Tc) -> (B x Tc). The gather runs on the CPU through a
// cache-friendly row loop and on other devices through ATen indexing; the GEMM is at::mm wherever
// the tensors live.
//
// p-values count the observed statistic in the null: p = (1 + #{null >= obs}) / (1 + N), with
// |r| compared for two-sided tests. Family-wise correction over timepoints by the maximum
// statistic: the same permutation is applied to every timepoint and p_fwer[t] counts permutations
// whose maximum over all timepoints reaches obs[t].
//
// Small object sets: the N permutations are drawn independently (each a uniform Fisher-Yates
// shuffle of (seed, k)), with replacement, never enumerated. When N exceeds the n! distinct
// relabellings (n <= 8 or so), patterns repeat and the identity recurs about N / n! times; p stays a
// valid Monte-Carlo p-value of the same test (its expectation under H0 is unchanged) but cannot fall
// below about 1 / n!, whatever N (a user wanting p < 0.05 needs n >= 4 objects, i.e. 24 relabellings).
// Unlike MNE's sign-flip tests there is no exact switch: scipy's reference (scripts/reference/
// mantel_reference.py) draws the same way.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "stats/common.h"

namespace cliphba::stats {

enum class CorrelationKind { kPearson, kSpearman };

// "pearson" | "spearman". Throws ConfigError.
CorrelationKind ParseCorrelation(const std::string& name);

// Rows of x (R x m) standardised so that the dot product of two rows is their correlation:
// ranked (average ranks) for Spearman, centred, divided by their norm. Computed in float64,
// returned as `dtype`. Throws DataError for NaN/Inf or a constant row (naming the row).
at::Tensor StandardizeRows(const at::Tensor& x, CorrelationKind kind, at::ScalarType dtype);

// The square (n x n) form of a standardised condensed model vector z (m): S[i][j] = S[j][i] = z_k
// for pair k = (i, j), zero diagonal. dtype and device of z.
at::Tensor SquareFromCondensed(const at::Tensor& z, int64_t n);

// Gathers permuted condensed model vectors: out[b][k] = square[p_b[i]][p_b[j]] for pair k = (i, j).
// square: (n, n); perms: (B, n) int64, each row a permutation of 0..n-1 (not checked here);
// out: (B, m) preallocated, same dtype/device as square.
void GatherPermuted(const at::Tensor& square, const at::Tensor& perms, at::Tensor& out);

// The gather of GatherPermuted through ATen indexing (what runs on a GPU; on the CPU
// GatherPermuted uses a cache-friendly row loop instead). Same contract and values; public so
// that a CPU test can hold the two paths equal.
void GatherPermutedIndexed(const at::Tensor& square, const at::Tensor& perms, at::Tensor& out);

// Permutation k of n objects for seed s: a pure function of (s, k) (Fisher-Yates over the
// counter-based stream (s, kMantelStream | k)). out: (count, n) int64 rows for k =
// first..first+count-1.
at::Tensor DrawPermutations(uint64_t seed, int64_t first, int64_t count, int64_t n);

// Accumulators of one Mantel test; merged by summing `exceed` and taking the maximum of
// `null_max` (what MPI reductions do). All integer counts: results do not depend on how the work
// was split.
struct MantelCounts {
  at::Tensor exceed;    // (T) int64: permutations whose statistic reached obs[t] at timepoint t
  at::Tensor null_max;  // (N) float64: per permutation, the maximum statistic over the timepoints
                        // processed so far (|r| when two-sided); -inf before any
};

MantelCounts MakeMantelCounts(int64_t n_timepoints, int64_t n_permutations);

// Processes permutations [first, first + B) (rows of perms) against one timepoint chunk.
//   square:   (n, n) square form of the standardised model vector
//   neural_z: (Tc, m) standardised neural rows of timepoints [t0, t0 + Tc)
//   observed: (Tc) float64 observed statistics of those timepoints (same kernel, identity)
//   gather:   (B, m) reusable buffer; stats: (B, Tc) reusable buffer (dtype of square)
// Updates counts->exceed[t0 .. t0+Tc) and counts->null_max[first .. first+B).
// REQUIRES: tail is kUpper or kTwo.
void MantelAccumulate(const at::Tensor& square, const at::Tensor& neural_z,
                      const at::Tensor& observed, const at::Tensor& perms, int64_t first,
                      int64_t t0, Tail tail, at::Tensor& gather, at::Tensor& stats,
                      MantelCounts* counts);

// Observed statistics of one chunk: (Tc) float64 = z_model . z_neural rows, through the same
// GEMM kernel as the permutations (an identity permutation), so that obs and null agree bitwise
// when a permutation happens to be the identity.
at::Tensor MantelObserved(const at::Tensor& square, const at::Tensor& neural_z, at::Tensor& gather,
                          at::Tensor& stats);

struct MantelPValues {
  at::Tensor p;       // (T) float64 uncorrected
  at::Tensor p_fwer;  // (T) float64 max-statistic family-wise corrected
};

// p-values from complete counts. observed: (T) float64.
MantelPValues MantelFinish(const at::Tensor& observed, const MantelCounts& counts, Tail tail);

// The streaming form, for sweeps too long to keep every null maximum (what MantelFinish does in
// one call). For final per-permutation maxima null_max (R) float64 (the maximum over all T
// timepoints, |r| when two-sided) of any R permutations, adds #{k : null_max[k] >= obs[t]} to
// fwer_exceed (T) int64; summed over disjoint sets of permutations these are MantelFinish's
// family-wise counts, whatever the split.
void MantelCountFwer(const at::Tensor& observed, const at::Tensor& null_max, Tail tail,
                     at::Tensor* fwer_exceed);

// p-values from exceed (T) and fwer_exceed (T) int64 counts over n_permutations.
MantelPValues MantelPValuesFromCounts(const at::Tensor& exceed, const at::Tensor& fwer_exceed,
                                      int64_t n_permutations);

}  // namespace cliphba::stats
