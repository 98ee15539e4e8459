#include "model/quick_gelu.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>


namespace cliphba::model {
namespace {

constexpr float kAlpha = 1.702f;
constexpr int64_t kGrain = 16384;  // values per parallel task (~64 KB of bf16 in and out)

// c10's own conversions (round to nearest even; NaN -> 0x7fc0): inline, so the loops vectorise.
inline float Bf16ToFloat(uint16_t b) { return c10::detail::f32_from_bits(b); }
inline uint16_t FloatToBf16(float f) { return c10::detail::round_to_nearest_even(f); }

// exp(x), relative error < 2e-7 on [-87, 88]: 2^n e^r with r = x - n ln 2 (Cody-Waite, two-part
// ln 2), |r| <= ln 2 / 2, e^r by its Taylor polynomial of degree 7. Below -87 it stays at e^-87
// (sigmoid then rounds to 1 anyway); above 88 it is +inf, a little before float32's exp
// (88.72), so sigmoid(z) is 0 from z = -88 on (QuickGELU then returns 0 for x in about
// (-52.1, -51.7) where float32 gives ~1e-37). NaN stays NaN through the callers' products.
// Plain arithmetic, selects and bit moves, so that the loops below vectorise.
inline float Exp(float x) {
  const bool overflow = x > 88.0f;
  x = x > -87.0f ? x : -87.0f;  // NaN -> -87: no NaN reaches the int conversion
  x = x < 88.0f ? x : 88.0f;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return overflow ? __builtin_inff() : p * scale;
}

inline float Sigmoid(float z) { return 1.0f / (1.0f + Exp(-z)); }

__attribute__((target_clones("avx512f", "avx2", "default")))
void ForwardKernel(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = Bf16ToFloat(x[i]);
    y[i] = FloatToBf16(v * Sigmoid(kAlpha * v));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void BackwardKernel(const uint16_t* __restrict x, const uint16_t* __restrict dy,
                    uint16_t* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = Bf16ToFloat(x[i]);
    const float s = Sigmoid(kAlpha * v);
    // s + a x s (1 - s), ordered so that every product stays finite for finite x (|y| <= |x|):
    // a * x alone overflows for |x| > 2e38 and would meet a zero factor.
    const float y = v * s;
    dx[i] = FloatToBf16(Bf16ToFloat(dy[i]) * (s + kAlpha * (y * (1.0f - s))));
  }
}

bool Fused(const at::Tensor& x) {
  return x.scalar_type() == at::kBFloat16 && x.device().is_cpu() && x.layout() == at::kStrided;
}

const uint16_t* Bits(const at::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>());
}
uint16_t* MutableBits(at::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

struct QuickGeluBf16Function : public torch::autograd::Function<QuickGeluBf16Function> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input) {
    const at::Tensor x = input.contiguous();
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    QuickGeluForwardBf16(Bits(x), MutableBits(y), x.numel());
    ctx->save_for_backward({x});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "QuickGelu (bfloat16): no double backward (create_graph); use float32");
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor dy = grads[0].to(at::kBFloat16).contiguous();
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    QuickGeluBackwardBf16(Bits(x), Bits(dy), MutableBits(dx), x.numel());
    return {dx};
  }
};

}  // namespace

void QuickGeluForwardBf16(const uint16_t* x, uint16_t* y, int64_t n) {
  at::parallel_for(0, n, kGrain,
                   [&](int64_t b, int64_t e) { ForwardKernel(x + b, y + b, e - b); });
}

void QuickGeluBackwardBf16(const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n) {
  at::parallel_for(0, n, kGrain,
                   [&](int64_t b, int64_t e) { BackwardKernel(x + b, dy + b, dx + b, e - b); });
}

at::Tensor QuickGelu(const at::Tensor& x) {
  if (!Fused(x)) return x * at::sigmoid(1.702 * x);
  return QuickGeluBf16Function::apply(x);
}

}  // namespace cliphba::model
