#include "stats/fdr.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace cliphba::stats {

namespace {

// Validated contiguous float64 copy (or view) of p, flattened.
at::Tensor CheckedP(const at::Tensor& p, const char* what) {
  if (!at::isFloatingType(p.scalar_type()))
    throw DataError(std::string(what) + ": p-values must be floating point");
  at::Tensor x = p.to(at::kDouble).contiguous().reshape({-1});
  const double* px = x.data_ptr<double>();
  for (int64_t i = 0, m = x.numel(); i < m; ++i) {
    if (!(px[i] >= 0.0 && px[i] <= 1.0)) {  // also catches NaN
      std::ostringstream msg;
      msg << what << ": p-value at flat index " << i << " is " << px[i]
          << "; every p-value must lie in [0, 1]";
      throw DataError(msg.str());
    }
  }
  return x;
}

// Ascending order of the m p-values (stable, so ties keep input order; the result does not
// depend on it).
std::vector<int64_t> SortedOrder(const double* p, int64_t m) {
  std::vector<int64_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [p](int64_t a, int64_t b) { return p[a] < p[b]; });
  return order;
}

}  // namespace

at::Tensor FdrBh(const at::Tensor& p) {
  at::Tensor x = CheckedP(p, "FDR (Benjamini-Hochberg)");
  const int64_t m = x.numel();
  at::Tensor q = at::empty({m}, x.options());
  if (m == 0) return q.reshape(p.sizes());
  const double* px = x.data_ptr<double>();
  double* pq = q.data_ptr<double>();
  const std::vector<int64_t> order = SortedOrder(px, m);
  double running = 1.0;  // min over j >= i, capped at 1
  for (int64_t i = m - 1; i >= 0; --i) {
    const int64_t k = order[i];
    running = std::min(running, px[k] * double(m) / double(i + 1));
    pq[k] = running;
  }
  return q.reshape(p.sizes());
}

at::Tensor FdrReject(const at::Tensor& p, double alpha) {
  if (!(alpha > 0.0 && alpha <= 1.0)) {
    std::ostringstream msg;
    msg << "FDR level alpha = " << alpha << " is invalid; expected 0 < alpha <= 1";
    throw ConfigError(msg.str());
  }
  at::Tensor x = CheckedP(p, "FDR (Benjamini-Hochberg)");
  const int64_t m = x.numel();
  at::Tensor reject = at::zeros({m}, x.options().dtype(at::kBool));
  if (m == 0) return reject.reshape(p.sizes());
  const double* px = x.data_ptr<double>();
  bool* pr = reject.data_ptr<bool>();
  const std::vector<int64_t> order = SortedOrder(px, m);
  // statsmodels: p_sorted <= alpha * (j / m), then everything up to the largest such j.
  int64_t last = -1;
  for (int64_t i = 0; i < m; ++i)
    if (px[order[i]] <= double(i + 1) / double(m) * alpha) last = i;
  for (int64_t i = 0; i <= last; ++i) pr[order[i]] = true;
  return reject.reshape(p.sizes());
}

}  // namespace cliphba::stats
