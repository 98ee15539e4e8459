#include "rsa/compare.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

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

// Average ranks given values and their ascending order.
void AverageRanks(const double* x, const int64_t* order, int64_t m, double* ranks) {
  int64_t i = 0;
  while (i < m) {
    int64_t j = i + 1;
    while (j < m && x[order[j]] == x[order[i]]) ++j;
    const double r = 0.5 * double(i + j + 1);  // mean of positions i+1 .. j
    for (int64_t k = i; k < j; ++k) ranks[order[k]] = r;
    i = j;
  }
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

}  // namespace

void RadixArgsort(const double* x, int64_t m, int64_t* order) {
  std::vector<uint64_t> keys(m), keys_tmp(m);
  std::vector<int64_t> idx_tmp(m);
  for (int64_t i = 0; i < m; ++i) keys[i] = OrderedKey(x[i]), order[i] = i;
  uint64_t* k_src = keys.data();
  uint64_t* k_dst = keys_tmp.data();
  int64_t* i_src = order;
  int64_t* i_dst = idx_tmp.data();
  for (int pass = 0; pass < 8; ++pass) {
    const int shift = pass * 8;
    int64_t count[257] = {0};
    for (int64_t i = 0; i < m; ++i) ++count[((k_src[i] >> shift) & 0xff) + 1];
    if (count[((k_src[0] >> shift) & 0xff) + 1] == m) continue;  // all share this byte
    for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
    for (int64_t i = 0; i < m; ++i) {
      const int64_t pos = count[(k_src[i] >> shift) & 0xff]++;
      k_dst[pos] = k_src[i];
      i_dst[pos] = i_src[i];
    }
    std::swap(k_src, k_dst);
    std::swap(i_src, i_dst);
  }
  if (i_src != order) std::memcpy(order, i_src, sizeof(int64_t) * m);
}

at::Tensor RankAverage(const at::Tensor& x_in) {
  at::Tensor x = x_in.to(at::kDouble).contiguous();
  TORCH_CHECK(x.dim() == 1, "RankAverage expects a 1-D tensor");
  const int64_t m = x.numel();
  const double* px = x.data_ptr<double>();
  for (int64_t i = 0; i < m; ++i)
    if (std::isnan(px[i])) throw DataError("cannot rank NaN (entry " + std::to_string(i) + ")");
  std::vector<int64_t> order(m);
  RadixArgsort(px, m, order.data());
  at::Tensor ranks = at::empty({m}, x.options());
  AverageRanks(px, order.data(), m, ranks.data_ptr<double>());
  return ranks;
}

double Pearson(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "Pearson correlation");
  return PearsonRaw(x.data_ptr<double>(), y.data_ptr<double>(), x.numel(), "Pearson correlation");
}

double Spearman(const at::Tensor& a, const at::Tensor& b) {
  auto [x, y] = CheckedPair(a, b, "Spearman correlation");
  at::Tensor rx = RankAverage(x), ry = RankAverage(y);
  return PearsonRaw(rx.data_ptr<double>(), ry.data_ptr<double>(), rx.numel(),
                    "Spearman correlation");
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
