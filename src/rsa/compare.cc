#include "rsa/compare.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "core/error.h"

namespace cliphba::rsa {

const char* ComparisonName(Comparison c) {
  switch (c) {
    case Comparison::kPearson:
      return "pearson";
    case Comparison::kSpearman:
      return "spearman";
    case Comparison::kKendallTauA:
      return "kendall_tau_a";
    case Comparison::kCosine:
      return "cosine";
  }
  return "?";
}

Comparison ParseComparison(const std::string& name) {
  for (Comparison c : AllComparisons())
    if (name == ComparisonName(c)) return c;
  throw ConfigError("comparison '" + name +
                    "' is unknown; expected one of pearson, spearman, kendall_tau_a, cosine");
}

std::vector<Comparison> AllComparisons() {
  return {Comparison::kPearson, Comparison::kSpearman, Comparison::kKendallTauA,
          Comparison::kCosine};
}

namespace {

// Validated float64 contiguous copies (or views) of a and b.
std::pair<at::Tensor, at::Tensor> CheckedPair(const at::Tensor& a, const at::Tensor& b,
                                              const char* what) {
  if (a.dim() != 1 || b.dim() != 1 || a.numel() != b.numel() || a.numel() < 2) {
    throw DataError(std::string(what) + ": expected two 1-D vectors of equal length >= 2, got " +
                    std::to_string(a.numel()) + " and " + std::to_string(b.numel()) + " entries");
  }
  at::Tensor x = a.to(at::kDouble).contiguous(), y = b.to(at::kDouble).contiguous();
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  for (int64_t i = 0, m = x.numel(); i < m; ++i) {
    if (!std::isfinite(px[i]) || !std::isfinite(py[i]))
      throw DataError(std::string(what) + ": entry " + std::to_string(i) + " is NaN or Inf");
  }
  return {x, y};
}

double PearsonRaw(const double* x, const double* y, int64_t m, const char* what) {
  double sx = 0, sy = 0;
  for (int64_t i = 0; i < m; ++i) sx += x[i], sy += y[i];
  const double mx = sx / m, my = sy / m;
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < m; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  if (sxx == 0 || syy == 0)
    throw DataError(std::string(what) + ": one input is constant, so the correlation is undefined");
  double r = sxy / std::sqrt(sxx * syy);
  return std::max(-1.0, std::min(1.0, r));
}

inline uint64_t OrderedKey(double v) {
  v += 0.0;  // -0.0 -> +0.0
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

// Number of pairs within runs of equal values along `order`.
int64_t TiedPairs(const double* x, const int64_t* order, int64_t m) {
  int64_t total = 0, i = 0;
  while (i < m) {
    int64_t j = i + 1;
    while (j < m && x[order[j]] == x[order[i]]) ++j;
    total += (j - i) * (j - i - 1) / 2;
    i = j;
  }
  return total;
}

// Counts pairs i < j with v[i] > v[j] (strict), sorting v; tmp has m entries.
int64_t CountInversions(int64_t* v, int64_t* tmp, int64_t m) {
  int64_t inversions = 0;
  for (int64_t width = 1; width < m; width *= 2) {
    for (int64_t lo = 0; lo < m; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, m), hi = std::min(lo + 2 * width, m);
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (v[j] < v[i]) {
          inversions += mid - i;
          tmp[k++] = v[j++];
        } else {
          tmp[k++] = v[i++];
        }
      }
      while (i < mid) tmp[k++] = v[i++];
      while (j < hi) tmp[k++] = v[j++];
    }
    std::swap(v, tmp);
    // After the swap v holds the merged data; the caller does not need the result in place.
  }
  return inversions;
}

// Stable LSD radix sort of (k, idx)[0..n) by the low `bits` bits of k (8-bit digits, histograms
// of all digits gathered in one read, digits that every key shares skipped); kt/it are scratch.
// Meant for cache-resident runs: RadixSortKeys splits the data by the top bits first.
template <typename Index>
void LsdSort(uint64_t* k, Index* idx, uint64_t* kt, Index* it, int64_t n, int bits) {
  if (n <= 32) {  // stable insertion sort
    for (int64_t i = 1; i < n; ++i) {
      const uint64_t key = k[i];
      const Index id = idx[i];
      int64_t j = i;
      for (; j > 0 && k[j - 1] > key; --j) k[j] = k[j - 1], idx[j] = idx[j - 1];
      k[j] = key, idx[j] = id;
    }
    return;
  }
  constexpr int kMaxPasses = 8;
  const int passes = (bits + 7) / 8;
  int64_t count[kMaxPasses][256] = {};
  for (int64_t i = 0; i < n; ++i)
    for (int p = 0; p < passes; ++p) ++count[p][(k[i] >> (8 * p)) & 0xff];
  uint64_t* k_src = k;
  uint64_t* k_dst = kt;
  Index* i_src = idx;
  Index* i_dst = it;
  for (int p = 0; p < passes; ++p) {
    int64_t* c = count[p];
    const int shift = 8 * p;
    if (c[(k_src[0] >> shift) & 0xff] == n) continue;  // all keys share this digit
    int64_t sum = 0;
    for (int b = 0; b < 256; ++b) {  // exclusive prefix sums: first slot of each bucket
      const int64_t cnt = c[b];
      c[b] = sum;
      sum += cnt;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t key = k_src[i];
      const int64_t pos = c[(key >> shift) & 0xff]++;
      k_dst[pos] = key;
      i_dst[pos] = i_src[i];
    }
    std::swap(k_src, k_dst);
    std::swap(i_src, i_dst);
  }
  if (k_src != k) {
    std::memcpy(k, k_src, sizeof(uint64_t) * n);
    std::memcpy(idx, i_src, sizeof(Index) * n);
  }
}

// Stable ascending sort of x[0..m) with its indices, on the OrderedKey minus the smallest key (so
// only the bits that vary are sorted on): one stable scatter on the top (up to) 8 of those bits,
// then LsdSort on each bucket while it is in cache. On return keys[t] is the t-th smallest relative
// key (equal keys <=> equal values) and idx[t] its index in x. keys_tmp/idx_tmp are scratch.
// Index: uint32_t when m < 2^32 (less memory traffic) or int64_t. A stable sort on one key gives a
// unique order, so none of these choices is observable.
template <typename Index>
void RadixSortKeys(const double* x, int64_t m, uint64_t* keys, Index* idx, uint64_t* keys_tmp,
                   Index* idx_tmp) {
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int64_t i = 0; i < m; ++i) {
    const uint64_t k = OrderedKey(x[i]);
    keys_tmp[i] = k;
    lo = std::min(lo, k), hi = std::max(hi, k);
  }
  const uint64_t span = hi - lo;
  const int bits = span == 0 ? 0 : 64 - __builtin_clzll(span);
  const int top = std::min(bits, 8), shift = bits - top;
  std::vector<int64_t> start((size_t(1) << top) + 1, 0);
  for (int64_t i = 0; i < m; ++i) ++start[((keys_tmp[i] - lo) >> shift) + 1];
  for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < m; ++i) {
    const uint64_t k = keys_tmp[i] - lo;
    const int64_t pos = fill[k >> shift]++;
    keys[pos] = k;
    idx[pos] = Index(i);
  }
  for (size_t b = 0; b + 1 < start.size(); ++b) {
    const int64_t b0 = start[b], n = start[b + 1] - b0;
    if (n > 1 && shift > 0) LsdSort(keys + b0, idx + b0, keys_tmp + b0, idx_tmp + b0, n, shift);
  }
}

