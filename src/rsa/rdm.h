// Representational dissimilarity matrices (RDMs).
//
// Dimension legend: n objects, d feature dimensions, m = n (n - 1) / 2 object pairs.
// Every comparison in cliphba works on the condensed form: the strict upper triangle (i < j) of the
// n x n matrix in row-major order, i.e. scipy.spatial.distance.squareform's order.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba::rsa {

enum class RdmMetric {
  kCorrelation,  // 1 - Pearson r of the two feature rows (scipy pdist 'correlation')
  kCosine,       // 1 - cosine of the two feature rows (scipy pdist 'cosine')
  kEuclidean,    // Euclidean distance (scipy pdist 'euclidean')
  kSpose,        // 1 - SPoSE choice-probability similarity (Hebart et al.), see ComputeRdm
};

// "correlation", "cosine", "euclidean", "spose".
const char* MetricName(RdmMetric metric);
// Inverse of MetricName. Throws ConfigError listing the valid names.
RdmMetric ParseMetric(const std::string& name);
// All metrics in the order above.
std::vector<RdmMetric> AllMetrics();

// Number of pairs i < j among n objects.
inline int64_t NumPairs(int64_t n) { return n * (n - 1) / 2; }

// Indices into the condensed vector over n objects (row-major i < j) of the pairs of a subset:
// objects (k) distinct indices in [0, n); entry (a, b), a < b, of the subset's own condensed
// order maps to the pair {objects[a], objects[b]}. Returns int64 (k (k - 1) / 2). Throws
// DataError for an index out of range or repeated.
at::Tensor SubsetPairIndices(int64_t n, const std::vector<int64_t>& objects);

// A condensed RDM over n objects.
struct CondensedRdm {
  int64_t n = 0;
  at::Tensor values;  // (m) float64, m = NumPairs(n)
};

struct SquareCheck {
  // Largest |a_ij - a_ji| and |a_ii| accepted as "symmetric" and "zero diagonal". Values beyond it
  // are refused, never repaired. 0 demands exact symmetry.
  double tolerance = 1e-10;
};

// Validates a square dissimilarity matrix and returns its upper triangle.
// square: (n, n) floating point, n >= 2. `source` names the input (file) in error messages.
// Throws DataError if it is not 2-D square, has NaN/Inf (naming the first bad entry), is not
// symmetric or has a non-zero diagonal beyond check.tolerance (naming the worst entry).
CondensedRdm CondenseSquare(const at::Tensor& square, const std::string& source,
                            const SquareCheck& check = {});

// The full symmetric (n, n) float64 matrix with a zero diagonal.
at::Tensor ExpandSquare(const CondensedRdm& rdm);

// RDM of the rows of `features`: (n, d) floating point, n >= 2, d >= 1, finite; computed in float64
// with one GEMM per block of 64 rows (upper triangle only) for the correlation, cosine and
// Euclidean metrics, straight into the condensed output. kSpose: with G = X X^T,
// similarity S_ij = mean over every k not in {i, j} (n - 2 terms, so n >= 3) of
//   exp(G_ij) / (exp(G_ij) + exp(G_ik) + exp(G_jk)),
// evaluated stably, and the dissimilarity is 1 - S_ij; cost O(n^3).
// Throws DataError for non-finite features, or (correlation/cosine) a row with zero variance/norm,
// for which the distance is undefined.
CondensedRdm ComputeRdm(const at::Tensor& features, RdmMetric metric);

// The Gram matrix X X^T in float64: (n, n). The SPoSE rule's model similarity for triplets.
at::Tensor DotSimilarity(const at::Tensor& features);

}  // namespace cliphba::rsa
