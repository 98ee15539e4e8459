// False discovery rate control: the Benjamini-Hochberg (1995) step-up procedure.
//
// Dimension legend: any shape; m = p.numel() hypotheses, taken in the tensor's row-major order.
// With p_(1) <= ... <= p_(m) the sorted p-values (ties in any order), the adjusted p-values are
//   q_(i) = min_{j >= i} min(1, p_(j) m / j),
// mapped back to the input positions: statsmodels' multipletests(p, method='fdr_bh')[1] and
// scipy.stats.false_discovery_control(p, method='bh') (scipy >= 1.11). Tied p-values get equal q.
#pragma once

#include <ATen/ATen.h>

namespace cliphba::stats {

// Adjusted p-values. p: any shape, floating point, every entry in [0, 1]; returns the same shape,
// float64. An empty input gives an empty output.
// Throws DataError for a non-floating-point input, NaN, or a value outside [0, 1] (naming it).
at::Tensor FdrBh(const at::Tensor& p);

// Which hypotheses the step-up procedure rejects at FDR level alpha: all i with
// p_(i) <= p_(k) for the largest k such that p_(k) <= alpha k / m (statsmodels' `reject`);
// equivalently q <= alpha up to rounding. p: as FdrBh; returns the same shape, bool.
// Throws DataError as FdrBh, ConfigError if alpha is not in (0, 1].
at::Tensor FdrReject(const at::Tensor& p, double alpha);

}  // namespace cliphba::stats
