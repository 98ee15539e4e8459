// The CLIP-HBA-MEG loss (METHOD.md "Stage 2"; reference PearsonMSELongLoss and
// calculate_pearson_rdm, behaviour captured in shared/fixtures/clip/meg_loss, README section 4).
//
// Dimension legend: T timepoints, B objects in the batch, D embedding dimensions (the K prompts),
// m = B (B - 1) / 2 upper-triangle entries (row-major, i < j, like torch.triu_indices(B, B, 1)).
// Pure ATen; every function works in the input's dtype (float32 in training, float64 in tests)
// and is differentiable.
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

// Pearson correlation of two equally sized tensors, flattened: sum(xm ym) / sqrt(sum xm^2 sum ym^2).
// Returns a 0-dim tensor.
at::Tensor PearsonFlat(const at::Tensor& x, const at::Tensor& y);

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
