// PearsonMSELongLoss and the batched Pearson RDM; see meg_loss.h.
#include "train/meg_loss.h"

namespace cliphba::train {

at::Tensor PearsonRdm(const at::Tensor& emb) {
  TORCH_CHECK(emb.dim() == 3, "PearsonRdm: expected (T, B, D), got ", emb.sizes());
  const int64_t b = emb.size(1);
  at::Tensor c = emb - emb.mean({2}, /*keepdim=*/true);
  at::Tensor n = c.norm(2, {2}, /*keepdim=*/true);                    // (T, B, 1)
  at::Tensor r = at::bmm(c, c.transpose(1, 2)) / (n * n.transpose(1, 2));  // (T, B, B)
  at::Tensor off = 1 - at::eye(b, emb.options().requires_grad(false));  // 0 on the diagonal
  return (1 - r) * off;  // the product zeroes the diagonal and its gradient
}

at::Tensor UpperTriangles(const at::Tensor& rdm) {
  TORCH_CHECK(rdm.dim() == 3 && rdm.size(1) == rdm.size(2) && rdm.size(1) >= 2,
              "UpperTriangles: expected (T, B, B) with B >= 2, got ", rdm.sizes());
  const int64_t b = rdm.size(1);
  at::Tensor iu = at::triu_indices(b, b, 1, at::TensorOptions().dtype(at::kLong));
  at::Tensor flat_idx = (iu[0] * b + iu[1]).to(rdm.device());
  return rdm.reshape({rdm.size(0), b * b}).index_select(1, flat_idx);
}

at::Tensor PearsonFlat(const at::Tensor& x, const at::Tensor& y) {
  at::Tensor xm = x.reshape({-1}) - x.mean();
  at::Tensor ym = y.reshape({-1}) - y.mean();
  return (xm * ym).sum() / at::sqrt(xm.pow(2).sum() * ym.pow(2).sum());
}

at::Tensor TimeGeneralization(const at::Tensor& upper) {
  TORCH_CHECK(upper.dim() == 2 && upper.size(1) >= 2, "TimeGeneralization: expected (T, m), got ",
              upper.sizes());
  const int64_t m = upper.size(1);
  at::Tensor z = (upper - upper.mean({1}, true)) / upper.std({1}, /*unbiased=*/false, true);
  at::Tensor rsm = at::mm(z, z.t()) / double(m - 1);
  return rsm.mean({1});
}

MegLossTerms PearsonMSELongLoss::operator()(const at::Tensor& pred_rdm,
                                            const at::Tensor& target_rdm) const {
  TORCH_CHECK(pred_rdm.sizes() == target_rdm.sizes(), "PearsonMSELongLoss: shapes ",
              pred_rdm.sizes(), " and ", target_rdm.sizes(), " differ");
  at::Tensor pu = UpperTriangles(pred_rdm), tu = UpperTriangles(target_rdm);  // (T, m)
  MegLossTerms out;
  out.pearson = 1 - PearsonFlat(pu, tu);
  // Mean over t of per-t means = the overall mean (every timepoint has m entries).
  out.mse = (pu - tu).pow(2).mean({1}).mean();
  out.generalization = 1 - PearsonFlat(TimeGeneralization(pu), TimeGeneralization(tu));
  out.total = p_weight * out.pearson / p0 + m_weight * out.mse / m0 +
              g_weight * out.generalization / g0;
  return out;
}

}  // namespace cliphba::train
