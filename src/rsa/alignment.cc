#include "rsa/alignment.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/rng.h"
#include "rsa/compare.h"

namespace cliphba::rsa {
namespace {

std::string ShapeOf(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// float64, contiguous, finite; DataError naming `what` otherwise.
at::Tensor CheckedFinite(const at::Tensor& x, const std::string& what) {
  if (!x.is_floating_point())
    throw DataError(what + ": expected a floating-point tensor, got " +
                    std::string(c10::toString(x.scalar_type())));
  at::Tensor d = x.to(at::kDouble).contiguous();
  if (!at::isfinite(d).all().item<bool>()) {
    at::Tensor bad = at::logical_not(at::isfinite(d)).nonzero()[0];
    std::ostringstream msg;
    msg << what << ": contains NaN or Inf (first at index " << bad.sizes() << " = (";
    for (int64_t k = 0; k < bad.numel(); ++k) msg << (k ? ", " : "") << bad[k].item<int64_t>();
    msg << "))";
    throw DataError(msg.str());
  }
  return d;
}

// Index of the first row of x (R, m) whose entries are all equal, or -1.
int64_t FirstConstantRow(const at::Tensor& x) {
  at::Tensor c = (std::get<0>(x.max(1)) == std::get<0>(x.min(1))).nonzero();
  return c.numel() ? c[0][0].item<int64_t>() : -1;
}

// Average ranks of every row of x (R, m) float64 -> (R, m) float64 (scipy rankdata 'average').
at::Tensor RankRows(const at::Tensor& x) {
  const int64_t r = x.size(0), m = x.size(1);
  at::Tensor out = at::empty({r, m}, x.options());
  for (int64_t i = 0; i < r; ++i) out[i].copy_(RankAverage(x[i]));
  return out;
}

// Rows of x (..., m) centred and scaled to unit norm (rows not constant), so that the Pearson
// correlation of two rows is their dot product.
at::Tensor Standardize(const at::Tensor& x) {
  at::Tensor c = x - x.mean(-1, /*keepdim=*/true);
  return c / c.norm(2, /*dim=*/-1, /*keepdim=*/true);
}

// Pearson correlation of corresponding rows of standardized za, zb (broadcast over leading dims).
at::Tensor Dot(const at::Tensor& za, const at::Tensor& zb) {
  return (za * zb).sum(-1).clamp_(-1.0, 1.0);
}

void CheckStep(double step_ms, const char* what) {
  if (!(step_ms > 0) || !std::isfinite(step_ms)) {
    std::ostringstream msg;
    msg << what << ": time step_ms = " << step_ms << " is invalid; expected a finite value > 0";
    throw DataError(msg.str());
  }
}

// First index whose time start_ms + i * step_ms is >= 0 (may be T: none).
int64_t FirstNonNegative(double start_ms, double step_ms, int64_t t) {
  int64_t i = 0;
  while (i < t && start_ms + double(i) * step_ms < 0) ++i;
  return i;
}

at::Tensor CheckedCurve(const at::Tensor& curve, double step_ms, const char* what) {
  if (curve.dim() != 1 || curve.numel() < 1)
    throw DataError(std::string(what) + ": the curve must be 1-D and non-empty; got shape " +
                    ShapeOf(curve));
  CheckStep(step_ms, what);
  return curve.to(at::kDouble).contiguous();
}

void CheckOwn(const at::Tensor& matrix, const std::vector<int64_t>& own) {
  if (matrix.dim() != 2 || matrix.size(0) < 1 || matrix.size(1) < 2 ||
      matrix.size(0) > matrix.size(1))
    throw DataError(
        "own-vs-other test: expected a (models M, participants P) matrix with 1 <= M <= P and "
        "P >= 2; got shape " +
        ShapeOf(matrix));
  const int64_t m = matrix.size(0), p = matrix.size(1);
  if (int64_t(own.size()) != m)
    throw DataError("own-vs-other test: `own` has " + std::to_string(own.size()) +
                    " entries; expected one per model (" + std::to_string(m) + ")");
  std::vector<bool> seen(static_cast<size_t>(p), false);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t j = own[size_t(i)];
    if (j < 0 || j >= p)
      throw DataError("own-vs-other test: own[" + std::to_string(i) + "] = " + std::to_string(j) +
                      " is not a participant index in [0, " + std::to_string(p) + ")");
    if (seen[size_t(j)])
      throw DataError("own-vs-other test: participant " + std::to_string(j) +
                      " is the own participant of more than one model");
    seen[size_t(j)] = true;
  }
}

// The statistic for labels relabelled by perm (P entries): own entry of model i is
// matrix[i, perm[own[i]]]. Sums in a fixed order so equal permutations give equal bits.
struct StatKernel {
  const double* x;
  int64_t m, p;
  const std::vector<int64_t>& own;
  double total;
  double operator()(const int64_t* perm) const {
    double own_sum = 0;
    for (int64_t i = 0; i < m; ++i) own_sum += x[i * p + perm[own[size_t(i)]]];
    return own_sum / double(m) - (total - own_sum) / double(m * (p - 1));
  }
};

StatKernel MakeKernel(const at::Tensor& d, const std::vector<int64_t>& own) {
  const double* x = d.data_ptr<double>();
  double total = 0;
  for (int64_t k = 0; k < d.numel(); ++k) total += x[k];
  return StatKernel{x, d.size(0), d.size(1), own, total};
}

}  // namespace

TimeResolvedAlignment AlignTimeResolved(const at::Tensor& model_in, const at::Tensor& meg_in) {
  if (model_in.dim() != 2 || meg_in.dim() != 3 || model_in.size(0) != meg_in.size(1) ||
      model_in.size(1) != meg_in.size(2) || model_in.size(1) < 2 || model_in.size(0) < 1 ||
      meg_in.size(0) < 1)
    throw DataError(
        "time-resolved alignment: expected model (T, m) and MEG (P, T, m) condensed RDMs with "
        "equal T and m >= 2; got model " +
        ShapeOf(model_in) + " and MEG " + ShapeOf(meg_in));
  const at::Tensor model = CheckedFinite(model_in, "time-resolved alignment: model RDMs");
  const at::Tensor meg = CheckedFinite(meg_in, "time-resolved alignment: MEG RDMs");
  const int64_t P = meg.size(0), T = meg.size(1), m = meg.size(2);
  if (int64_t t = FirstConstantRow(model); t >= 0)
    throw DataError("time-resolved alignment: the model RDM at timepoint " + std::to_string(t) +
                    " is constant (correlation undefined)");
  const at::Tensor flat = meg.reshape({P * T, m});
  if (int64_t r = FirstConstantRow(flat); r >= 0)
    throw DataError("time-resolved alignment: the MEG RDM of participant " + std::to_string(r / T) +
                    " at timepoint " + std::to_string(r % T) +
                    " is constant (correlation undefined)");
  // The model rows broadcast over participants (no P-fold copy of the model).
  TimeResolvedAlignment a;
  a.pearson = Dot(Standardize(meg), Standardize(model).unsqueeze(0));
  a.spearman = Dot(Standardize(RankRows(flat).reshape({P, T, m})),
                   Standardize(RankRows(model)).unsqueeze(0));
  return a;
}

at::Tensor SpearmanRows(const at::Tensor& x_in, const std::string& what) {
  if (x_in.dim() != 2 || x_in.size(0) < 1 || x_in.size(1) < 2)
    throw DataError(what + ": expected condensed RDMs (T, m >= 2), got " + ShapeOf(x_in));
  const at::Tensor x = CheckedFinite(x_in, what.c_str());
  if (int64_t t = FirstConstantRow(x); t >= 0)
    throw DataError(what + ": the RDM at timepoint " + std::to_string(t) +
                    " is constant (correlation undefined)");
  return Standardize(RankRows(x));
}

at::Tensor RowDots(const at::Tensor& za, const at::Tensor& zb) {
  TORCH_CHECK(za.dim() == 2 && zb.dim() == 2 && za.size(1) == zb.size(1), "RowDots: shapes ",
              za.sizes(), " and ", zb.sizes());
  const int64_t t2 = zb.size(0), m = zb.size(1);
  // Blocks of zb's rows, so that the element-wise product stays under ~16M values (THINGS: m = 1.7M
  // pairs); each entry is still one row's product summed on its own.
  const int64_t block = std::max<int64_t>(1, (int64_t(1) << 24) / std::max<int64_t>(m, 1));
  at::Tensor out = at::empty({za.size(0), t2}, at::kDouble);
  for (int64_t i = 0; i < za.size(0); ++i)
    for (int64_t j0 = 0; j0 < t2; j0 += block) {
      const int64_t j1 = std::min(t2, j0 + block);
      out[i].slice(0, j0, j1).copy_(Dot(za[i].unsqueeze(0), zb.slice(0, j0, j1)));
    }
  return out;
}

at::Tensor TimeGeneralization(const at::Tensor& a, const at::Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1))
    throw DataError("time generalisation: expected condensed RDMs (T1, m) and (T2, m) with equal "
                    "m; got " + ShapeOf(a) + " and " + ShapeOf(b));
  return RowDots(SpearmanRows(a, "time generalisation: first RDMs"),
                 SpearmanRows(b, "time generalisation: second RDMs"));
}

