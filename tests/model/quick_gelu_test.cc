// The fused bfloat16 QuickGELU (model/quick_gelu.h) against the formula in float64, and the float32
// path against the reference's ops.
#include "model/quick_gelu.h"

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace cliphba::model {
namespace {

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double Forward(double x) { return x * Sigmoid(1.702 * x); }
double Backward(double x) {
  const double s = Sigmoid(1.702 * x);
  return s * (1.0 + 1.702 * x * (1.0 - s));
}

float ToFloat(uint16_t b) { return c10::detail::f32_from_bits(b); }

// Every bf16 bit pattern (65,536: both zeros, subnormals, the extremes, the infinities, NaNs).
std::vector<uint16_t> Inputs() {
  std::vector<uint16_t> v(0x10000);
  for (uint32_t b = 0; b < 0x10000u; ++b) v[b] = uint16_t(b);
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
  const int64_t n = int64_t(x.size());
  std::vector<uint16_t> ones(x.size(), 0x3f80), y(x.size()), dx(x.size());  // 0x3f80: 1.0
  QuickGeluForwardBf16(x.data(), y.data(), n);
  QuickGeluBackwardBf16(x.data(), ones.data(), dx.data(), n);
  int exact = 0, finite = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = ToFloat(x[i]);
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(ToFloat(y[i])) && std::isnan(ToFloat(dx[i]))) << "bits " << i;
      continue;
    }
    if (std::isinf(v)) {  // as the formula in float: inf * 1 = inf, -inf * 0 = nan; dx nan
      if (v > 0) {
        EXPECT_EQ(ToFloat(y[i]), v);
      } else {
        EXPECT_TRUE(std::isnan(ToFloat(y[i])));
      }
      EXPECT_TRUE(std::isnan(ToFloat(dx[i]))) << "x = " << v;
      continue;
    }
    ++finite;
    ExpectWithinOneUlp(ToFloat(y[i]), Forward(v), v, "forward");
    ExpectWithinOneUlp(ToFloat(dx[i]), Backward(v), v, "backward");
    exact += ToFloat(y[i]) == float(at::BFloat16(float(Forward(v))));
  }
  EXPECT_EQ(finite, 65536 - 2 * 127 - 2);  // 254 NaN patterns, 2 infinities
  // Rounding the exact value to bf16 gives the same bits almost always (float32 arithmetic inside).
  EXPECT_GT(exact, int(0.98 * double(finite)));
  // The largest finite inputs: the gradient is 1 (x > 0) or 0 (x < 0), not inf * 0.
  const uint16_t big[2] = {0x7f7f, 0xff7f};  // +-3.39e38
  uint16_t g[2];
  QuickGeluBackwardBf16(big, ones.data(), g, 2);
  EXPECT_EQ(ToFloat(g[0]), 1.0f);
  EXPECT_EQ(ToFloat(g[1]), 0.0f);
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

  // Non-contiguous input, a broadcast (stride 0) incoming gradient, no grad mode, no double
  // backward.
  const at::Tensor xt = xb.detach().transpose(0, 1).requires_grad_(true);  // (N, L, 4W)
  QuickGelu(xt).sum().backward();
  at::Tensor want_t = at::empty_like(xd);
  const at::Tensor ones = at::ones_like(xd);
  QuickGeluBackwardBf16(bits(xd), bits(ones), bits(want_t), xd.numel());
  EXPECT_TRUE(at::equal(xt.grad(), want_t.transpose(0, 1)));
  EXPECT_TRUE(at::equal(QuickGelu(xt.detach()), want_y.transpose(0, 1)));
  {
    at::NoGradGuard no_grad;
    const at::Tensor y = QuickGelu(xb);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(at::equal(y, want_y));
  }
  const at::Tensor x2 = xb.detach().clone().requires_grad_(true);
  const at::Tensor y2 = QuickGelu(x2).to(at::kFloat).sum();
  EXPECT_THROW(y2.backward({}, /*retain_graph=*/true, /*create_graph=*/true), c10::Error);

  const at::Tensor a = x32.clone().requires_grad_(true), b = x32.clone().requires_grad_(true);
  const at::Tensor ya = QuickGelu(a), yr = b * at::sigmoid(1.702 * b);
  EXPECT_TRUE(at::equal(ya, yr));
  ya.backward(dy.to(at::kFloat));
  yr.backward(dy.to(at::kFloat));
  EXPECT_TRUE(at::equal(a.grad(), b.grad()));
}

}  // namespace
}  // namespace cliphba::model
