#include "stats/bootstrap.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "rsa/rdm.h"
#include "stats/bootstrap_internal.h"

namespace cliphba::stats {

namespace detail {

constexpr int64_t kMaxSamples = int64_t(1) << 56;

std::string ShapeOf(const at::Tensor& x) {
  std::ostringstream s;
  s << x.sizes();
  return s.str();
}

void CheckLevel(double level) {
  if (!(level > 0.0 && level < 1.0)) {
    std::ostringstream msg;
    msg << "bootstrap: confidence level " << level << " is invalid; expected 0 < level < 1";
    throw ConfigError(msg.str());
  }
}

void CheckBlock(int64_t first, int64_t count) {
  if (first < 0 || count < 0 || first > kMaxSamples - count) {
    throw ConfigError("bootstrap: sample block [" + std::to_string(first) + ", " +
                      std::to_string(first) + " + " + std::to_string(count) +
                      ") is invalid; expected first >= 0, count >= 0, first + count <= 2^56");
  }
}

// Float64 contiguous (T) time axis: finite, strictly increasing, T == expected (if >= 0).
at::Tensor CheckedTimes(const at::Tensor& times_ms, int64_t expected, const char* what) {
  if (times_ms.dim() != 1 || times_ms.numel() < 1 ||
      (expected >= 0 && times_ms.numel() != expected)) {
    throw DataError(std::string(what) +
                    ": the time axis must be 1-D with one entry per timepoint (" +
                    std::to_string(expected) + "); got shape " + ShapeOf(times_ms));
  }
  at::Tensor t = times_ms.to(at::kDouble).contiguous();
  const double* pt = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(pt[i]))
      throw DataError(std::string(what) + ": time " + std::to_string(i) + " is NaN or Inf");
    if (i > 0 && !(pt[i] > pt[i - 1])) {
      std::ostringstream msg;
      msg << what << ": the time axis must be strictly increasing; times[" << i - 1
          << "] = " << pt[i - 1] << " ms, times[" << i << "] = " << pt[i] << " ms";
      throw DataError(msg.str());
    }
  }
  return t;
}

at::Tensor CheckedFinite(const at::Tensor& x, const std::string& what) {
  if (!at::isFloatingType(x.scalar_type()))
    throw DataError(what + ": values must be floating point");
  at::Tensor y = x.to(at::kDouble).contiguous();
  const double* p = y.data_ptr<double>();
  for (int64_t i = 0, k = y.numel(); i < k; ++i)
    if (!std::isfinite(p[i]))
      throw DataError(what + ": entry at flat index " + std::to_string(i) + " is NaN or Inf");
  return y;
}

// (B, units) int64 contiguous, every entry in [0, units).
at::Tensor CheckedIndices(const at::Tensor& indices, int64_t units, const char* what) {
  if (indices.dim() != 2 || indices.size(1) != units || indices.scalar_type() != at::kLong) {
    throw DataError(std::string(what) + ": resampling indices must be a (B, " +
                    std::to_string(units) + ") int64 matrix; got shape " + ShapeOf(indices) +
                    " of type " + std::string(at::toString(indices.scalar_type())));
  }
  at::Tensor idx = indices.contiguous();
  const int64_t* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0, k = idx.numel(); i < k; ++i) {
    if (p[i] < 0 || p[i] >= units) {
      throw DataError(std::string(what) + ": resampling index " + std::to_string(p[i]) +
                      " (sample " + std::to_string(i / units) + ") is outside [0, " +
                      std::to_string(units) + ")");
    }
  }
  return idx;
}

double PeakRaw(const double* c, const double* t, int64_t T) {
  int64_t best = 0;
  for (int64_t i = 0; i < T; ++i) {
    if (std::isnan(c[i])) return kNaN;
    if (c[i] > c[best]) best = i;
  }
  return t[best];
}

