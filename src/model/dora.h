// DoRA (weight-decomposed low-rank adaptation) for the attention output projections of CLIP.
//
// Dimension legend: in = input features of the adapted Linear, out = its output features,
// r = adapter rank.
//
// Reference: `DoRALayer` of CLIP-HBA (train_behavior_things_pipeline.py; the MEG pipeline's copy is
// identical); numbers checked against shared/fixtures/clip/dora (README section 3).
//
// For a Linear with weight W (out, in) and bias b (out):
//   m = column L2 norms of W^T                      (out)      trainable unless frozen by option
//   D = W^T / m                                     (in, out)  buffer, never trained
//   A = delta_D_A                                   (r, out)   kaiming-uniform, a = sqrt(5)
//   B = delta_D_B                                   (in, r)    kaiming-uniform, a = sqrt(5)
//   delta = (B @ A) * alpha / r                     (in, out)
//   W' = ((D + delta) / (||D + delta||_col + 1e-8) * m)^T       (out, in)
//   bias = copy of b                                (out)      a Parameter, frozen by ApplyDora
// Note that B @ A is NOT zero at initialisation (both factors are random, as in the reference), so
// applying DoRA changes the layer's output before any training step.
//
// Dropout. The reference applies dropout (p = 0.1) to delta in its forward(x) in training mode.
// In CLIP, however, the layer replaces `attn.out_proj` of nn.MultiheadAttention, which never calls
// out_proj.forward: it reads the `weight` property (no dropout, even in training) and `bias`.
// So in the reference CLIP-HBA models the DoRA dropout never runs. cliphba reproduces that:
// the CLIP attention uses Weight() (no dropout); forward(x) (dropout on delta in training mode) is
// kept for stand-alone use and for parity with the reference layer.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cliphba::model {

struct DoraOptions {
  int64_t rank = 32;            // r, >= 1
  double alpha = 32.0;          // scaling = alpha / rank
  double dropout = 0.1;         // p on delta in forward(x), training mode only (see above)
  bool train_magnitude = true;  // m.requires_grad
};

// One DoRA-adapted Linear. Parameter/buffer names follow the reference layer, so that the
// state_dict of an adapted CLIP has the reference keys `...attn.out_proj.{m, D, delta_D_A,
// delta_D_B, bias}`.
class DoraLinearImpl : public torch::nn::Module {
 public:
  // weight: (out, in), bias: (out) of the Linear being adapted; both are copied (detached), so the
  // Linear may be discarded. A and B are drawn from the global torch RNG (seed it first for
  // reproducibility), on weight's device and dtype.
  // REQUIRES: options.rank >= 1; weight has no zero rows (m > 0).
  // Throws c10::Error (TORCH_CHECK) on wrong shapes or options.
  DoraLinearImpl(const at::Tensor& weight, const at::Tensor& bias, const DoraOptions& options);

  // The adapted weight W' (out, in), differentiable w.r.t. m, delta_D_A, delta_D_B; no dropout.
  // This is what the CLIP attention uses (the reference `weight` property).
  at::Tensor Weight() const;

  // x: (..., in) -> (..., out) = x @ W'^T + bias, with dropout(p) on delta when is_training().
  // In eval mode equals F::linear(x, Weight(), bias) exactly.
  at::Tensor forward(const at::Tensor& x);

  int64_t in_features() const { return D.size(0); }
  int64_t out_features() const { return D.size(1); }
  double scaling() const { return scaling_; }
  const DoraOptions& options() const { return options_; }

  at::Tensor m;          // (out)
  at::Tensor D;          // (in, out) buffer
  at::Tensor delta_D_A;  // (r, out)
  at::Tensor delta_D_B;  // (in, r)
  at::Tensor bias;       // (out)

 private:
  at::Tensor AdaptedWeight(const at::Tensor& delta) const;  // delta (in, out) -> W' (out, in)

  DoraOptions options_;
  double scaling_;
};
TORCH_MODULE(DoraLinear);

class Clip;  // model/clip.h

// Replaces `attn.out_proj` of the last `last_vision_blocks` blocks of clip->visual->transformer
// and of the last `last_text_blocks` blocks of clip->transformer by a DoraLinear (rank, alpha,
// dropout 0.1, m trainable iff train_magnitude), built from the block's current out-projection
// weight and bias; then freezes everything else: afterwards exactly delta_D_A, delta_D_B (and m if
// train_magnitude) of the adapted blocks have requires_grad = true.
// A block that is already adapted is re-adapted from its current effective weight W' (merge, then
// a fresh DoRA on top). Draws A and B from the global torch RNG, vision blocks first, in block
// order. 0 blocks is allowed (everything frozen, nothing adapted). Throws ConfigError if a count is
// negative or exceeds the tower's depth, or rank < 1.
void ApplyDora(Clip& clip, int64_t last_vision_blocks, int64_t last_text_blocks, int64_t rank,
               double alpha, bool train_magnitude);

struct StateDict;  // model/checkpoint.h

// The tensors of every DoRA-adapted block of clip (names "...attn.out_proj.{m, D, delta_D_A,
// delta_D_B, bias}"), parameters and buffers, in named_parameters() then named_buffers() order:
// enough, with the base checkpoint and the DoRA settings, to rebuild the fine-tuned model.
std::vector<std::pair<std::string, at::Tensor>> DoraTensors(Clip& clip);

// Copies the entries of sd whose names start with `prefix` into the DoRA tensors of clip. The two
// sets must be equal, shapes too; else ONE DataError "<source>: <what>" listing every unexpected,
// missing or mis-shaped tensor, and nothing is copied.
void LoadDora(Clip& clip, const StateDict& sd, const std::string& prefix, const std::string& source,
              const std::string& what);

}  // namespace cliphba::model