// Average ranks (1-based, ties share the mean of their positions). Equal keys are exactly the
// equal values (NaN excluded, -0.0 == +0.0), so ties are found on the sorted keys, sequentially.
template <typename Index>
void RankIntoImpl(const double* x, int64_t m, double* ranks) {
  std::unique_ptr<uint64_t[]> keys(new uint64_t[m]), keys_tmp(new uint64_t[m]);
  std::unique_ptr<Index[]> idx(new Index[m]), idx_tmp(new Index[m]);
  RadixSortKeys(x, m, keys.get(), idx.get(), keys_tmp.get(), idx_tmp.get());
  const uint64_t* k = keys.get();
  const Index* order = idx.get();
  int64_t i = 0;
  while (i < m) {
    int64_t j = i + 1;
    while (j < m && k[j] == k[i]) ++j;
    const double r = 0.5 * double(i + j + 1);  // mean of positions i+1 .. j
    for (int64_t t = i; t < j; ++t) ranks[order[t]] = r;
    i = j;
  }
}

// REQUIRES: no NaN in x[0..m).
void RankInto(const double* x, int64_t m, double* ranks) {
  if (m <= 0) return;
  if (m <= int64_t(UINT32_MAX))
    RankIntoImpl<uint32_t>(x, m, ranks);
  else
    RankIntoImpl<int64_t>(x, m, ranks);
}

}  // namespace

void RadixArgsort(const double* x, int64_t m, int64_t* order) {
  if (m <= 0) return;
  std::unique_ptr<uint64_t[]> keys(new uint64_t[m]), keys_tmp(new uint64_t[m]);
  std::unique_ptr<int64_t[]> idx_tmp(new int64_t[m]);
  RadixSortKeys(x, m, keys.get(), order, keys_tmp.get(), idx_tmp.get());
}

