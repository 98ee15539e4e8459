// Comparisons of condensed RDMs (or any two equal-length vectors).
//
// Dimension legend: m = number of entries (object pairs). Inputs are 1-D floating-point tensors of
// equal length m >= 2 (float32 inputs are promoted; all arithmetic is float64). Definitions equal
// scipy.stats: pearsonr, spearmanr (average ranks for ties), and Kendall's tau-a
// ((concordant - discordant) / (m (m - 1) / 2), tied pairs counting 0; scipy offers only tau-b and
// tau-c, which the reference script converts exactly).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace cliphba::rsa {

enum class Comparison { kPearson, kSpearman, kKendallTauA, kCosine };

// "pearson", "spearman", "kendall_tau_a", "cosine".
const char* ComparisonName(Comparison comparison);
// Throws ConfigError listing the valid names.
Comparison ParseComparison(const std::string& name);
std::vector<Comparison> AllComparisons();

// Pearson correlation (two-pass, float64).
// Throws DataError on length mismatch, m < 2, NaN/Inf, or a constant input (r undefined).
double Pearson(const at::Tensor& a, const at::Tensor& b);

// Spearman's rho = Pearson of average ranks. O(m) ranking (radix sort). Throws as Pearson.
double Spearman(const at::Tensor& a, const at::Tensor& b);

// Spearman of raw float64 arrays without tensors (for per-sample loops such as the bootstrap's):
// the value Spearman gives on the same numbers. ranks: scratch of 2 m doubles. REQUIRES (not
// checked): m >= 2, finite, neither input constant.
double SpearmanRaw(const double* x, const double* y, int64_t m, double* ranks);

// Kendall's tau-a in O(m log m) (Knight's algorithm: lexicographic sort, merge-sort inversion
// count). Throws DataError on length mismatch, m < 2, NaN/Inf.
double KendallTauA(const at::Tensor& a, const at::Tensor& b);

// Uncentred cosine similarity a.b / (|a| |b|). Throws DataError for a zero vector.
double CosineSimilarity(const at::Tensor& a, const at::Tensor& b);

// Dispatches to one of the above.
double Compare(Comparison comparison, const at::Tensor& a, const at::Tensor& b);

// Average ranks (1-based, ties get the mean of their positions; scipy.stats.rankdata 'average').
// x: (m) float; returns (m) float64. Throws DataError on NaN.
at::Tensor RankAverage(const at::Tensor& x);

// Stable ascending argsort of m doubles by LSD radix sort (8 passes of 8 bits over the IEEE-754
// order-preserving key). -0.0 sorts equal to +0.0. REQUIRES: no NaN. order must hold m entries.
void RadixArgsort(const double* x, int64_t m, int64_t* order);

}  // namespace cliphba::rsa
