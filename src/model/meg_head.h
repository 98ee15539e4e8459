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
//   s, b  = A @ richness, A @ beta                    (T)      window means
//   noise = noise_curve[i]                            (T)      NOT a window mean (reference)
//   h     = (wts * s) @ block_cls                     (T, B, E)  block_cls NOT normalised
//   raw   = relu(logit_scale_exp * h @ text_norm^T)   (T, B, K)
//   emb   = relu(b * (raw + N(0,1) * std_B(raw, unbiased) * noise)) + U(0,1) * 1e-5 + 1e-6
// The N and U draws come from the caller's generator (N first, then U, each (T, B, K)); with
// noise off the N term is skipped and only U is drawn (a deterministic jitter for a fixed seed).
// Note (reference behaviour, tested): at the reference init (Wfr = 1 in the last block's column)
// the weights are exactly (0, ..., 0, 1); the zeros sit at relu's kink (gradient 0) and the
// last weight is 1 for any Wfr (derivative ~1e-10 through the +1e-10), and the tied zeros get
// equal gradients, so Wfr barely moves from this init: phase 1 of the reference learns ~nothing.
// Pure ATen + core errors: no MPI, HDF5 or YAML.
#pragma once

#include <ATen/ATen.h>

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

class MegHead {
 public:
  // How Wfr (T_full, L) starts: kLastBlock (the reference) = 1 in the last block's column, 0
  // elsewhere; kRamp = column j holds j / (L - 1) (L = 1: 1). With kRamp only block 0 sits at the
  // row minimum (the relu kink), so every other weight gets a gradient.
  enum class Init { kLastBlock, kRamp };

  // richness, beta, noise: (T_full) curves over the full axis (meg::ComputeCurves). n_blocks: L.
  // Wfr starts as `init` says, float32, requires_grad.
  // Throws DataError (see MegTrainWindows; curves of another length).
  MegHead(const MegHeadOptions& o, int64_t n_blocks, const at::Tensor& richness,
          const at::Tensor& beta, const at::Tensor& noise, Init init = Init::kLastBlock);

  // block_cls: (L, B, E) per-block CLS projections (model::ImageOutputs::block_cls_proj stacked);
  // text_norm: (K, E) L2-normalised text features; logit_scale_exp: clip logit_scale.exp().
  // Returns the embeddings (T, B, K), differentiable w.r.t. Wfr and block_cls.
  at::Tensor Embeddings(const at::Tensor& block_cls, const at::Tensor& text_norm,
                        double logit_scale_exp, bool noise, at::Generator generator) const;

  // Sets Wfr (in place, keeping requires_grad) back to its start as the constructor's `init` said.
  void ResetWfr();

  // The normalised block weights (T, L) (differentiable w.r.t. Wfr).
  at::Tensor BlockWeights() const;

  int64_t timepoints() const { return int64_t(index_.size()); }
  const std::vector<double>& train_times() const { return times_; }
  const std::vector<int64_t>& train_index() const { return index_; }
  const at::Tensor& averaging() const { return averaging_; }

  at::Tensor wfr;  // (T_full, L) trainable (float32; tests may replace it by a float64 copy)

 private:
  Init init_ = Init::kLastBlock;
  std::vector<double> times_;
  std::vector<int64_t> index_;
  at::Tensor averaging_;      // (T, T_full)
  at::Tensor s_, b_, noise_;  // (T) float64: window-mean richness, beta; noise at i
};

}  // namespace cliphba::model
