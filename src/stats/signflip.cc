#include "stats/signflip.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace cliphba::stats {

namespace detail {

at::Tensor CheckedData(const at::Tensor& data, const char* what) {
  if (!data.defined() || data.dim() != 2 || !at::isFloatingType(data.scalar_type())) {
    throw DataError(std::string(what) +
                    ": data must be a 2-D floating tensor (participants x timepoints), got " +
                    (data.defined() ? std::to_string(data.dim()) + "-D " +
                                          std::string(c10::toString(data.scalar_type()))
                                    : std::string("an undefined tensor")));
  }
  const int64_t n = data.size(0), t = data.size(1);
  if (n < 2)
    throw DataError(std::string(what) + ": need at least 2 participants (rows), got " +
                    std::to_string(n));
  if (t < 1) throw DataError(std::string(what) + ": data has no timepoints (0 columns)");
  at::Tensor d = data.to(at::kCPU, at::kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  for (int64_t i = 0; i < n * t; ++i) {
    if (!std::isfinite(p[i]))
      throw DataError(std::string(what) + ": data[" + std::to_string(i / t) + ", " +
                      std::to_string(i % t) + "] (participant, timepoint) is NaN or Inf");
  }
  return d;
}

at::Tensor CheckedFlips(const at::Tensor& flips, int64_t n, const char* what) {
  if (!flips.defined() || flips.dim() != 2 || flips.size(1) != n ||
      !(flips.scalar_type() == at::kChar || at::isFloatingType(flips.scalar_type()))) {
    throw DataError(
        std::string(what) + ": flips must be a 2-D int8 or floating tensor of shape " + "(K x " +
        std::to_string(n) + ") (one column per participant), got " +
        (flips.defined()
             ? std::to_string(flips.dim()) + "-D with " +
                   (flips.dim() == 2 ? std::to_string(flips.size(1)) : std::string("?")) +
                   " columns, " + std::string(c10::toString(flips.scalar_type()))
             : std::string("an undefined tensor")));
  }
  at::Tensor f = flips.to(at::kCPU, at::kDouble).contiguous();
  const double* p = f.data_ptr<double>();
  for (int64_t i = 0, m = f.numel(); i < m; ++i) {
    if (p[i] != 1.0 && p[i] != -1.0)
      throw DataError(std::string(what) + ": flips[" + std::to_string(i / n) + ", " +
                      std::to_string(i % n) + "] is " + std::to_string(p[i]) +
                      "; every entry must be +1 or -1");
  }
  return f;
}

void SignedT(const double* x, int64_t n, int64_t n_times, const double* signs, double* out,
             double* mean) {
  // MNE's ttest_1samp_no_p on X * signs, in numpy's order: the mean column-wise row by row, then
  // the sum of squared deviations from it row by row (np.var, ddof = 1), t = mean / sqrt(var / n).
  // A sign -1 negates exactly, so the all -1 pattern gives -t bit for bit and the all +1 pattern
  // gives the observed t bit for bit.
  const double nd = double(n);
  std::fill(out, out + n_times, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = x + i * n_times;
    if (signs == nullptr || signs[i] > 0) {
      for (int64_t j = 0; j < n_times; ++j) out[j] += row[j];
    } else {
      for (int64_t j = 0; j < n_times; ++j) out[j] -= row[j];
    }
  }
  for (int64_t j = 0; j < n_times; ++j) mean[j] = out[j] / nd;
  std::fill(out, out + n_times, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = x + i * n_times;
    const bool plus = signs == nullptr || signs[i] > 0;
    for (int64_t j = 0; j < n_times; ++j) {
      const double c = (plus ? row[j] : -row[j]) - mean[j];
      out[j] += c * c;
    }
  }
  for (int64_t j = 0; j < n_times; ++j) {
    const double var = out[j] / (nd - 1.0);
    out[j] = mean[j] / std::sqrt(var / nd);
  }
}

at::Tensor FlippedTChecked(const at::Tensor& d, const at::Tensor& f) {
  // Every row through SignedT, participant by participant in the same order whatever the block or
  // thread split, so results are bit-identical for any sharding (a BLAS product changes rounding
  // with the matrix shape) and equal to OneSampleT's arithmetic (the identity flip ties with the
  // observed statistic exactly, as in MNE).
  const int64_t n = d.size(0), n_times = d.size(1), k = f.size(0);
  const double* x = d.data_ptr<double>();
  const double* s = f.data_ptr<double>();
  at::Tensor out = at::empty({k, n_times}, at::kDouble);
  double* o = out.data_ptr<double>();
  at::parallel_for(0, k, 16, [&](int64_t begin, int64_t end) {
    std::vector<double> mean(size_t(n_times), 0.0);
    for (int64_t r = begin; r < end; ++r)
      SignedT(x, n, n_times, s + r * n, o + r * n_times, mean.data());
  });
  return out;
}

int64_t ChunkRows(int64_t n_times) {
  return std::max<int64_t>(1, (int64_t(4) << 20) / std::max<int64_t>(1, n_times));
}

}  // namespace detail

at::Tensor OneSampleT(const at::Tensor& data) {
  at::Tensor d = detail::CheckedData(data, "OneSampleT");
  const int64_t n = d.size(0), t = d.size(1);
  at::Tensor out = at::empty({t}, at::kDouble);
  std::vector<double> mean(size_t(t), 0.0);
  detail::SignedT(d.data_ptr<double>(), n, t, nullptr, out.data_ptr<double>(), mean.data());
  const double* o = out.data_ptr<double>();
  for (int64_t j = 0; j < t; ++j) {
    if (!std::isfinite(o[j]))  // 0 / 0 or x / 0: zero variance
      throw DataError("OneSampleT: timepoint " + std::to_string(j) +
                      " has zero variance across the " + std::to_string(n) +
                      " participants; its t statistic is undefined (MNE would give inf/nan)");
  }
  return out;
}

bool UseExactSignFlips(int64_t n_permutations, int64_t n_participants, Tail tail) {
  const int64_t bits = n_participants - (tail == Tail::kTwo ? 1 : 0);
  if (bits >= 62) return false;
  return (int64_t(1) << bits) - 1 < n_permutations;  // MNE: max_perms < n_permutations
}

at::Tensor ExactSignFlips(int64_t n_participants, Tail tail) {
  const int64_t bits = n_participants - (tail == Tail::kTwo ? 1 : 0);
  if (n_participants < 1 || bits < 0 || bits > kMaxExactBits)
    throw DataError("ExactSignFlips: " + std::to_string(n_participants) + " participants give 2^" +
                    std::to_string(bits) + " sign patterns; the exact test enumerates at most 2^" +
                    std::to_string(kMaxExactBits) + " (draw random flips instead: lower n)");
  const int64_t rows = (int64_t(1) << bits) - 1;
  at::Tensor out = at::empty({rows, n_participants}, at::kChar);
  int8_t* o = out.data_ptr<int8_t>();
  for (int64_t k = 0; k < rows; ++k) {
    const uint64_t pattern = uint64_t(k + 1);  // MNE's bin_perm_rep(N)[1 : max_perms + 1]
    for (int64_t j = 0; j < n_participants; ++j) {
      const uint64_t bit = (pattern >> (n_participants - 1 - j)) & 1u;  // participant 0 = MSB
      o[k * n_participants + j] = bit ? int8_t(1) : int8_t(-1);
    }
  }
  return out;
}

at::Tensor SignFlipsFor(int64_t n_permutations, int64_t n_participants, Tail tail, uint64_t seed) {
  if (UseExactSignFlips(n_permutations, n_participants, tail))
    return ExactSignFlips(n_participants, tail);
  return DrawSignFlips(n_permutations - 1, n_participants, seed);
}

at::Tensor DrawSignFlips(int64_t n_flips, int64_t n_participants, uint64_t seed, int64_t first) {
  constexpr int64_t kMaxRow = int64_t(1) << 56;
  if (n_flips < 0 || n_participants < 1 || first < 0 || first > kMaxRow - n_flips) {
    throw DataError(
        "DrawSignFlips: need n_flips >= 0, n_participants >= 1 and 0 <= first, "
        "first + n_flips <= 2^56; got n_flips=" +
        std::to_string(n_flips) + ", n_participants=" + std::to_string(n_participants) +
        ", first=" + std::to_string(first));
  }
  at::Tensor out = at::empty({n_flips, n_participants}, at::kChar);
  int8_t* o = out.data_ptr<int8_t>();
  for (int64_t k = 0; k < n_flips; ++k) {
    CounterRng rng(seed, kSignFlipStream | uint64_t(first + k));
    uint32_t word = 0;
    for (int64_t j = 0; j < n_participants; ++j) {
      if (j % 32 == 0) word = rng.NextU32();
      o[k * n_participants + j] = ((word >> (j % 32)) & 1u) ? int8_t(1) : int8_t(-1);
    }
  }
  return out;
}

at::Tensor FlippedT(const at::Tensor& data, const at::Tensor& flips) {
  at::Tensor d = detail::CheckedData(data, "FlippedT");
  at::Tensor f = detail::CheckedFlips(flips, d.size(0), "FlippedT");
  return detail::FlippedTChecked(d, f);
}

void AccumulateTMax(const at::Tensor& data, const at::Tensor& flips_block, double* h0_out) {
  at::Tensor d = detail::CheckedData(data, "AccumulateTMax");
  at::Tensor f = detail::CheckedFlips(flips_block, d.size(0), "AccumulateTMax");
  const int64_t k = f.size(0), chunk = detail::ChunkRows(d.size(1));
  for (int64_t a = 0; a < k; a += chunk) {
    const int64_t b = std::min(k, a + chunk);
    at::Tensor tmax = std::get<0>(detail::FlippedTChecked(d, f.slice(0, a, b)).abs().max(1));
    tmax = tmax.contiguous();
    std::copy(tmax.data_ptr<double>(), tmax.data_ptr<double>() + (b - a), h0_out + a);
  }
}

at::Tensor TMaxPValues(const at::Tensor& t_obs, const at::Tensor& h0, Tail tail) {
  if (!t_obs.defined() || !h0.defined() || t_obs.dim() != 1 || h0.dim() != 1 || h0.numel() < 1)
    throw DataError("TMaxPValues: t_obs must be 1-D and h0 1-D with at least 1 entry");
  at::Tensor sorted = std::get<0>(h0.to(at::kDouble).contiguous().sort());
  sorted = sorted.contiguous();
  const double* s = sorted.data_ptr<double>();
  const int64_t m = sorted.numel();
  at::Tensor t = t_obs.to(at::kDouble).contiguous();
  const double* tp = t.data_ptr<double>();
  at::Tensor p = at::empty({t.numel()}, at::kDouble);
  double* pp = p.data_ptr<double>();
  for (int64_t j = 0; j < t.numel(); ++j) {
    // #{h0 >= v}: |t| for tail 0, t for tail 1, -t for tail -1 (-h0 <= t  <=>  h0 >= -t).
    const double v = tail == Tail::kTwo ? std::fabs(tp[j]) : tail == Tail::kUpper ? tp[j] : -tp[j];
    const int64_t count = m - (std::lower_bound(s, s + m, v) - s);
    pp[j] = double(count) / double(m);
  }
  return p;
}

TMaxResult TMaxTest(const at::Tensor& data, const at::Tensor& flips, Tail tail) {
  TMaxResult r;
  r.t_obs = OneSampleT(data);
  at::Tensor d = detail::CheckedData(data, "TMaxTest");
  at::Tensor f = detail::CheckedFlips(flips, d.size(0), "TMaxTest");
  r.h0 = at::empty({f.size(0) + 1}, at::kDouble);
  double* h = r.h0.data_ptr<double>();
  h[0] = r.t_obs.abs().max().item<double>();
  AccumulateTMax(d, f, h + 1);
  r.p = TMaxPValues(r.t_obs, r.h0, tail);
  return r;
}

}  // namespace cliphba::stats