TimeResolvedCeiling CeilingTimeResolved(const at::Tensor& meg_in) {
  if (meg_in.dim() != 3 || meg_in.size(0) < 2 || meg_in.size(1) < 1 || meg_in.size(2) < 2)
    throw DataError(
        "time-resolved noise ceiling: expected MEG RDMs (participants P >= 2, T, pairs m >= 2); "
        "got shape " +
        ShapeOf(meg_in));
  const at::Tensor meg = CheckedFinite(meg_in, "time-resolved noise ceiling: MEG RDMs");
  const int64_t P = meg.size(0), T = meg.size(1), m = meg.size(2);
  const at::Tensor flat = meg.reshape({P * T, m});
  if (int64_t r = FirstConstantRow(flat); r >= 0)
    throw DataError("time-resolved noise ceiling: the MEG RDM of participant " +
                    std::to_string(r / T) + " at timepoint " + std::to_string(r % T) +
                    " is constant (correlation undefined)");
  // Means summed participant by participant in index order, then divided (numpy's mean over
  // axis 0), not as (sum - own) / (P - 1): with tied RDM values a last-bit difference would break
  // ties differently and change the ranks.
  at::Tensor sum_all = meg[0].clone();
  for (int64_t j = 1; j < P; ++j) sum_all += meg[j];
  const at::Tensor mean_all = sum_all / double(P);  // (T, m)
  at::Tensor others = at::empty_like(meg);          // (P, T, m)
  for (int64_t p = 0; p < P; ++p) {
    at::Tensor acc;
    for (int64_t j = 0; j < P; ++j) {
      if (j == p) continue;
      if (acc.defined())
        acc += meg[j];
      else
        acc = meg[j].clone();
    }
    others[p].copy_(acc / double(P - 1));
  }
  const at::Tensor others_flat = others.reshape({P * T, m});
  if (int64_t r = FirstConstantRow(others_flat); r >= 0)
    throw DataError("time-resolved noise ceiling: the mean RDM of the participants other than " +
                    std::to_string(r / T) + " at timepoint " + std::to_string(r % T) +
                    " is constant (correlation undefined)");
  if (int64_t t = FirstConstantRow(mean_all); t >= 0)
    throw DataError("time-resolved noise ceiling: the mean RDM of all participants at timepoint " +
                    std::to_string(t) + " is constant (correlation undefined)");
  const at::Tensor z = Standardize(RankRows(flat).reshape({P, T, m}));
  TimeResolvedCeiling c;
  c.lower = Dot(z, Standardize(RankRows(others_flat).reshape({P, T, m})));
  c.upper = Dot(z, Standardize(RankRows(mean_all)).unsqueeze(0));
  return c;
}

