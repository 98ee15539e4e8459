#include "stats/mantel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#include "core/error.h"
#include "core/rng.h"
#include "rsa/compare.h"

namespace cliphba::stats {

namespace {
constexpr uint64_t kMantelStream = 6ull << 56;
}  // namespace

CorrelationKind ParseCorrelation(const std::string& name) {
  if (name == "pearson") return CorrelationKind::kPearson;
  if (name == "spearman") return CorrelationKind::kSpearman;
  throw ConfigError("statistic '" + name + "' is unknown; expected spearman or pearson");
}

at::Tensor StandardizeRows(const at::Tensor& x_in, CorrelationKind kind, at::ScalarType dtype) {
  TORCH_CHECK(x_in.dim() == 2, "StandardizeRows expects (rows, m)");
  const int64_t rows = x_in.size(0), m = x_in.size(1);
  at::Tensor x = x_in.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor out = at::empty({rows, m}, x.options());
  std::vector<std::string> errors(rows);
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const double* src = x.data_ptr<double>() + r * m;
      double* dst = out.data_ptr<double>() + r * m;
      for (int64_t k = 0; k < m; ++k) {
        if (!std::isfinite(src[k])) {
          errors[r] = "row " + std::to_string(r) + " has NaN or Inf at pair " + std::to_string(k);
          break;
        }
      }
      if (!errors[r].empty()) continue;
      if (kind == CorrelationKind::kSpearman) {
        at::Tensor ranks = rsa::RankAverage(x[r]);
        std::copy(ranks.data_ptr<double>(), ranks.data_ptr<double>() + m, dst);
      } else {
        std::copy(src, src + m, dst);
      }
      double mean = std::accumulate(dst, dst + m, 0.0) / double(m), ss = 0;
      for (int64_t k = 0; k < m; ++k) dst[k] -= mean, ss += dst[k] * dst[k];
      if (ss == 0) {
        errors[r] = "row " + std::to_string(r) + " is constant (its correlation is undefined)";
        continue;
      }
      const double inv = 1.0 / std::sqrt(ss);
      for (int64_t k = 0; k < m; ++k) dst[k] *= inv;
    }
  });
  for (const auto& e : errors)
    if (!e.empty()) throw DataError("RDM " + e);
  return out.to(dtype);
}

at::Tensor SquareFromCondensed(const at::Tensor& z, int64_t n) {
  TORCH_CHECK(z.dim() == 1 && z.numel() == n * (n - 1) / 2, "condensed size does not match n");
  at::Tensor zc = z.to(at::kCPU).contiguous();
  at::Tensor sq = at::zeros({n, n}, zc.options());
  AT_DISPATCH_FLOATING_TYPES(zc.scalar_type(), "SquareFromCondensed", [&] {
    const scalar_t* src = zc.data_ptr<scalar_t>();
    scalar_t* dst = sq.data_ptr<scalar_t>();
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j, ++k) dst[i * n + j] = dst[j * n + i] = src[k];
  });
  return sq.to(z.device());
}

namespace {

// dst[k] = row[perm[j + k]] for k in [0, count). The plain loop, and for float32 on x86 one that
// writes the (B x m) buffer with non-temporal stores: the buffer (440 MB at n = 1854, B = 64)
// never fits a cache, so skipping the read-for-ownership of every output line cuts the gather's
// memory traffic by about a third (measured ~1.5x faster on the development VM). Same values.
template <typename T>
T* GatherRow(const T* row, const int32_t* perm, int64_t count, T* dst) {
  for (int64_t k = 0; k < count; ++k) *dst++ = row[perm[k]];
  return dst;
}

#if defined(__SSE2__)
template <>
float* GatherRow<float>(const float* row, const int32_t* perm, int64_t count, float* dst) {
  int64_t k = 0;
  for (; k < count && (reinterpret_cast<uintptr_t>(dst) & 15) != 0; ++k) *dst++ = row[perm[k]];
  for (; k + 4 <= count; k += 4, dst += 4)
    _mm_stream_ps(dst, _mm_setr_ps(row[perm[k]], row[perm[k + 1]], row[perm[k + 2]],
                                   row[perm[k + 3]]));
  for (; k < count; ++k) *dst++ = row[perm[k]];
  return dst;
}
#endif

}  // namespace