// np.trapz(c[t >= 0], t[t >= 0] / 1000).
double AreaRaw(const double* c, const double* t, int64_t T) {
  int64_t i0 = 0;
  while (i0 < T && !(t[i0] >= 0.0)) ++i0;
  double area = 0;
  for (int64_t i = i0; i + 1 < T; ++i) {
    const double d = t[i + 1] / 1000.0 - t[i] / 1000.0;
    area += d * (c[i] + c[i + 1]) / 2.0;
  }
  for (int64_t i = 0; i < T; ++i)
    if (std::isnan(c[i])) return kNaN;
  return area;
}

// Fills peak_ms and auc of samples from its curves.
void FillCurveStats(BootstrapSamples& s, const at::Tensor& times) {
  const int64_t B = s.curves.size(0), T = s.curves.size(1);
  s.peak_ms = at::empty({B}, at::kDouble);
  s.auc = at::empty({B}, at::kDouble);
  const double* pc = s.curves.data_ptr<double>();
  const double* pt = times.data_ptr<double>();
  double* pp = s.peak_ms.data_ptr<double>();
  double* pa = s.auc.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) {
    pp[b] = PeakRaw(pc + b * T, pt, T);
    pa[b] = AreaRaw(pc + b * T, pt, T);
  }
}

// numpy's _lerp: a + (b - a) t, evaluated from b for t >= 0.5.
double Lerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

double PercentileSorted(const double* sorted, int64_t n, double q) {
  const double h = double(n - 1) * (q / 100.0);
  if (h >= double(n - 1)) return sorted[n - 1];
  if (h <= 0.0) return sorted[0];
  const double lo = std::floor(h);
  const int64_t i = int64_t(lo);
  return Lerp(sorted[i], sorted[i + 1], h - lo);
}

// ---- participants ---------------------------------------------------------------------------

struct ParticipantData {
  int64_t N = 0, T = 0;
  at::Tensor values, times;
};

ParticipantData PrepareParticipants(const at::Tensor& values, const at::Tensor& times_ms) {
  if (values.dim() != 2 || values.size(0) < 1 || values.size(1) < 1) {
    throw DataError(
        "bootstrap over participants: values must be (N participants, T timepoints) "
        "with N, T >= 1; got shape " +
        ShapeOf(values));
  }
  ParticipantData d;
  d.N = values.size(0), d.T = values.size(1);
  d.values = CheckedFinite(values, "bootstrap over participants: values");
  d.times = CheckedTimes(times_ms, d.T, "bootstrap over participants");
  return d;
}

BootstrapSamples ParticipantsBlock(const ParticipantData& d, const at::Tensor& indices) {
  const at::Tensor idx = CheckedIndices(indices, d.N, "bootstrap over participants");
  const int64_t B = idx.size(0), N = d.N, T = d.T;
  BootstrapSamples s;
  s.curves = at::zeros({B, T}, at::kDouble);
  const int64_t* pi = idx.data_ptr<int64_t>();
  const double* pv = d.values.data_ptr<double>();
  double* pc = s.curves.data_ptr<double>();
  ParallelFor(B, [&](int64_t b) {
    double* c = pc + b * T;
    for (int64_t i = 0; i < N; ++i) {
      const double* row = pv + pi[b * N + i] * T;
      for (int64_t t = 0; t < T; ++t) c[t] += row[t];
    }
    for (int64_t t = 0; t < T; ++t) c[t] /= double(N);
  });
  FillCurveStats(s, d.times);
  return s;
}

at::Tensor ParticipantsEstimateOf(const ParticipantData& d) {
  at::Tensor identity = at::arange(d.N, at::kLong).reshape({1, d.N});
  return ParticipantsBlock(d, identity).curves[0];
}

void CheckNBoot(int64_t n_boot) {
  if (n_boot < 1)
    throw ConfigError("bootstrap: the number of samples must be >= 1; got " +
                      std::to_string(n_boot));
}

}  // namespace detail

using namespace detail;  // NOLINT: this file's own helpers

// ---- helpers ----------------------------------------------------------------------------------

