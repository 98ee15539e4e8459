// The bootstrap over objects (stats/bootstrap.h): resampled objects, their sub-RDMs and the
// comparison curves; static and time-resolved models. The shared helpers: bootstrap_internal.h.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "rsa/rdm.h"
#include "stats/bootstrap.h"
#include "stats/bootstrap_internal.h"

namespace cliphba::stats {

using namespace detail;  // NOLINT: the bootstrap's shared helpers

namespace {

// ---- objects --------------------------------------------------------------------------------

// Validated RDM data for the object bootstrap: condensed model (m), neural (T, m), times (T).
struct ObjectData {
  int64_t n = 0, m = 0, T = 0;
  at::Tensor model, neural, times;
  at::Tensor model_rows;  // (T, m): a time-resolved model (then `model` is undefined)
};

int64_t ObjectsFromPairs(int64_t m, const char* what) {
  const int64_t n = int64_t(std::llround((1.0 + std::sqrt(1.0 + 8.0 * double(m))) / 2.0));
  if (m < 1 || rsa::NumPairs(n) != m) {
    throw DataError(std::string(what) + ": a condensed RDM of length " + std::to_string(m) +
                    " is not n (n - 1) / 2 for any number of objects n");
  }
  return n;
}

ObjectData PrepareObjects(const at::Tensor& model, const at::Tensor& neural,
                          const at::Tensor& times_ms, rsa::Comparison comparison) {
  if (comparison != rsa::Comparison::kSpearman && comparison != rsa::Comparison::kPearson) {
    throw ConfigError(std::string("bootstrap over objects: comparison '") +
                      rsa::ComparisonName(comparison) + "' is not supported; expected spearman " +
                      "or pearson");
  }
  ObjectData d;
  if (model.dim() == 2) {
    rsa::CondensedRdm c = rsa::CondenseSquare(model, "bootstrap model RDM");
    d.n = c.n, d.model = c.values;
  } else if (model.dim() == 1) {
    d.model = CheckedFinite(model, "bootstrap model RDM");
    d.n = ObjectsFromPairs(model.numel(), "bootstrap model RDM");
  } else {
    throw DataError("bootstrap model RDM: expected an (n, n) or condensed (m) RDM; got shape " +
                    ShapeOf(model));
  }
  d.m = rsa::NumPairs(d.n);
  if (d.n < 3) throw DataError("bootstrap over objects: needs n >= 3 objects");
  if (neural.dim() == 3 && neural.size(1) == d.n && neural.size(2) == d.n && neural.size(0) >= 1) {
    d.T = neural.size(0);
    d.neural = at::empty({d.T, d.m}, at::kDouble);
    for (int64_t t = 0; t < d.T; ++t) {
      d.neural[t].copy_(
          rsa::CondenseSquare(neural[t], "neural RDM at timepoint " + std::to_string(t)).values);
    }
  } else if (neural.dim() == 2 && neural.size(1) == d.m && neural.size(0) >= 1) {
    d.T = neural.size(0);
    d.neural = CheckedFinite(neural, "neural RDMs");
  } else {
    throw DataError("bootstrap over objects: neural RDMs must be (T, " + std::to_string(d.n) +
                    ", " + std::to_string(d.n) + ") or condensed (T, " + std::to_string(d.m) +
                    ") to match the model RDM's " + std::to_string(d.n) + " objects; got shape " +
                    ShapeOf(neural));
  }
  d.times = CheckedTimes(times_ms, d.T, "bootstrap over objects");
  return d;
}

bool IsConstant(const double* x, int64_t k) {
  for (int64_t i = 1; i < k; ++i)
    if (x[i] != x[0]) return false;
  return true;
}

// Condensed index of the pair (i, j), i < j, among n objects.
inline int64_t PairIndex(int64_t i, int64_t j, int64_t n) {
  return i * n - i * (i + 1) / 2 + (j - i - 1);
}

// The curve of one resample s (n object indices) into out (T).
void ObjectSampleCurve(const ObjectData& d, const int64_t* s, rsa::Comparison comparison,
                       double* out) {
  const int64_t n = d.n;
  std::vector<int64_t> pairs;
  pairs.reserve(size_t(d.m));
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = a + 1; b < n; ++b) {
      if (s[a] == s[b]) continue;  // an object against a copy of itself
      pairs.push_back(PairIndex(std::min(s[a], s[b]), std::max(s[a], s[b]), n));
    }
  const int64_t k = int64_t(pairs.size());
  at::Tensor mb = at::empty({k}, at::kDouble), nb = at::empty({k}, at::kDouble);
  double* pm = mb.data_ptr<double>();
  double* pn = nb.data_ptr<double>();
  if (d.model_rows.defined()) {  // one model RDM per timepoint, on the same resampled pairs
    const double* model = d.model_rows.data_ptr<double>();
    const double* neural = d.neural.data_ptr<double>();
    std::vector<double> ranks(size_t(2 * k));
    for (int64_t t = 0; t < d.T; ++t) {
      const double* mrow = model + t * d.m;
      const double* nrow = neural + t * d.m;
      for (int64_t i = 0; i < k; ++i) {
        pm[i] = mrow[pairs[i]];
        pn[i] = nrow[pairs[i]];
      }
      if (k < 2 || IsConstant(pm, k) || IsConstant(pn, k))
        out[t] = kNaN;
      else  // tensor-free Spearman: the same value, ~10x cheaper on small fold sub-RDMs
        out[t] = comparison == rsa::Comparison::kSpearman
                     ? rsa::SpearmanRaw(pm, pn, k, ranks.data())
                     : rsa::Compare(comparison, mb, nb);
    }
    return;
  }
  const double* model = d.model.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) pm[i] = model[pairs[i]];
  if (k < 2 || IsConstant(pm, k)) {
    std::fill(out, out + d.T, kNaN);
    return;
  }
  const double* neural = d.neural.data_ptr<double>();
  for (int64_t t = 0; t < d.T; ++t) {
    const double* row = neural + t * d.m;
    for (int64_t i = 0; i < k; ++i) pn[i] = row[pairs[i]];
    out[t] = IsConstant(pn, k) ? kNaN : rsa::Compare(comparison, mb, nb);
  }
}

