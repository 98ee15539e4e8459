// PearsonMSELongLoss and the batched Pearson RDM; see meg_loss.h.
#include "train/meg_loss.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (ATen.h no longer brings it in LibTorch 2.x)

namespace cliphba::train {

at::Tensor PearsonRdm(const at::Tensor& emb) {
  TORCH_CHECK(emb.dim() == 3, "PearsonRdm: expected (T, B, D), got ", emb.sizes());
  const int64_t b = emb.size(1);
  at::Tensor c = emb - emb.mean({2}, /*keepdim=*/true);
  at::Tensor n = c.norm(2, {2}, /*keepdim=*/true);                         // (T, B, 1)
  at::Tensor r = at::bmm(c, c.transpose(1, 2)) / (n * n.transpose(1, 2));  // (T, B, B)
  at::Tensor off = 1 - at::eye(b, emb.options().requires_grad(false));     // 0 on the diagonal
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

at::Tensor PearsonFlat(const at::Tensor& x, const at::Tensor& y, at::ScalarType resolution) {
  at::Tensor xm = x.reshape({-1}) - x.mean();
  at::Tensor ym = y.reshape({-1}) - y.mean();
  // A constant side gives r = 0 with a zero gradient instead of the reference's NaN (0 / 0).
  // "Constant" = a spread within rounding of the values' magnitude (64 ulp). The masked product
  // keeps sqrt(0) (an infinite derivative) out of the backward pass.
  const at::ScalarType r = resolution == at::ScalarType::Undefined ? x.scalar_type() : resolution;
  const double eps = 64 * (r == at::kDouble ? 2.220446049250313e-16 : 1.1920929e-07);
  at::Tensor ok;
  {
    at::NoGradGuard no_grad;
    ok = (xm.abs().max() > eps * x.abs().max()) & (ym.abs().max() > eps * y.abs().max());
  }
  at::Tensor prod = xm.pow(2).sum() * ym.pow(2).sum();
  at::Tensor safe = at::where(ok, prod, at::ones_like(prod));
  return at::where(ok, (xm * ym).sum() / at::sqrt(safe), at::zeros_like(prod));
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
  // G in float64: the model's time generalisation can be nearly flat (a Wfr start that is the
  // same at every timepoint), where r amplifies rounding by 1 / spread.
  // "Constant" still means within the resolution of the input RDMs' dtype.
  out.generalization = (1 - PearsonFlat(TimeGeneralization(pu.to(at::kDouble)),
                                        TimeGeneralization(tu.to(at::kDouble)), pu.scalar_type()))
                           .to(pu.scalar_type());
  out.total =
      p_weight * out.pearson / p0 + m_weight * out.mse / m0 + g_weight * out.generalization / g0;
  return out;
}

}  // namespace cliphba::train
