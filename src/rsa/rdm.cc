#include "rsa/rdm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace cliphba::rsa {

const char* MetricName(RdmMetric metric) {
  switch (metric) {
    case RdmMetric::kCorrelation:
      return "correlation";
    case RdmMetric::kCosine:
      return "cosine";
    case RdmMetric::kEuclidean:
      return "euclidean";
    case RdmMetric::kSpose:
      return "spose";
  }
  return "?";
}

RdmMetric ParseMetric(const std::string& name) {
  for (RdmMetric m : AllMetrics())
    if (name == MetricName(m)) return m;
  throw ConfigError("RDM metric '" + name +
                    "' is unknown; expected one of correlation, cosine, euclidean, spose");
}

std::vector<RdmMetric> AllMetrics() {
  return {RdmMetric::kCorrelation, RdmMetric::kCosine, RdmMetric::kEuclidean, RdmMetric::kSpose};
}

namespace {

// Copies the strict upper triangle of a contiguous (n, n) float64 matrix, row by row.
at::Tensor UpperTriangle(const at::Tensor& square) {
  const int64_t n = square.size(0);
  at::Tensor out = at::empty({NumPairs(n)}, square.options());
  const double* src = square.data_ptr<double>();
  double* dst = out.data_ptr<double>();
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t offset = i * n - i * (i + 1) / 2;  // pairs in rows before i
      std::memcpy(dst + offset, src + i * n + i + 1, sizeof(double) * (n - i - 1));
    }
  });
  return out;
}

at::Tensor CheckedFeatures(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2 || features.size(1) < 1 ||
      !at::isFloatingType(features.scalar_type())) {
    std::ostringstream msg;
    msg << "RDM features must be a floating-point (objects x dims) matrix with >= 2 objects and "
           ">= 1 dimension; got shape "
        << features.sizes() << " of type " << features.scalar_type();
    throw DataError(msg.str());
  }
  at::Tensor x = features.to(at::kDouble).contiguous();
  if (!at::isfinite(x).all().item<bool>()) {
    at::Tensor bad = at::nonzero(at::logical_not(at::isfinite(x)))[0];
    throw DataError("RDM features contain NaN or Inf (first at object " +
                    std::to_string(bad[0].item<int64_t>()) + ", dimension " +
                    std::to_string(bad[1].item<int64_t>()) + ")");
  }
  return x;
}

void RequireNonZero(const at::Tensor& norms, const char* what) {
  at::Tensor zero = at::nonzero(norms <= 0);
  if (zero.size(0) > 0) {
    throw DataError(std::string("the ") + what + " distance is undefined for object " +
                    std::to_string(zero[0][0].item<int64_t>()) + ": its feature row has zero " +
                    (std::string(what) == "correlation" ? "variance" : "norm"));
  }
}

// Dot products summed sequentially over the dimensions (no BLAS): the SPoSE similarity saturates
// (most choice probabilities are exactly 0 or 1), so its rank statistics hinge on last-bit equality
// of sums. A fixed summation order makes them reproducible across BLAS builds and thread counts
// and bit-identical to scripts/reference/rsa_reference.py (spose_similarity_scalar).
at::Tensor SequentialGram(const at::Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  at::Tensor g = at::empty({n, n}, x.options());
  const double* px = x.data_ptr<double>();
  double* pg = g.data_ptr<double>();
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const double* a = px + (i <= j ? i : j) * d;  // the same operand order for (i,j), (j,i)
        const double* b = px + (i <= j ? j : i) * d;
        double acc = 0;
        for (int64_t t = 0; t < d; ++t) acc += a[t] * b[t];
        pg[i * n + j] = acc;
      }
    }
  });
  return g;
}

// std::exp(x) for x <= 0, bit for bit, with the two common exact cases short-cut: exp(0) == 1, and
// below -746 the result rounds to 0 (exp(-745.2) is already 0), which glibc reaches through its
// slow underflow path (~6x a normal call). Most SPoSE terms underflow: their Gram values differ by
// hundreds to thousands.
inline double ExpNonPositive(double x) {
  if (x == 0.0) return 1.0;
  if (x < -746.0) return 0.0;
  return std::exp(x);
}

// Pairs in rows before row i of the condensed order.
inline int64_t RowOffset(int64_t i, int64_t n) { return i * n - i * (i + 1) / 2; }

