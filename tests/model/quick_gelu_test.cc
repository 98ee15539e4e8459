// The fused bfloat16 QuickGELU (model/quick_gelu.h) against the formula in float64, and the float32
// path against the reference's ops.
#include "model/quick_gelu.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace cliphba::model {
namespace {

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double Forward(double x) { return x * Sigmoid(1.702 * x); }
double Backward(double x) {
  const double s = Sigmoid(1.702 * x);
  return s * (1.0 + 1.702 * x * (1.0 - s));
}

float ToFloat(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Every finite bf16 value whose magnitude is in [2^-20, 2^8) (both signs; ~4000 values) plus 0,
// the extremes and the infinities.
std::vector<uint16_t> Inputs() {
  std::vector<uint16_t> v;
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = ToFloat(uint16_t(b));
    const float a = std::fabs(f);
    if ((a >= 0x1p-20f && a < 256.0f) || a == 0.0f || std::isinf(f) ||
        (std::isfinite(f) && a > 1e30f && (b & 0xff) == 0))
      v.push_back(uint16_t(b));
  }
  return v;
}

// |got - want| within one bf16 unit in the last place of want (the kernel rounds a float32
// result once; want is exact), or both tiny.
void ExpectWithinOneUlp(float got, double want, float x, const char* what) {
  if (std::fabs(want) < 1e-30) {
    EXPECT_LT(std::fabs(got), 1e-30f) << what << " at x = " << x;
    return;
  }
  const double ulp = std::ldexp(1.0, std::ilogb(want) - 7);  // bf16: 8 significant bits
  EXPECT_LE(std::fabs(got - want), ulp) << what << " at x = " << x << ": " << got << " vs " << want;
}

TEST(QuickGeluTest, FusedKernelsMatchTheFormulaWithinOneBf16Ulp) {
  const std::vector<uint16_t> x = Inputs();
  ASSERT_GT(x.size(), 4000u);
  const int64_t n = int64_t(x.size());
  std::vector<uint16_t> ones(x.size(), 0x3f80), y(x.size()), dx(x.size());  // 0x3f80: 1.0
  QuickGeluForwardBf16(x.data(), y.data(), n);
  QuickGeluBackwardBf16(x.data(), ones.data(), dx.data(), n);
  int exact = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = ToFloat(x[i]);
    if (std::isinf(v)) {  // as the formula in float: inf * 1 = inf, -inf * 0 = nan
      if (v > 0) {
        EXPECT_EQ(ToFloat(y[i]), v);
      } else {
        EXPECT_TRUE(std::isnan(ToFloat(y[i])));
      }
      continue;
    }
    ExpectWithinOneUlp(ToFloat(y[i]), Forward(v), v, "forward");
    ExpectWithinOneUlp(ToFloat(dx[i]), Backward(v), v, "backward");
    exact += ToFloat(y[i]) == float(at::BFloat16(float(Forward(v))));
  }
  // Rounding the exact value to bf16 gives the same bits almost always (float32 arithmetic inside).
  EXPECT_GT(exact, int(0.98 * double(x.size())));
  // NaN propagates.
  const uint16_t nan = 0x7fc0;
  uint16_t out = 0;
  QuickGeluForwardBf16(&nan, &out, 1);
  EXPECT_TRUE(std::isnan(ToFloat(out)));
}

// Through autograd: a bf16 tensor takes the fused path (the kernels' bits, forward and backward,
// also across parallel chunks); float32 is the reference's ops, bit for bit.
TEST(QuickGeluTest, AutogradUsesTheKernelsForBf16AndTheReferenceForFloat32) {
  at::manual_seed(3);
  const at::Tensor x32 = at::randn({50, 16, 3072}) * 3;  // (L, N, 4W) of ViT-B/32, batch 16
  const at::Tensor dy = at::randn({50, 16, 3072}).to(at::kBFloat16);
  const at::Tensor xb = x32.to(at::kBFloat16).requires_grad_(true);
  const at::Tensor yb = QuickGelu(xb);
  yb.backward(dy);
  at::Tensor want_y = at::empty_like(yb), want_dx = at::empty_like(yb);
  const auto bits = [](const at::Tensor& t) {
    return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
  };
  const at::Tensor xd = xb.detach().contiguous();
  QuickGeluForwardBf16(bits(xd), bits(want_y), xd.numel());
  QuickGeluBackwardBf16(bits(xd), bits(dy), bits(want_dx), xd.numel());
  EXPECT_EQ(yb.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(yb.detach(), want_y));
  EXPECT_TRUE(at::equal(xb.grad(), want_dx));
  // And near the float32 autograd of the formula (bf16 rounding of the result and of dy).
  const at::Tensor xf = xb.detach().to(at::kFloat).requires_grad_(true);
  const at::Tensor yf = xf * at::sigmoid(1.702 * xf);
  yf.backward(dy.to(at::kFloat));
  EXPECT_TRUE(at::allclose(yb.detach().to(at::kFloat), yf.detach(), 1e-2, 1e-3));
  EXPECT_TRUE(at::allclose(xb.grad().to(at::kFloat), xf.grad(), 1e-2, 1e-3));

  const at::Tensor a = x32.clone().requires_grad_(true), b = x32.clone().requires_grad_(true);
  const at::Tensor ya = QuickGelu(a), yr = b * at::sigmoid(1.702 * b);
  EXPECT_TRUE(at::equal(ya, yr));
  ya.backward(dy.to(at::kFloat));
  yr.backward(dy.to(at::kFloat));
  EXPECT_TRUE(at::equal(a.grad(), b.grad()));
}

}  // namespace
}  // namespace cliphba::model
