// QuickGELU, y = x * sigmoid(1.702 x), CLIP's activation (issue 18: the bfloat16 fast path).
//
// Under bf16 autocast the MLP's activation (tokens x 4W, 2.5 M values per ViT-B/32 block at
// batch 16) ran as ATen's unfused ops: mul, sigmoid and mul forward, and five ops backward, whose
// bf16 CPU kernels in LibTorch 1.13 are not vectorised (sigmoid_backward, and the muls by a
// wrapped scalar). Measured with python3-torch 1.13 on this machine, 1 thread: 35 ms per block
// for forward + backward, against ~1 ms for a bf16 mul: about 20 % of a bf16 MEG phase-2 step.
// QuickGelu runs bf16 input through one fused pass forward and one backward (float32 arithmetic
// inside, vectorised for AVX-512 / AVX2 with a generic fallback chosen at load time), saving only
// x for the backward. Every other input (float32: the reference's parity path) keeps the
// reference's formula, x * sigmoid(1.702 x), op for op.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cliphba::model {

// x: any shape -> the same shape and dtype. Differentiable w.r.t. x, first order only (bf16: a
// backward with create_graph throws c10::Error).
// bf16 CPU tensors take the fused kernels: for every finite bf16 input whose exact result is
// not tiny (|y| >= 1e-30), forward and backward are within one bf16 ulp of the exact value
// (tests/model/quick_gelu_test.cc); the infinities and NaN give what the formula gives in float
// (NaN, except inf -> inf forward). Everything else is x * sigmoid(1.702 x), op for op.
at::Tensor QuickGelu(const at::Tensor& x);

// The fused kernels on raw bfloat16 bits (exposed for tests). n values each; no aliasing
// between inputs and outputs.
//   forward:  y  = bf16(x * s),                        s = sigmoid(1.702 x) in float32
//   backward: dx = bf16(dy * s * (1 + 1.702 x (1 - s)))
// REQUIRES: n >= 0; pointers valid for n values.
void QuickGeluForwardBf16(const uint16_t* x, uint16_t* y, int64_t n);
void QuickGeluBackwardBf16(const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n);

}  // namespace cliphba::model
