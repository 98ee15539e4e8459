// Student's t distribution: CDF and quantile, via the regularized incomplete beta function.
//
// Own implementation (modified Lentz continued fraction for I_x(a, b), safeguarded Newton for the
// quantile); relative accuracy ~1e-13 for df in [1, 1e6] and |t| up to where the tail
// underflows, checked against scipy.stats.t (tests/stats/cluster_test.cc). Used to derive the
// cluster-forming threshold from a p-value as MNE does (stats/cluster.h).
#pragma once

namespace cliphba::stats {

// Regularized incomplete beta I_x(a, b) for a, b > 0 and x in [0, 1]; y must equal 1 - x (pass
// it computed without cancellation when x is near 1). Throws DataError on invalid arguments.
double RegularizedIncompleteBeta(double a, double b, double x, double y);

// P(T <= t) for T ~ Student t with df > 0 degrees of freedom. t may be +-inf (-> 0 or 1).
// Throws DataError for df <= 0 or NaN arguments. Equals scipy.stats.t.cdf(t, df).
double StudentTCdf(double t, double df);

// The t with StudentTCdf(t, df) == p, for p in (0, 1) (p = 0 -> -inf, p = 1 -> +inf). For
// p > 0.5 it returns exactly -StudentTQuantile(1 - p) (1 - p is exact there). Throws DataError
// for p outside [0, 1], df <= 0 or NaN. Equals scipy.stats.t.ppf(p, df).
double StudentTQuantile(double p, double df);

}  // namespace cliphba::stats
