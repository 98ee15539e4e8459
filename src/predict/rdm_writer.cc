#include "predict/rdm_writer.h"

#include <algorithm>
#include <vector>

namespace cliphba::predict {

at::Tensor PrepareRows(const at::Tensor& x, RdmMetric metric) {
  at::Tensor z = x.to(at::kDouble);
  if (metric == RdmMetric::kCorrelation) z = z - z.mean({1}, /*keepdim=*/true);
  return (z / z.norm(2, {1}, /*keepdim=*/true)).contiguous();
}

Range CondensedShard(int64_t n, int ranks, int rank) {
  return ShardRange(n * (n - 1) / 2, ranks, rank);
}

namespace {

// First condensed index of row i: i N - i (i + 1) / 2.
int64_t RowStart(int64_t i, int64_t n) { return i * n - i * (i + 1) / 2; }

// Entries [p0, p1) of the condensed distance vector of z (N, K) float64, as float32.
at::Tensor Entries(const at::Tensor& z, int64_t p0, int64_t p1) {
  const int64_t n = z.size(0);
  at::Tensor out = at::empty({p1 - p0}, at::kFloat);
  float* o = out.data_ptr<float>();
  // The row holding p0: the largest i with RowStart(i) <= p0 (binary search).
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (RowStart(mid, n) <= p0) lo = mid; else hi = mid - 1;
  }
  for (int64_t i = lo, p = p0; p < p1; ++i) {
    const int64_t row_begin = RowStart(i, n), row_len = n - 1 - i;
    const at::Tensor d = 1.0 - at::mv(z.slice(0, i + 1, n), z[i]);  // (N - 1 - i) float64
    const double* dd = d.data_ptr<double>();
    const int64_t from = p - row_begin, to = std::min(row_len, p1 - row_begin);
    // Clamped to [0, 2] as scipy's distances are (NaN stays NaN): rounding can give -1e-16.
    for (int64_t j = from; j < to; ++j)
      o[p - p0 + (j - from)] = float(std::clamp(dd[j], 0.0, 2.0));
    p += to - from;
  }
  return out;
}

}  // namespace

void WriteCondensed(io::ResultsStore& store, const std::string& dataset, int64_t row,
                    const at::Tensor& z, int64_t piece, const parallel::Comm& comm) {
  const int64_t n = z.size(0);
  const Range mine = CondensedShard(n, comm.size(), comm.rank());
  int64_t calls = 0;  // the most pieces any rank has
  for (int r = 0; r < comm.size(); ++r)
    calls = std::max(calls, (CondensedShard(n, comm.size(), r).size() + piece - 1) / piece);
  for (int64_t c = 0; c < calls; ++c) {
    const int64_t p0 = std::min(mine.end, mine.begin + c * piece);
    const int64_t p1 = std::min(mine.end, p0 + piece);
    at::Tensor block = p1 > p0 ? Entries(z, p0, p1) : at::empty({0}, at::kFloat);
    if (row >= 0) {
      store.WriteBlock(dataset, {row, p0}, block.view({1, p1 - p0}));
    } else {
      store.WriteBlock(dataset, {p0}, block);
    }
  }
}

}  // namespace cliphba::predict