// Condensed 1 - S_ij over i < j. Row i holds n - 1 - i pairs, so the work is split over pairs of
// rows (t, n - 1 - t) of equal total length; every S_ij is computed exactly as defined above.
at::Tensor SposeDissimilarity(const at::Tensor& gram) {
  const int64_t n = gram.size(0);
  at::Tensor out_t = at::empty({NumPairs(n)}, gram.options());
  const double* g = gram.data_ptr<double>();
  double* out = out_t.data_ptr<double>();
  auto row = [&](int64_t i) {
    const double* gi = g + i * n;
    double* dst = out + RowOffset(i, n);  // dst[j - i - 1] = pair (i, j)
    for (int64_t j = i + 1; j < n; ++j) {
      const double* gj = g + j * n;
      const double a = gi[j];
      double acc = 0;
      for (int64_t k = 0; k < n; ++k) {  // ascending k: part of the definition (see above)
        if (k == i || k == j) continue;
        const double b = gi[k], c = gj[k];
        const double mx = std::max(a, std::max(b, c));
        const double ea = ExpNonPositive(a - mx), eb = ExpNonPositive(b - mx),
                     ec = ExpNonPositive(c - mx);
        acc += ea / ((ea + eb) + ec);
      }
      dst[j - i - 1] = 1.0 - acc / double(n - 2);
    }
  };
  at::parallel_for(0, n / 2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      row(t);
      row(n - 1 - t);
    }
  });
  if (n % 2 == 1) row(n / 2);  // the middle row of an odd n
  return out_t;
}

// The condensed RDM of the rows of x (n, d) for a GEMM-based metric: per block of rows
// [i0, i1), one GEMM x[i0:i1] x[i0:n]^T (only the upper triangle's columns) into a reused buffer,
// then finish(v, i, j) writes each pair straight into the condensed output. No n x n temporary.
template <typename Finish>
at::Tensor BlockedGramRdm(const at::Tensor& x, const Finish& finish) {
  const int64_t n = x.size(0);
  const int64_t block = 64;
  at::Tensor out_t = at::empty({NumPairs(n)}, x.options());
  at::Tensor buf = at::empty({std::min(block, n) * n}, x.options());
  double* out = out_t.data_ptr<double>();
  for (int64_t i0 = 0; i0 < n - 1; i0 += block) {
    const int64_t i1 = std::min(i0 + block, n), rows = i1 - i0, cols = n - i0;
    at::Tensor c = buf.narrow(0, 0, rows * cols).view({rows, cols});
    at::mm_out(c, x.narrow(0, i0, rows), x.narrow(0, i0, cols).t());
    const double* pc = c.data_ptr<double>();
    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = i0 + r;
        const double* src = pc + r * cols;    // src[j - i0] = x_i . x_j
        double* dst = out + RowOffset(i, n);  // dst[j - i - 1] = pair (i, j)
        for (int64_t j = i + 1; j < n; ++j) dst[j - i - 1] = finish(src[j - i0], i, j);
      }
    });
  }
  return out_t;
}

}  // namespace

CondensedRdm CondenseSquare(const at::Tensor& square, const std::string& source,
                            const SquareCheck& check) {
  if (square.dim() != 2 || square.size(0) != square.size(1) || square.size(0) < 2) {
    std::ostringstream msg;
    msg << source << ": an RDM must be a square (n x n) matrix with n >= 2; got shape "
        << square.sizes();
    throw DataError(msg.str());
  }
  if (!at::isFloatingType(square.scalar_type()))
    throw DataError(source + ": an RDM must hold floating-point values");
  at::Tensor a = square.to(at::kDouble).contiguous();
  const int64_t n = a.size(0);
  const double* p = a.data_ptr<double>();
  for (int64_t i = 0; i < n * n; ++i) {
    if (!std::isfinite(p[i])) {
      throw DataError(source + ": RDM entry [" + std::to_string(i / n) + ", " +
                      std::to_string(i % n) + "] is " + (std::isnan(p[i]) ? "NaN" : "Inf") +
                      "; cliphba never replaces missing values — fix the RDM or set an explicit "
                      "policy");
    }
  }
  double worst_asym = 0, worst_diag = 0;
  int64_t ai = 0, aj = 0, di = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::abs(p[i * n + i]) > worst_diag) worst_diag = std::abs(p[i * n + i]), di = i;
    for (int64_t j = i + 1; j < n; ++j) {
      double d = std::abs(p[i * n + j] - p[j * n + i]);
      if (d > worst_asym) worst_asym = d, ai = i, aj = j;
    }
  }
  if (worst_asym > check.tolerance) {
    std::ostringstream msg;
    msg.precision(17);
    msg << source << ": the RDM is not symmetric: [" << ai << ", " << aj << "] = " << p[ai * n + aj]
        << " but [" << aj << ", " << ai << "] = " << p[aj * n + ai] << " (tolerance "
        << check.tolerance << "); cliphba does not symmetrise RDMs";
    throw DataError(msg.str());
  }
  if (worst_diag > check.tolerance) {
    std::ostringstream msg;
    msg.precision(17);
    msg << source << ": the RDM diagonal must be zero, but [" << di << ", " << di
        << "] = " << p[di * n + di] << " (tolerance " << check.tolerance << ")";
    throw DataError(msg.str());
  }
  return {n, UpperTriangle(a)};
}