double AreaFromZero(const at::Tensor& curve_in, double start_ms, double step_ms) {
  const at::Tensor c = CheckedCurve(curve_in, step_ms, "area from 0 ms");
  const int64_t T = c.numel();
  const double* pc = c.data_ptr<double>();
  const int64_t first = FirstNonNegative(start_ms, step_ms, T);
  for (int64_t i = first; i < T; ++i)
    if (!std::isfinite(pc[i]))
      throw DataError("area from 0 ms: the curve is NaN/Inf at timepoint " + std::to_string(i));
  double area = 0;
  for (int64_t i = first + 1; i < T; ++i) {
    const double t0 = (start_ms + double(i - 1) * step_ms) / 1000.0;
    const double t1 = (start_ms + double(i) * step_ms) / 1000.0;
    area += (t1 - t0) * (pc[i] + pc[i - 1]) / 2.0;
  }
  return area;
}

double PeakLatencyMs(const at::Tensor& curve_in, double start_ms, double step_ms) {
  const at::Tensor c = CheckedCurve(curve_in, step_ms, "peak latency");
  const int64_t T = c.numel();
  const double* pc = c.data_ptr<double>();
  const int64_t first = FirstNonNegative(start_ms, step_ms, T);
  if (first >= T) {
    std::ostringstream msg;
    msg << "peak latency: no timepoint at or after 0 ms (start_ms " << start_ms << ", step_ms "
        << step_ms << ", " << T << " timepoints)";
    throw DataError(msg.str());
  }
  int64_t best = first;
  for (int64_t i = first; i < T; ++i) {
    if (!std::isfinite(pc[i]))
      throw DataError("peak latency: the curve is NaN/Inf at timepoint " + std::to_string(i));
    if (pc[i] > pc[best]) best = i;
  }
  return start_ms + double(best) * step_ms;
}