double PeakLatency(const at::Tensor& curve, const at::Tensor& times_ms) {
  if (curve.dim() != 1 || curve.numel() < 1)
    throw DataError("peak latency: the curve must be 1-D and non-empty; got shape " +
                    ShapeOf(curve));
  at::Tensor t = CheckedTimes(times_ms, curve.numel(), "peak latency");
  at::Tensor c = curve.to(at::kDouble).contiguous();
  const double v = PeakRaw(c.data_ptr<double>(), t.data_ptr<double>(), c.numel());
  if (std::isnan(v)) throw DataError("peak latency: the curve has a NaN");
  return v;
}

double AreaFromZero(const at::Tensor& curve, const at::Tensor& times_ms) {
  if (curve.dim() != 1 || curve.numel() < 1)
    throw DataError("area from 0 ms: the curve must be 1-D and non-empty; got shape " +
                    ShapeOf(curve));
  at::Tensor t = CheckedTimes(times_ms, curve.numel(), "area from 0 ms");
  at::Tensor c = curve.to(at::kDouble).contiguous();
  const double v = AreaRaw(c.data_ptr<double>(), t.data_ptr<double>(), c.numel());
  if (std::isnan(v)) throw DataError("area from 0 ms: the curve has a NaN");
  return v;
}

at::Tensor Percentile(const at::Tensor& samples, double q) {
  if (!(q >= 0.0 && q <= 100.0)) {
    std::ostringstream msg;
    msg << "percentile: q = " << q << " is invalid; expected 0 <= q <= 100";
    throw ConfigError(msg.str());
  }
  if ((samples.dim() != 1 && samples.dim() != 2) || samples.size(0) < 1) {
    throw DataError("percentile: samples must be (B) or (B, K) with B >= 1; got shape " +
                    ShapeOf(samples));
  }
  const int64_t B = samples.size(0), K = samples.dim() == 2 ? samples.size(1) : 1;
  // Column-major copy: column k is contiguous.
  at::Tensor cols = CheckedFinite(samples.reshape({B, K}).t(), "percentile: samples").contiguous();
  at::Tensor out = at::empty({K}, at::kDouble);
  double* pc = cols.data_ptr<double>();
  double* po = out.data_ptr<double>();
  for (int64_t k = 0; k < K; ++k) {
    std::sort(pc + k * B, pc + (k + 1) * B);
    po[k] = PercentileSorted(pc + k * B, B, q);
  }
  return samples.dim() == 1 ? out.reshape({}) : out;
}

at::Tensor ResampleIndices(uint64_t seed, uint64_t stream_family, int64_t first, int64_t count,
                           int64_t n) {
  CheckBlock(first, count);
  if (n < 1) throw ConfigError("bootstrap: cannot resample " + std::to_string(n) + " units");
  at::Tensor idx = at::empty({count, n}, at::kLong);
  int64_t* p = idx.data_ptr<int64_t>();
  for (int64_t r = 0; r < count; ++r) {
    CounterRng rng(seed, stream_family | uint64_t(first + r));
    for (int64_t i = 0; i < n; ++i) p[r * n + i] = int64_t(rng.Below(uint64_t(n)));
  }
  return idx;
}

BootstrapSamples MergeBootstrapSamples(const std::vector<BootstrapSamples>& blocks) {
  if (blocks.empty()) throw DataError("bootstrap: no sample blocks to merge");
  std::vector<const BootstrapSamples*> order;
  for (const auto& b : blocks) order.push_back(&b);
  std::sort(order.begin(), order.end(), [](const BootstrapSamples* a, const BootstrapSamples* b) {
    return a->first < b->first;
  });
  std::vector<at::Tensor> curves, peaks, aucs;
  int64_t next = order.front()->first;
  for (const BootstrapSamples* b : order) {
    if (b->first != next) {
      throw DataError(
          "bootstrap: sample blocks do not tile a range; expected a block starting at " +
          std::to_string(next) + ", got one at " + std::to_string(b->first));
    }
    if (b->curves.dim() != 2 || b->curves.size(1) != order.front()->curves.size(1))
      throw DataError("bootstrap: sample blocks have different numbers of timepoints");
    next += b->size();
    curves.push_back(b->curves), peaks.push_back(b->peak_ms), aucs.push_back(b->auc);
  }
  BootstrapSamples merged;
  merged.first = order.front()->first;
  merged.curves = at::cat(curves, 0);
  merged.peak_ms = at::cat(peaks, 0);
  merged.auc = at::cat(aucs, 0);
  return merged;
}

