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

// S_ij for i < j (upper triangle of the returned (n, n) matrix; the rest is 0).
at::Tensor SposeSimilarity(const at::Tensor& gram) {
  const int64_t n = gram.size(0);
  at::Tensor s = at::zeros({n, n}, gram.options());
  const double* g = gram.data_ptr<double>();
  double* out = s.data_ptr<double>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double* gi = g + i * n;
      for (int64_t j = i + 1; j < n; ++j) {
        const double* gj = g + j * n;
        const double a = gi[j];
        double acc = 0;
        for (int64_t k = 0; k < n; ++k) {  // ascending k: part of the definition (see above)
          if (k == i || k == j) continue;
          const double b = gi[k], c = gj[k];
          const double mx = std::max(a, std::max(b, c));
          const double ea = std::exp(a - mx), eb = std::exp(b - mx), ec = std::exp(c - mx);
          acc += ea / ((ea + eb) + ec);
        }
        out[i * n + j] = acc / double(n - 2);
      }
    }
  });
  return s;
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
      at::Tensor unit = x / norms;
      at::Tensor sim = at::mm(unit, unit.t());  // (n, n)
      at::Tensor v = UpperTriangle(sim);
      return {n, at::rsub(v, 1.0)};
    }
    case RdmMetric::kEuclidean: {
      at::Tensor sq = (x * x).sum(/*dim=*/1);                                    // (n)
      at::Tensor d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * at::mm(x, x.t());  // (n, n)
      at::Tensor v = UpperTriangle(d2.contiguous());
      return {n, v.clamp_min_(0).sqrt_()};
    }
    case RdmMetric::kSpose: {
      if (n < 3) throw DataError("the SPoSE similarity needs at least 3 objects");
      at::Tensor s = SposeSimilarity(SequentialGram(x));
      return {n, at::rsub(UpperTriangle(s), 1.0)};
    }
  }
  throw DataError("unknown RDM metric");
}

}  // namespace cliphba::rsa