at::Tensor MeanFromZero(const at::Tensor& curves_in, double start_ms, double step_ms) {
  if (curves_in.dim() != 2 || curves_in.size(1) < 1)
    throw DataError("mean from 0 ms: expected curves (rows, T >= 1); got shape " +
                    ShapeOf(curves_in));
  CheckStep(step_ms, "mean from 0 ms");
  const int64_t T = curves_in.size(1);
  const int64_t first = FirstNonNegative(start_ms, step_ms, T);
  if (first >= T) {
    std::ostringstream msg;
    msg << "mean from 0 ms: no timepoint at or after 0 ms (start_ms " << start_ms << ", step_ms "
        << step_ms << ", " << T << " timepoints)";
    throw DataError(msg.str());
  }
  const at::Tensor used = CheckedFinite(curves_in.narrow(1, first, T - first), "mean from 0 ms");
  return used.mean(1);
}

at::Tensor OwnVsOtherMatrix(const std::vector<at::Tensor>& spearman, double start_ms,
                            double step_ms) {
  if (spearman.empty()) throw DataError("own-vs-other matrix: no models given");
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < spearman.size(); ++i) {
    if (spearman[i].dim() != 2 || !spearman[i].sizes().equals(spearman[0].sizes()))
      throw DataError("own-vs-other matrix: model " + std::to_string(i) +
                      "'s Spearman curves have shape " + ShapeOf(spearman[i]) +
                      "; expected (P, T) like model 0's " + ShapeOf(spearman[0]));
    rows.push_back(MeanFromZero(spearman[i], start_ms, step_ms));
  }
  return at::stack(rows);
}

OwnVsOther OwnVsOtherTest(const at::Tensor& matrix, const std::vector<int64_t>& own, int64_t n,
                          uint64_t seed) {
  if (n < 1)
    throw ConfigError("own-vs-other test: the number of permutations n = " + std::to_string(n) +
                      " is invalid; expected n >= 1");
  CheckOwn(matrix, own);
  const at::Tensor d = CheckedFinite(matrix, "own-vs-other test: matrix");
  const int64_t P = d.size(1);
  const StatKernel stat = MakeKernel(d, own);
  std::vector<int64_t> perm(static_cast<size_t>(P));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  OwnVsOther r{};
  r.statistic = stat(perm.data());
  // P! <= n? (P! grows fast: stop as soon as it exceeds n.)
  int64_t fact = 1;
  bool exact = true;
  for (int64_t k = 2; k <= P && exact; ++k) {
    if (fact > n / k)
      exact = false;
    else
      fact *= k;
  }
  int64_t ge = 0;
  if (exact) {
    do {
      if (stat(perm.data()) >= r.statistic) ++ge;
    } while (std::next_permutation(perm.begin(), perm.end()));
    r.n_permutations = fact;
    r.exact = true;
    r.p_value = double(ge) / double(fact);
    return r;
  }
  for (int64_t k = 0; k < n; ++k) {
    RandomPermutation(seed, kOwnVsOtherStream | uint64_t(k), P, perm.data());
    if (stat(perm.data()) >= r.statistic) ++ge;
  }
  r.n_permutations = n;
  r.exact = false;
  r.p_value = double(1 + ge) / double(1 + n);
  return r;
}

OwnVsOther OwnVsOtherTestWithPermutations(const at::Tensor& matrix, const std::vector<int64_t>& own,
                                          const at::Tensor& perms_in) {
  CheckOwn(matrix, own);
  const at::Tensor d = CheckedFinite(matrix, "own-vs-other test: matrix");
  const int64_t P = d.size(1);
  if (perms_in.dim() != 2 || perms_in.size(1) != P || perms_in.size(0) < 1 ||
      perms_in.scalar_type() != at::kLong)
    throw DataError("own-vs-other test: expected permutations (N >= 1, P = " + std::to_string(P) +
                    ") int64; got shape " + ShapeOf(perms_in) + " " +
                    std::string(c10::toString(perms_in.scalar_type())));
  const at::Tensor perms = perms_in.contiguous();
  const int64_t N = perms.size(0);
  const int64_t* pp = perms.data_ptr<int64_t>();
  const StatKernel stat = MakeKernel(d, own);
  std::vector<int64_t> id(static_cast<size_t>(P));
  std::iota(id.begin(), id.end(), int64_t(0));
  OwnVsOther r{};
  r.statistic = stat(id.data());
  int64_t ge = 0;
  std::vector<int64_t> sorted(static_cast<size_t>(P));
  for (int64_t k = 0; k < N; ++k) {
    const int64_t* row = pp + k * P;
    std::copy(row, row + P, sorted.begin());
    std::sort(sorted.begin(), sorted.end());
    if (sorted != id)
      throw DataError("own-vs-other test: permutation row " + std::to_string(k) +
                      " is not a permutation of 0.." + std::to_string(P - 1));
    if (stat(row) >= r.statistic) ++ge;
  }
  r.n_permutations = N;
  r.exact = false;
  r.p_value = double(1 + ge) / double(1 + N);
  return r;
}

}  // namespace cliphba::rsa
