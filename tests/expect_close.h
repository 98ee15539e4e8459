// One elementwise tensor comparison for the parity tests against reference fixtures.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace cliphba::testing {

// |actual - expected| <= atol + rtol |expected| elementwise, in float64; prints max|diff| and the
// reference's scale. A missing tensor (e.g. a gradient that never arrived) or another shape fails.
inline void ExpectClose(const std::string& what, const at::Tensor& actual,
                        const at::Tensor& expected, double atol, double rtol) {
  ASSERT_TRUE(actual.defined()) << what << ": no value (no gradient reached it?)";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const at::Tensor a = actual.detach().to(at::kDouble);
  const at::Tensor e = expected.to(at::kDouble);
  const double max_diff = (a - e).abs().max().item<double>();
  std::printf("  %-28s max|diff| = %.3e  (max|ref| = %.3e)\n", what.c_str(), max_diff,
              e.abs().max().item<double>());
  EXPECT_TRUE(at::allclose(a, e, rtol, atol)) << what << ": max|diff| = " << max_diff;
}

}  // namespace cliphba::testing