void GatherPermuted(const at::Tensor& square, const at::Tensor& perms, at::Tensor& out) {
  const int64_t n = square.size(0), b_count = perms.size(0), m = n * (n - 1) / 2;
  TORCH_CHECK(out.size(0) >= b_count && out.size(1) == m, "gather buffer has the wrong shape");
  if (square.device().is_cpu()) {
    // Row i of the permuted matrix is row p[i] of the square, read at columns p[j]: each row
    // (n values) stays in L1 while its n - i - 1 entries are gathered. Indices as int32 (half the
    // bytes of int64; n < 2^31 as n (n - 1) / 2 pairs must fit memory).
    TORCH_CHECK(n < (int64_t(1) << 31), "too many objects for the gather");
    at::Tensor p = perms.to(at::kInt).contiguous();
    AT_DISPATCH_FLOATING_TYPES(square.scalar_type(), "GatherPermuted", [&] {
      const scalar_t* sq = square.data_ptr<scalar_t>();
      scalar_t* dst = out.data_ptr<scalar_t>();
      const int32_t* pp = p.data_ptr<int32_t>();
      at::parallel_for(0, b_count, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int32_t* perm = pp + b * n;
          scalar_t* row_out = dst + b * m;
          for (int64_t i = 0; i < n; ++i)
            row_out = GatherRow(sq + int64_t(perm[i]) * n, perm + i + 1, n - i - 1, row_out);
        }
#if defined(__SSE2__)
        _mm_sfence();  // order the streamed stores before the GEMM reads them
#endif
      });
    });
    return;
  }
  GatherPermutedIndexed(square, perms, out);
}

void GatherPermutedIndexed(const at::Tensor& square, const at::Tensor& perms, at::Tensor& out) {
  const int64_t n = square.size(0), b_count = perms.size(0), m = n * (n - 1) / 2;
  TORCH_CHECK(out.size(0) >= b_count && out.size(1) == m, "gather buffer has the wrong shape");
  // Flat indices of the upper triangle on the square's device (a CPU index into a GPU tensor is
  // refused), for sub-batches of permutations whose (sub, m) int64 indices stay under 512 MB.
  const auto on = at::TensorOptions().dtype(at::kLong).device(square.device());
  const at::Tensor iu = at::triu_indices(n, n, 1, on);  // (2, m)
  const at::Tensor flat = square.reshape({-1});
  const int64_t sub = std::max<int64_t>(1, (int64_t(1) << 26) / std::max<int64_t>(m, 1));
  for (int64_t b0 = 0; b0 < b_count; b0 += sub) {
    const int64_t b1 = std::min(b_count, b0 + sub);
    const at::Tensor p = perms.slice(0, b0, b1).to(square.device(), at::kLong);  // (sub, n)
    const at::Tensor idx = p.index_select(1, iu[0]) * n + p.index_select(1, iu[1]);  // (sub, m)
    out.slice(0, b0, b1).copy_(flat.index_select(0, idx.reshape({-1})).view({b1 - b0, m}));
  }
}

at::Tensor DrawPermutations(uint64_t seed, int64_t first, int64_t count, int64_t n) {
  at::Tensor out = at::empty({count, n}, at::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  at::parallel_for(0, count, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      RandomPermutation(seed, kMantelStream | uint64_t(first + r), n, p + r * n);
  });
  return out;
}

MantelCounts MakeMantelCounts(int64_t n_timepoints, int64_t n_permutations) {
  return {at::zeros({n_timepoints}, at::kLong),
          at::full({n_permutations}, -std::numeric_limits<double>::infinity(), at::kDouble)};
}

