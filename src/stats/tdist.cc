#include "stats/tdist.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "core/error.h"

namespace cliphba::stats {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Continued fraction of I_x(a, b) (without the prefactor x^a y^b / (a B(a, b))), evaluated by the
// modified Lentz method. Converges fast for x < (a + 1) / (a + b + 2).
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 4e-16;  // two ulps of 1
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double f = d;
  for (int m = 1; m <= 100000; ++m) {
    // Even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    const double a2m = a + 2.0 * m;
    double num = m * (b - m) * x / ((a2m - 1.0) * a2m);
    d = 1.0 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    f *= d * c;
    // Odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = -(a + m) * (a + b + m) * x / (a2m * (a2m + 1.0));
    d = 1.0 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1.0) < kEps) return f;
  }
  throw DataError("RegularizedIncompleteBeta: continued fraction did not converge for a=" +
                  std::to_string(a) + ", b=" + std::to_string(b) + ", x=" + std::to_string(x));
}

// log(x^a y^b / B(a, b)).
double LogPrefactor(double a, double b, double x, double y) {
  return std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
}

double StudentTPdf(double t, double df) {
  const double log_norm =
      std::lgamma(0.5 * (df + 1.0)) - std::lgamma(0.5 * df) - 0.5 * std::log(df * kPi);
  return std::exp(log_norm - 0.5 * (df + 1.0) * std::log1p(t * t / df));
}

void CheckDf(double df, const char* what) {
  if (!(df > 0.0) || std::isinf(df))
    throw DataError(std::string(what) + ": degrees of freedom must be finite and > 0, got " +
                    std::to_string(df));
}

// P(T <= t) for t <= 0, accurate relative to its (possibly tiny) value.
double LowerTail(double t, double df) {
  if (std::isinf(t)) return 0.0;
  const double t2 = t * t;
  // x = df / (df + t^2), y = 1 - x = t^2 / (df + t^2), both without cancellation.
  const double x = df / (df + t2), y = t2 / (df + t2);
  return 0.5 * RegularizedIncompleteBeta(0.5 * df, 0.5, x, y);
}

}  // namespace

double RegularizedIncompleteBeta(double a, double b, double x, double y) {
  if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0 && x <= 1.0) || !(y >= 0.0 && y <= 1.0) ||
      std::fabs(x + y - 1.0) > 1e-12) {
    throw DataError("RegularizedIncompleteBeta: need a > 0, b > 0, 0 <= x <= 1, y = 1 - x; got a=" +
                    std::to_string(a) + ", b=" + std::to_string(b) + ", x=" + std::to_string(x) +
                    ", y=" + std::to_string(y));
  }
  if (x == 0.0) return 0.0;
  if (y == 0.0) return 1.0;
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return std::exp(LogPrefactor(a, b, x, y)) * BetaContinuedFraction(a, b, x) / a;
  }
  // Symmetry I_x(a, b) = 1 - I_y(b, a).
  return 1.0 - std::exp(LogPrefactor(b, a, y, x)) * BetaContinuedFraction(b, a, y) / b;
}

double StudentTCdf(double t, double df) {
  CheckDf(df, "StudentTCdf");
  if (std::isnan(t)) throw DataError("StudentTCdf: t is NaN");
  if (t <= 0.0) return LowerTail(t, df);
  return 1.0 - LowerTail(-t, df);
}

double StudentTQuantile(double p, double df) {
  CheckDf(df, "StudentTQuantile");
  if (!(p >= 0.0 && p <= 1.0))
    throw DataError("StudentTQuantile: p must lie in [0, 1], got " + std::to_string(p));
  if (p == 0.5) return 0.0;
  // Solve in the lower tail: q = min(p, 1 - p) is exact for doubles (Sterbenz), and the answer is
  // antisymmetric.
  const bool upper = p > 0.5;
  const double q = upper ? 1.0 - p : p;
  if (q == 0.0)
    return upper ? std::numeric_limits<double>::infinity()
                 : -std::numeric_limits<double>::infinity();
  // Bracket [lo, hi] with LowerTail(lo) <= q <= LowerTail(hi), hi <= 0.
  double hi = 0.0, lo = -1.0;
  while (LowerTail(lo, df) > q) {
    hi = lo;
    lo *= 2.0;
    if (std::isinf(lo)) return upper ? -lo : lo;
  }
  // Safeguarded Newton: start from the bracket midpoint, bisect whenever Newton leaves it.
  double t = 0.5 * (lo + hi);
  for (int iter = 0; iter < 400; ++iter) {
    const double f = LowerTail(t, df) - q;
    if (f == 0.0) break;
    if (f > 0.0) {
      hi = t;
    } else {
      lo = t;
    }
    double next = t - f / StudentTPdf(t, df);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const double step = std::fabs(next - t);
    t = next;
    if (step <= 1e-15 * std::fabs(t) || hi - lo <= 1e-15 * std::fabs(t)) break;
  }
  return upper ? -t : t;
}

}  // namespace cliphba::stats
