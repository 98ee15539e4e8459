// Mixed precision for the model's GEMMs (issue 18): float32 | bfloat16.
//
// bfloat16 is autocast-style mixed precision through ATen's autocast (LibTorch 1.13: the
// AutocastCPU / AutocastCUDA dispatch keys): inside an AutocastScope, matmul, linear, conv,
// bmm and baddbmm run in bfloat16 (autocast caches the casts of weights that require grad for the
// scope; the blocks keep frozen weights' casts in FrozenWeightCast), while the master
// weights, their gradients, the optimizer state, LayerNorm, softmax, the loss and every statistic
// stay float32 (ATen's fp32 autocast list; the model runs LayerNorm and softmax on float32 input and
// its output projections - features, per-block CLS projections, text features - and the HBA head
// under NoAutocastScope, so what leaves the towers is float32).
// Statistics (Pearson RDMs, Mantel/cluster kernels) never run under a scope.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace cliphba::model {

enum class Precision { kFloat32, kBFloat16 };

// "float32" | "bfloat16"; `key` names the option in the error. Throws ConfigError.
Precision ParsePrecision(const std::string& name, const std::string& key);
const char* PrecisionName(Precision p);

// RAII: autocast to bfloat16 on `device` (CPU or CUDA) for the scope's lifetime when p is
// kBFloat16; a no-op for kFloat32. On exit the previous state is restored and the cast-weight
// cache cleared (the weights change at every optimizer step). Not copyable; not nestable with a
// different precision (an inner scope restores the outer state on exit).
class AutocastScope {
 public:
  AutocastScope(Precision p, at::DeviceType device = at::kCPU);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  at::DeviceType device_ = at::kCPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

// RAII: no autocast (CPU or CUDA) inside, whatever the enclosing scope: for the small products
// that must stay float32 (the HBA head, the MEG head's mixing and RDMs).
class NoAutocastScope {
 public:
  NoAutocastScope();
  ~NoAutocastScope();
  NoAutocastScope(const NoAutocastScope&) = delete;
  NoAutocastScope& operator=(const NoAutocastScope&) = delete;

 private:
  bool prev_cpu_ = false, prev_gpu_ = false;
};

// The bfloat16 copy of one frozen float32 weight, made once and reused while the weight is
// unchanged. ATen's autocast caches its casts only for weights that require grad, so a frozen
// weight (every base weight under DoRA, every weight in predict and encode) was cast again at
// every GEMM (casting a ViT-B/32 image tower's 85 M block weights takes ~70 ms on 2 cores).
// Use inside an AutocastScope: at::linear(x, cast(w), b). Memory: the copy lives as long as this
// object (half the weight's size: ~170 MB for a ViT-B/32 image tower, ~75 MB for its text
// tower), also in float32 work after a bf16 scope. One object per weight; not thread-safe (a
// model's forward runs on one thread at a time; ATen parallelises inside the ops).
class FrozenWeightCast {
 public:
  // w itself unless bfloat16 autocast is on for w's device (AutocastScope) and w is a float32
  // tensor that does not require grad; then w.to(bfloat16), cast again only when w is another
  // tensor, has other storage (set_data, a device move), or was changed in place (its version
  // counter).
  at::Tensor operator()(const at::Tensor& w);
  // Drops the copy and the weight it came from (e.g. when the weight's module is replaced).
  void Reset();

 private:
  at::Tensor source_;      // the weight cast last
  c10::Storage storage_;   // its storage then (held, so that no other storage can take its place)
  int64_t offset_ = -1;    // its storage offset then
  int64_t version_ = -1;   // its version counter then
  at::Tensor cast_;
};

// A bfloat16/half tensor as float32; any other tensor (float32, float64) itself. For LayerNorm's
// input under bf16 autocast (LibTorch 1.13's CPU kernel needs input and weight of one dtype) and
// the heads, which compute in full precision.
inline at::Tensor AsFloat32(const at::Tensor& x) {
  const at::ScalarType t = x.scalar_type();
  return t == at::kBFloat16 || t == at::kHalf ? x.to(at::kFloat) : x;
}

// Whether this CPU multiplies bfloat16 matrices in hardware (x86 AMX-BF16 or AVX512-BF16, read
// from /proc/cpuinfo's flags; false where the file is missing): without it, bfloat16 is emulated
// and slower than float32.
bool CpuHasFastBf16();

}  // namespace cliphba::model