namespace {
// The first rows x cols elements of a reusable contiguous buffer as a (rows, cols) matrix: a
// buffer wider than the chunk (the last, shorter chunk of a sweep) is reused without at::mm_out
// resizing a view of it (which warns on every batch). Other buffers: its first rows, as before.
at::Tensor BufferView(const at::Tensor& buf, int64_t rows, int64_t cols) {
  if (!buf.is_contiguous() || buf.numel() < rows * cols) return buf.narrow(0, 0, rows);
  return buf.view({-1}).narrow(0, 0, rows * cols).view({rows, cols});
}
}  // namespace

at::Tensor MantelObserved(const at::Tensor& square, const at::Tensor& neural_z, at::Tensor& gather,
                          at::Tensor& stats) {
  const int64_t n = square.size(0);
  at::Tensor identity = at::arange(n, at::kLong).unsqueeze(0);
  at::Tensor g = gather.narrow(0, 0, 1);
  GatherPermuted(square, identity, g);
  at::Tensor s = BufferView(stats, 1, neural_z.size(0));
  at::mm_out(s, g, neural_z.t());
  // A copy: for float64 kernels .to() would return a view into the reused stats buffer.
  return s[0].to(at::kCPU, at::kDouble, /*non_blocking=*/false, /*copy=*/true);
}

void MantelAccumulate(const at::Tensor& square, const at::Tensor& neural_z,
                      const at::Tensor& observed, const at::Tensor& perms, int64_t first,
                      int64_t t0, Tail tail, at::Tensor& gather, at::Tensor& stats,
                      MantelCounts* counts) {
  TORCH_CHECK(tail == Tail::kUpper || tail == Tail::kTwo, "Mantel tests are upper or two-sided");
  const int64_t b_count = perms.size(0), tc = neural_z.size(0);
  at::Tensor g = gather.narrow(0, 0, b_count);
  GatherPermuted(square, perms, g);
  at::Tensor s = BufferView(stats, b_count, tc);
  at::mm_out(s, g, neural_z.t());  // (B, Tc)
  at::Tensor null = s.to(at::kCPU, at::kDouble);
  at::Tensor obs = observed.to(at::kDouble);
  if (tail == Tail::kTwo) null = null.abs(), obs = obs.abs();
  // Counts of null >= obs per timepoint, and per-permutation maxima over this chunk.
  counts->exceed.narrow(0, t0, tc) += (null >= obs.unsqueeze(0)).sum(/*dim=*/0);
  at::Tensor chunk_max = std::get<0>(null.max(/*dim=*/1));
  at::Tensor slot = counts->null_max.narrow(0, first, b_count);
  slot.copy_(at::maximum(slot, chunk_max));
}

void MantelCountFwer(const at::Tensor& observed, const at::Tensor& null_max, Tail tail,
                     at::Tensor* fwer_exceed) {
  at::Tensor obs = observed.to(at::kDouble);
  if (tail == Tail::kTwo) obs = obs.abs();
  // #{k : null_max[k] >= obs[t]} = R - #{k : null_max[k] < obs[t]}, via the sorted maxima.
  at::Tensor sorted = std::get<0>(null_max.to(at::kDouble).sort());
  at::Tensor below = at::searchsorted(sorted, obs, /*out_int32=*/false, /*right=*/false);
  *fwer_exceed += null_max.numel() - below;
}

MantelPValues MantelPValuesFromCounts(const at::Tensor& exceed, const at::Tensor& fwer_exceed,
                                      int64_t n_permutations) {
  const double n = double(n_permutations);
  MantelPValues out;
  out.p = (exceed.to(at::kDouble) + 1.0) / (n + 1.0);
  out.p_fwer = (fwer_exceed.to(at::kDouble) + 1.0) / (n + 1.0);
  return out;
}

MantelPValues MantelFinish(const at::Tensor& observed, const MantelCounts& counts, Tail tail) {
  at::Tensor fwer = at::zeros({observed.numel()}, at::kLong);
  MantelCountFwer(observed, counts.null_max, tail, &fwer);
  return MantelPValuesFromCounts(counts.exceed, fwer, counts.null_max.numel());
}

}  // namespace cliphba::stats