CurveCi SummarizeBootstrap(const at::Tensor& estimate, const at::Tensor& times_ms,
                           const BootstrapSamples& samples, double level) {
  CheckLevel(level);
  const int64_t T = estimate.numel();
  if (estimate.dim() != 1 || samples.curves.dim() != 2 || samples.curves.size(1) != T ||
      samples.peak_ms.numel() != samples.size() || samples.auc.numel() != samples.size()) {
    throw DataError("bootstrap: estimate " + ShapeOf(estimate) + " and samples " +
                    ShapeOf(samples.curves) + " do not match");
  }
  CurveCi ci;
  ci.estimate = estimate.to(at::kDouble).contiguous();
  ci.peak_ms = PeakLatency(ci.estimate, times_ms);
  ci.auc = AreaFromZero(ci.estimate, times_ms);
  ci.level = level;
  ci.n_boot = samples.size();
  at::Tensor valid = at::isfinite(samples.curves).all(1);
  at::Tensor rows = valid.nonzero().reshape({-1});
  ci.n_valid = rows.numel();
  if (ci.n_valid == 0) {
    throw DataError("bootstrap: none of the " + std::to_string(ci.n_boot) +
                    " samples has a curve defined at every timepoint");
  }
  const double q_lo = 100.0 * (1.0 - level) / 2.0, q_hi = 100.0 * (1.0 + level) / 2.0;
  at::Tensor curves = samples.curves.to(at::kDouble).index_select(0, rows);
  at::Tensor peaks = samples.peak_ms.to(at::kDouble).index_select(0, rows);
  at::Tensor aucs = samples.auc.to(at::kDouble).index_select(0, rows);
  ci.lower = Percentile(curves, q_lo);
  ci.upper = Percentile(curves, q_hi);
  ci.peak_lower = Percentile(peaks, q_lo).item<double>();
  ci.peak_upper = Percentile(peaks, q_hi).item<double>();
  ci.auc_lower = Percentile(aucs, q_lo).item<double>();
  ci.auc_upper = Percentile(aucs, q_hi).item<double>();
  return ci;
}

// ---- participants -----------------------------------------------------------------------------

BootstrapSamples BootstrapParticipantsBlock(const at::Tensor& values, const at::Tensor& times_ms,
                                            uint64_t seed, int64_t first, int64_t count) {
  const ParticipantData d = PrepareParticipants(values, times_ms);
  BootstrapSamples s =
      ParticipantsBlock(d, ResampleIndices(seed, kBootstrapParticipantsStream, first, count, d.N));
  s.first = first;
  return s;
}

BootstrapSamples BootstrapParticipantsBlock(const at::Tensor& values, const at::Tensor& times_ms,
                                            const at::Tensor& indices) {
  return ParticipantsBlock(PrepareParticipants(values, times_ms), indices);
}

CurveCi BootstrapParticipants(const at::Tensor& values, const at::Tensor& times_ms, int64_t n_boot,
                              uint64_t seed, double level) {
  CheckNBoot(n_boot);
  CheckLevel(level);
  const ParticipantData d = PrepareParticipants(values, times_ms);
  const BootstrapSamples s =
      ParticipantsBlock(d, ResampleIndices(seed, kBootstrapParticipantsStream, 0, n_boot, d.N));
  return SummarizeBootstrap(ParticipantsEstimateOf(d), d.times, s, level);
}

CurveCi BootstrapParticipants(const at::Tensor& values, const at::Tensor& times_ms,
                              const at::Tensor& indices, double level) {
  CheckLevel(level);
  const ParticipantData d = PrepareParticipants(values, times_ms);
  return SummarizeBootstrap(ParticipantsEstimateOf(d), d.times, ParticipantsBlock(d, indices),
                            level);
}

at::Tensor ParticipantsEstimate(const at::Tensor& values, const at::Tensor& times_ms) {
  return ParticipantsEstimateOf(PrepareParticipants(values, times_ms));
}

}  // namespace cliphba::stats
