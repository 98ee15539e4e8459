// The CLIP-HBA-MEG head (METHOD.md "Stage 2"; reference clip_hba_meg ModifiedCLIP.forward),
// batched over ALL training timepoints: one (T x T_full) averaging matrix replaces the
// reference's per-timepoint Python loop.
//
// Dimension legend: T_full timepoints of the MEG time axis, T training timepoints, L vision
// blocks, B images, E joint embedding, K prompts.
//
// For training time t (ms): i = floor((t - axis_start) / axis_step) (Python // semantics),
// window rows [max(0, i - w), min(i + w + 1, T_full)) with w = floor(window_ms / axis_step);
//   A (T, T_full): A[t, j] = 1 / |window(t)| for j in window(t), else 0
//   mix   = A @ Wfr                                   (T, L)
//   wts   = relu(mm / (sum(mm) + 1e-10)), mm = (mix - min) / (max - min + 1e-10)  (per row)
//           (min/max as torch.min/max(dim): at ties the gradient reaches the first index only)
//   s, b  = A @ visual_scaler, A @ beta               (T)      window means
//   noise = noise_level[i]                            (T)      NOT a window mean (reference)
//   h     = (wts * s) @ block_cls                     (T, B, E)  block_cls NOT normalised
//   raw   = relu(logit_scale_exp * h @ text_norm^T)   (T, B, K)
//   emb   = relu(b * (raw + N(0,1) * std_B(raw, unbiased) * noise)) + U(0,1) * 1e-5 + 1e-6
// The N and U draws come from the caller's generator (N first, then U, each (T, B, K)); with
// noise off the N term is skipped and only U is drawn (a deterministic jitter for a fixed seed).
// Note (reference behaviour, tested against fixtures/clip/meg_head): at the reference init (Wfr =
// 1 in the last block's column) the weights are exactly (0, ..., 0, 1) and the zeros sit at relu's
// kink. They can still move: through the sum normalisation every tied column gets a gradient, and
// min(dim) sends the min's share to the first tied column alone (torch.amin would split it evenly
// and cancel the gradient exactly). For the MEG loss that gradient is tiny (~1e-6: with one block
// weighted, Wfr only rescales the features and correlation RDMs ignore scale, up to the jitter),
// but Adam normalises step sizes, so the reference's phase 1 does leave the one-hot start.
// ATen + torch::nn::Module + core errors: no MPI, HDF5 or YAML.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

namespace cliphba::model {

struct MegHeadOptions {
  double axis_start_ms = 0;   // time of full-axis timepoint 0
  double axis_step_ms = 1;    // > 0
  int64_t axis_size = 0;      // T_full
  double train_start_ms = 0;  // training times train_start, train_start + step, ... <= train_end
  double train_end_ms = 0;
  double train_step_ms = 1;  // > 0
  double window_ms = 0;      // +- window around each training time (>= 0)
};

// The training timepoints (ms) of `o`: start, start + step, ... up to end inclusive (1e-9 ms
// slack). Throws ConfigError if step <= 0 or end < start.
std::vector<double> MegTrainTimes(const MegHeadOptions& o);

// (T, T_full) float64 window-mean matrix and the per-timepoint full-axis indices i (see above).
// Throws DataError (naming train.meg.* keys and the axis) if a training time lies outside the
// axis or the window (2 w + 1 rows) is larger than the axis.
struct MegWindows {
  at::Tensor averaging;        // (T, T_full) float64
  std::vector<int64_t> index;  // (T) full-axis index of each training time
  int64_t half_width = 0;      // w
};
MegWindows MegTrainWindows(const MegHeadOptions& o);

// The head as a module: its registered tensors are what saving, loading, the trainable list and
// the gradient all-reduce walk (named_parameters / named_buffers), never hand-written names.
//   parameters: wfr (T_full, L)           trainable (requires_grad)
//               beta, visual_scaler (T_full)  registered like the reference's nn.Parameters, but
//                                        frozen (requires_grad false) as the reference trains them
//   buffer:     noise_level (T_full)
// Parameters are float32 (the reference's dtype); tests may call ->to(at::kDouble).
class MegHeadImpl : public torch::nn::Module {
 public:
  // How Wfr (T_full, L) starts: kLastBlock (the reference) = 1 in the last block's column, 0
  // elsewhere; kRamp = column j holds j / (L - 1) (L = 1: 1). With kRamp only block 0 sits at the
  // row minimum (the relu kink), so every other weight gets a gradient.
  enum class Init { kLastBlock, kRamp };