BootstrapSamples ObjectsBlock(const ObjectData& d, rsa::Comparison comparison,
                              const at::Tensor& indices) {
  const at::Tensor idx = CheckedIndices(indices, d.n, "bootstrap over objects");
  const int64_t B = idx.size(0);
  BootstrapSamples s;
  s.curves = at::empty({B, d.T}, at::kDouble);
  const int64_t* pi = idx.data_ptr<int64_t>();
  double* pc = s.curves.data_ptr<double>();
  ParallelFor(B, [&](int64_t b) { ObjectSampleCurve(d, pi + b * d.n, comparison, pc + b * d.T); });
  FillCurveStats(s, d.times);
  return s;
}

at::Tensor ObjectsEstimateOf(const ObjectData& d, rsa::Comparison comparison) {
  at::Tensor est = at::empty({d.T}, at::kDouble);
  for (int64_t t = 0; t < d.T; ++t) est[t] = rsa::Compare(comparison, d.model, d.neural[t]);
  return est;
}

}  // namespace

// ---- objects ----------------------------------------------------------------------------------

BootstrapSamples BootstrapObjectsBlock(const at::Tensor& model, const at::Tensor& neural,
                                       const at::Tensor& times_ms, rsa::Comparison comparison,
                                       uint64_t seed, int64_t first, int64_t count) {
  const ObjectData d = PrepareObjects(model, neural, times_ms, comparison);
  BootstrapSamples s = ObjectsBlock(
      d, comparison, ResampleIndices(seed, kBootstrapObjectsStream, first, count, d.n));
  s.first = first;
  return s;
}

BootstrapSamples BootstrapObjectsBlock(const at::Tensor& model, const at::Tensor& neural,
                                       const at::Tensor& times_ms, rsa::Comparison comparison,
                                       const at::Tensor& indices) {
  return ObjectsBlock(PrepareObjects(model, neural, times_ms, comparison), comparison, indices);
}

BootstrapSamples BootstrapObjectsTimeResolvedBlock(const at::Tensor& model,
                                                   const at::Tensor& neural,
                                                   const at::Tensor& times_ms,
                                                   rsa::Comparison comparison,
                                                   const at::Tensor& indices) {
  if (model.dim() != 2 || neural.dim() != 2 || model.sizes() != neural.sizes())
    throw DataError("bootstrap over objects (time-resolved model): model and neural RDMs must "
                    "both be condensed (T, m); got " + ShapeOf(model) + " and " +
                    ShapeOf(neural));
  // Validate as a static model on the first row, then use every row.
  ObjectData d = PrepareObjects(model[0].contiguous(), neural, times_ms, comparison);
  d.model_rows = CheckedFinite(model, "bootstrap model RDMs");
  d.model = at::Tensor();
  return ObjectsBlock(d, comparison, indices);
}

BootstrapSamples SamplesFromCurves(const at::Tensor& curves, const at::Tensor& times_ms) {
  if (curves.dim() != 2)
    throw DataError("bootstrap samples: curves must be (B, T); got " + ShapeOf(curves));
  BootstrapSamples s;
  s.curves = curves.to(at::kDouble).contiguous();
  FillCurveStats(s, CheckedTimes(times_ms, curves.size(1), "bootstrap samples"));
  return s;
}

CurveCi BootstrapObjects(const at::Tensor& model, const at::Tensor& neural,
                         const at::Tensor& times_ms, int64_t n_boot, uint64_t seed, double level,
                         rsa::Comparison comparison) {
  CheckNBoot(n_boot);
  CheckLevel(level);
  const ObjectData d = PrepareObjects(model, neural, times_ms, comparison);
  const at::Tensor estimate = ObjectsEstimateOf(d, comparison);
  const BootstrapSamples s =
      ObjectsBlock(d, comparison, ResampleIndices(seed, kBootstrapObjectsStream, 0, n_boot, d.n));
  return SummarizeBootstrap(estimate, d.times, s, level);
}

CurveCi BootstrapObjects(const at::Tensor& model, const at::Tensor& neural,
                         const at::Tensor& times_ms, const at::Tensor& indices, double level,
                         rsa::Comparison comparison) {
  CheckLevel(level);
  const ObjectData d = PrepareObjects(model, neural, times_ms, comparison);
  const at::Tensor estimate = ObjectsEstimateOf(d, comparison);
  return SummarizeBootstrap(estimate, d.times, ObjectsBlock(d, comparison, indices), level);
}

at::Tensor ObjectsEstimate(const at::Tensor& model, const at::Tensor& neural,
                           const at::Tensor& times_ms, rsa::Comparison comparison) {
  return ObjectsEstimateOf(PrepareObjects(model, neural, times_ms, comparison), comparison);
}

}  // namespace cliphba::stats
