// Helpers shared by the bootstrap's translation units (bootstrap.cc: participants, summaries;
// bootstrap_objects.cc: objects). Internal to stats: not part of its public interface.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "stats/bootstrap.h"

namespace cliphba::stats::detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// "[a, b, ...]" of a tensor's shape, for messages.
std::string ShapeOf(const at::Tensor& x);
// ConfigError unless 0 < level < 1; unless n_boot >= 1.
void CheckLevel(double level);
void CheckNBoot(int64_t n_boot);
// times_ms as a contiguous float64 (T) tensor of `expected` finite, strictly increasing values,
// else DataError naming `what`.
at::Tensor CheckedTimes(const at::Tensor& times_ms, int64_t expected, const char* what);
// x as contiguous float64, all finite, else DataError naming `what`.
at::Tensor CheckedFinite(const at::Tensor& x, const std::string& what);
// indices as a contiguous (B, units) int64 tensor with values in [0, units), else DataError.
at::Tensor CheckedIndices(const at::Tensor& indices, int64_t units, const char* what);
// Fills s.peak_ms and s.auc (B) from s.curves (B, T) on times (T).
void FillCurveStats(BootstrapSamples& s, const at::Tensor& times);

// Runs fn(i) for i in [0, count) on up to at::get_num_threads() std::threads (contiguous chunks;
// every fn(i) is pure, so the result does not depend on the split). Rethrows the first exception.
// std::thread rather than at::parallel_for, whose OpenMP region is inline in ATen's headers and
// runs serially in a translation unit built without -fopenmp.
template <typename Fn>
void ParallelFor(int64_t count, Fn fn) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), count));
  if (workers <= 1) {
    for (int64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&](int64_t begin, int64_t end) {
    try {
      for (int64_t i = begin; i < end; ++i) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  const int64_t base = count / workers, extra = count % workers;
  int64_t begin = 0;
  for (int64_t w = 0; w < workers; ++w) {
    const int64_t end = begin + base + (w < extra ? 1 : 0);
    if (w + 1 < workers) {
      threads.emplace_back(work, begin, end);
    } else {
      work(begin, end);
    }
    begin = end;
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace cliphba::stats::detail