  // visual_scaler ("richness" in meg::Curves), beta, noise_level: (T_full) curves over the full
  // axis (meg::ComputeCurves). n_blocks: L. Wfr starts as `init` says.
  // Throws DataError (see MegTrainWindows; curves of another length; n_blocks < 1).
  MegHeadImpl(const MegHeadOptions& o, int64_t n_blocks, const at::Tensor& visual_scaler,
              const at::Tensor& beta, const at::Tensor& noise_level, Init init = Init::kLastBlock);

  struct Outputs {
    at::Tensor embedding;       // (T, B, K) pred_emb
    at::Tensor image_features;  // (T, B, E) the weighted, scaled block mix before the logits
  };

  // The forward with the caller's random draws (the reference draws them inside; the parity
  // fixture records them). block_cls: (L, B, E) per-block CLS projections
  // (model::ImageOutputs::block_cls_proj stacked); text_norm: (K, E) L2-normalised text features;
  // logit_scale_exp: clip logit_scale.exp(). normal: (T, B, K) N(0,1) draws, or undefined for no
  // noise term; uniform: (T, B, K) U(0,1) draws for the jitter. Differentiable w.r.t. every
  // parameter with requires_grad and block_cls. Throws c10::Error on a shape mismatch.
  Outputs Forward(const at::Tensor& block_cls, const at::Tensor& text_norm, double logit_scale_exp,
                  const at::Tensor& normal, const at::Tensor& uniform) const;

  // Forward with draws from `generator`: N first (only if `noise`), then U, each (T, B, K), drawn
  // on the generator's device and moved to block_cls's (a CPU generator gives the same draws for
  // CPU and CUDA features). Returns the embeddings (T, B, K).
  at::Tensor Embeddings(const at::Tensor& block_cls, const at::Tensor& text_norm,
                        double logit_scale_exp, bool noise, at::Generator generator) const;

  // The forward in two steps, for prediction streamed over blocks of timepoints.
  // MixWeights: the block weights times the window-mean visual_scaler, (T, L) (differentiable;
  // a predictor with a fixed head computes it once). Raw: relu(logit_scale_exp * h @ text_norm^T)
  // (count, B, K) for the timepoints whose rows of MixWeights() are `weights` (count, L). Finish
  // (timepoints [t_begin, t_begin + count)): beta, the noise term (normal (count, B, K) or
  // undefined; its scale is the std of raw over the B images, so B must be the whole set) and the
  // jitter (uniform (count, B, K)). Forward(...).embedding == Finish(Raw(..., MixWeights()), 0,
  // ...). Throws c10::Error on shapes or a range outside [0, T).
  at::Tensor MixWeights() const;
  at::Tensor Raw(const at::Tensor& block_cls, const at::Tensor& text_norm, double logit_scale_exp,
                 const at::Tensor& weights) const;
  at::Tensor Finish(const at::Tensor& raw, int64_t t_begin, const at::Tensor& normal,
                    const at::Tensor& uniform) const;

  // Sets Wfr (in place, keeping requires_grad) back to its start as the constructor's `init` said.
  void ResetWfr();
  // Copies `values` (T_full, L) into Wfr in place. Throws DataError on another shape.
  void SetWfr(const at::Tensor& values);

  // The normalised block weights (T, L) (differentiable w.r.t. Wfr).
  at::Tensor BlockWeights() const;

  int64_t timepoints() const { return int64_t(index_.size()); }
  const std::vector<double>& train_times() const { return times_; }
  const std::vector<int64_t>& train_index() const { return index_; }
  const at::Tensor& averaging() const { return averaging_; }

  at::Tensor wfr;            // (T_full, L) parameter, trainable
  at::Tensor beta;           // (T_full) parameter, frozen by default
  at::Tensor visual_scaler;  // (T_full) parameter, frozen by default
  at::Tensor noise_level;    // (T_full) buffer

 private:
  at::Tensor Mix(const at::Tensor& block_cls, const at::Tensor& weights) const;  // (count, B, E)
  at::Tensor Logits(const at::Tensor& h, const at::Tensor& text_norm, double scale) const;

  Init init_ = Init::kLastBlock;
  std::vector<double> times_;
  std::vector<int64_t> index_;
  at::Tensor averaging_;  // (T, T_full) float64 window means (not a buffer: derived from options)
  at::Tensor centre_;     // (T) int64 full-axis index of each training time
};
TORCH_MODULE(MegHead);

}  // namespace cliphba::model