at::Tensor RankAverage(const at::Tensor& x_in) {
  at::Tensor x = x_in.to(at::kDouble).contiguous();
  TORCH_CHECK(x.dim() == 1, "RankAverage expects a 1-D tensor");
  const int64_t m = x.numel();
  const double* px = x.data_ptr<double>();
  for (int64_t i = 0; i < m; ++i)
    if (std::isnan(px[i])) throw DataError("cannot rank NaN (entry " + std::to_string(i) + ")");
  at::Tensor ranks = at::empty({m}, x.options());
  RankInto(px, m, ranks.data_ptr<double>());
  return ranks;
}

double Pearson(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "Pearson correlation");
  return PearsonRaw(x.data_ptr<double>(), y.data_ptr<double>(), x.numel(), "Pearson correlation");
}

double Spearman(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "Spearman correlation");  // finite, so no NaN to rank
  const int64_t m = x.numel();
  at::Tensor rx = at::empty({m}, x.options()), ry = at::empty({m}, y.options());
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  double* prx = rx.data_ptr<double>();
  double* pry = ry.data_ptr<double>();
  // The two rankings are independent: one on a helper thread when there is a second core to use
  // and the inputs are large enough to pay for the thread (~50 us). A std::thread rather than
  // at::parallel_for, whose OpenMP region is inline in ATen's headers and so runs serially in a
  // translation unit built without -fopenmp.
  if (m >= (int64_t(1) << 16) && at::get_num_threads() > 1 && !at::in_parallel_region()) {
    std::thread helper([&] { RankInto(py, m, pry); });
    RankInto(px, m, prx);
    helper.join();
  } else {
    RankInto(px, m, prx);
    RankInto(py, m, pry);
  }
  return PearsonRaw(prx, pry, m, "Spearman correlation");
}

double SpearmanRaw(const double* x, const double* y, int64_t m, double* ranks) {
  RankInto(x, m, ranks);
  RankInto(y, m, ranks + m);
  return PearsonRaw(ranks, ranks + m, m, "Spearman correlation");
}

double KendallTauA(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "Kendall tau-a");
  const int64_t m = x.numel();
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  // Order by y, then stably by x: lexicographic (x, y).
  std::vector<int64_t> by_y(m), lex(m);
  RadixArgsort(py, m, by_y.data());
  const int64_t tied_y = TiedPairs(py, by_y.data(), m);
  // Dense integer ranks of y (equal values share a rank) for the inversion count.
  std::vector<int64_t> y_rank(m);
  for (int64_t i = 0, r = 0; i < m; ++i) {
    if (i > 0 && py[by_y[i]] != py[by_y[i - 1]]) ++r;
    y_rank[by_y[i]] = r;
  }
  {
    std::vector<double> x_by_y(m);
    for (int64_t i = 0; i < m; ++i) x_by_y[i] = px[by_y[i]];
    std::vector<int64_t> pos(m);
    RadixArgsort(x_by_y.data(), m, pos.data());  // stable: ties in x keep y order
    for (int64_t i = 0; i < m; ++i) lex[i] = by_y[pos[i]];
  }
  int64_t tied_x = 0, tied_xy = 0;
  for (int64_t i = 0; i < m;) {
    int64_t j = i + 1;
    while (j < m && px[lex[j]] == px[lex[i]]) ++j;
    tied_x += (j - i) * (j - i - 1) / 2;
    for (int64_t k = i; k < j;) {  // runs equal in y within the x-run (y is sorted there)
      int64_t l = k + 1;
      while (l < j && py[lex[l]] == py[lex[k]]) ++l;
      tied_xy += (l - k) * (l - k - 1) / 2;
      k = l;
    }
    i = j;
  }
  std::vector<int64_t> seq(m), tmp(m);
  for (int64_t i = 0; i < m; ++i) seq[i] = y_rank[lex[i]];
  const int64_t discordant = CountInversions(seq.data(), tmp.data(), m);
  const double n0 = double(m) * double(m - 1) / 2.0;
  // concordant = n0 - tied_x - tied_y + tied_xy - discordant
  const double con_minus_dis =
      n0 - double(tied_x) - double(tied_y) + double(tied_xy) - 2.0 * double(discordant);
  return con_minus_dis / n0;
}

double CosineSimilarity(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "cosine similarity");
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0, m = x.numel(); i < m; ++i)
    sxy += px[i] * py[i], sxx += px[i] * px[i], syy += py[i] * py[i];
  if (sxx == 0 || syy == 0)
    throw DataError("cosine similarity: one input is the zero vector, so the cosine is undefined");
  return sxy / std::sqrt(sxx * syy);
}

double Compare(Comparison c, const at::Tensor& a, const at::Tensor& b) {
  switch (c) {
    case Comparison::kPearson:
      return Pearson(a, b);
    case Comparison::kSpearman:
      return Spearman(a, b);
    case Comparison::kKendallTauA:
      return KendallTauA(a, b);
    case Comparison::kCosine:
      return CosineSimilarity(a, b);
  }
  throw DataError("unknown comparison");
}

}  // namespace cliphba::rsa
