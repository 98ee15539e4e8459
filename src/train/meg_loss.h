// The CLIP-HBA-MEG loss (METHOD.md "Stage 2"; reference PearsonMSELongLoss and
// calculate_pearson_rdm, behaviour captured in shared/fixtures/clip/meg_loss, README section 4).
//
// Dimension legend: T timepoints, B objects in the batch, D embedding dimensions (the K prompts),
// m = B (B - 1) / 2 upper-triangle entries (row-major, i < j, like torch.triu_indices(B, B, 1)).
// Pure ATen; every function works in the input's dtype (float32 in training, float64 in tests)
// and is differentiable; the loss's G term is computed in float64 (see PearsonMSELongLoss).
#pragma once

#include <ATen/ATen.h>

namespace cliphba::train {

// emb (T, B, D) -> (T, B, B) correlation-distance RDMs, all timepoints in one batched product:
// rows centred over D, r_ij = <c_i, c_j> / (|c_i| |c_j|), RDM = 1 - r with the diagonal exactly 0
// and no gradient through it (the reference's in-place fill_diagonal_). A constant row gives NaN,
// as in the reference (the head adds a positive jitter so that does not happen).
at::Tensor PearsonRdm(const at::Tensor& emb);

// (T, B, B) -> (T, m) upper triangles (i < j, row-major). REQUIRES: B >= 2.
at::Tensor UpperTriangles(const at::Tensor& rdm);

// Pearson correlation of two equally sized tensors, flattened: sum(xm ym) / sqrt(sum xm^2 sum
// ym^2). Returns a 0-dim tensor. If either side is constant the reference yields NaN (0 / 0); here
// r = 0 with a zero gradient. That case is real: with the initial Wfr (last block at every
// timepoint) and noise off, every timepoint has the same model RDM up to the jitter, so its time
// generalisation is flat: spread 2.6e-13 in float64 in fixtures/clip/meg_head "onehot", far below
// float32's resolution. The reference's G there (and the gradient it sends to the vision tower) is
// float32 rounding noise amplified by 1 / spread; this function calls such a side constant
// (spread within 64 ulp of its magnitude) and gives G = 1 with no gradient. MegHeadParity checks it.
// `resolution`: the dtype whose rounding decides "constant" (default: x's own; the loss computes G
// in float64 from float32 RDMs and passes float32).
at::Tensor PearsonFlat(const at::Tensor& x, const at::Tensor& y,
                       at::ScalarType resolution = at::ScalarType::Undefined);

// upper (T, m) -> (T) time generalisation, the reference quirk included: rows z-scored with the
// POPULATION std, rsm = Z Z^T / (m - 1) (so diag = m / (m - 1)), result = rsm.mean(dim 1).
at::Tensor TimeGeneralization(const at::Tensor& upper);

struct MegLossTerms {
  at::Tensor total;           // p_w P / P0 + m_w M / M0 + g_w G / G0 (0-dim)
  at::Tensor mse;             // M: mean over t of the per-timepoint MSE of upper triangles
  at::Tensor pearson;         // P: 1 - r over all T m upper-triangle values flattened
  at::Tensor generalization;  // G: 1 - r(gen(pred), gen(target))
};

// PearsonMSELongLoss. Weights and the initial-loss normalisers (P0, M0, G0: the losses of the
// initial model on the validation data; 1 while those are being measured).
struct PearsonMSELongLoss {
  double p_weight = 1.0, m_weight = 0.1, g_weight = 0.15;
  double p0 = 1.0, m0 = 1.0, g0 = 1.0;

  // pred_rdm, target_rdm: (T, B, B), same dtype; target has no gradient. REQUIRES: T >= 2, B >= 3.
  MegLossTerms operator()(const at::Tensor& pred_rdm, const at::Tensor& target_rdm) const;
};

}  // namespace cliphba::train