at::Tensor ExpandSquare(const CondensedRdm& rdm) {
  const int64_t n = rdm.n;
  TORCH_CHECK(rdm.values.numel() == NumPairs(n), "condensed RDM size does not match n");
  at::Tensor v = rdm.values.to(at::kDouble).contiguous();
  at::Tensor out = at::zeros({n, n}, v.options());
  const double* src = v.data_ptr<double>();
  double* dst = out.data_ptr<double>();
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j, ++k) dst[i * n + j] = dst[j * n + i] = src[k];
  return out;
}

at::Tensor DotSimilarity(const at::Tensor& features) {
  at::Tensor x = CheckedFeatures(features);
  return at::mm(x, x.t());
}

CondensedRdm ComputeRdm(const at::Tensor& features, RdmMetric metric) {
  at::Tensor x = CheckedFeatures(features);  // (n, d) float64
  const int64_t n = x.size(0);
  switch (metric) {
    case RdmMetric::kCorrelation:
    case RdmMetric::kCosine: {
      if (metric == RdmMetric::kCorrelation) x = x - x.mean(/*dim=*/1, /*keepdim=*/true);
      at::Tensor norms = x.norm(2, /*dim=*/1, /*keepdim=*/true);  // (n, 1)
      RequireNonZero(norms, MetricName(metric));
      at::Tensor unit = (x / norms).contiguous();
      return {n, BlockedGramRdm(unit, [](double sim, int64_t, int64_t) { return 1.0 - sim; })};
    }
    case RdmMetric::kEuclidean: {
      at::Tensor sq_t = (x * x).sum(/*dim=*/1).contiguous();  // (n)
      const double* sq = sq_t.data_ptr<double>();
      // |x_i|^2 + |x_j|^2 - 2 x_i.x_j, clamped at 0 against rounding.
      return {n, BlockedGramRdm(x, [sq](double dot, int64_t i, int64_t j) {
                return std::sqrt(std::max((sq[i] + sq[j]) - 2.0 * dot, 0.0));
              })};
    }
    case RdmMetric::kSpose: {
      if (n < 3) throw DataError("the SPoSE similarity needs at least 3 objects");
      return {n, SposeDissimilarity(SequentialGram(x))};
    }
  }
  throw DataError("unknown RDM metric");
}

at::Tensor SubsetPairIndices(int64_t n, const std::vector<int64_t>& objects) {
  const int64_t k = int64_t(objects.size());
  std::vector<char> seen(size_t(std::max<int64_t>(n, 0)), 0);
  for (int64_t i : objects) {
    if (i < 0 || i >= n || seen[size_t(i)])
      throw DataError("subset of an RDM over " + std::to_string(n) + " objects: index " +
                      std::to_string(i) + (i < 0 || i >= n ? " is out of range" : " repeats"));
    seen[size_t(i)] = 1;
  }
  at::Tensor out = at::empty({NumPairs(k)}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t a = 0; a < k; ++a)
    for (int64_t b = a + 1; b < k; ++b) {
      const int64_t i = std::min(objects[size_t(a)], objects[size_t(b)]);
      const int64_t j = std::max(objects[size_t(a)], objects[size_t(b)]);
      *o++ = i * n - i * (i + 1) / 2 + (j - i - 1);
    }
  return out;
}

}  // namespace cliphba::rsa
