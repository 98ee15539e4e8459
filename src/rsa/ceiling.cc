#include "rsa/ceiling.h"

#include <sstream>

#include "core/error.h"

namespace cliphba::rsa {

NoiseCeiling ComputeNoiseCeiling(const at::Tensor& rdms_in, Comparison comparison) {
  if (rdms_in.dim() != 2 || rdms_in.size(0) < 2 || rdms_in.size(1) < 2) {
    std::ostringstream msg;
    msg << "noise ceiling: expected (participants >= 2, pairs >= 2) condensed RDMs, got shape "
        << rdms_in.sizes();
    throw DataError(msg.str());
  }
  at::Tensor rdms = rdms_in.to(at::kDouble).contiguous();
  if (!at::isfinite(rdms).all().item<bool>())
    throw DataError("noise ceiling: participant RDMs contain NaN or Inf");
  const int64_t p = rdms.size(0);
  at::Tensor sum = rdms.sum(/*dim=*/0);
  at::Tensor mean_all = sum / double(p);
  NoiseCeiling nc;
  nc.lower = at::empty({p}, rdms.options());
  nc.upper = at::empty({p}, rdms.options());
  for (int64_t i = 0; i < p; ++i) {
    at::Tensor others = (sum - rdms[i]) / double(p - 1);
    nc.lower[i] = Compare(comparison, rdms[i], others);
    nc.upper[i] = Compare(comparison, rdms[i], mean_all);
  }
  nc.lower_mean = nc.lower.mean().item<double>();
  nc.upper_mean = nc.upper.mean().item<double>();
  return nc;
}

at::Tensor TemporalGeneralisation(const at::Tensor& stack_in) {
  if (stack_in.dim() != 2 || stack_in.size(0) < 1 || stack_in.size(1) < 2) {
    std::ostringstream msg;
    msg << "temporal generalisation: expected a (timepoints, pairs >= 2) stack, got shape "
        << stack_in.sizes();
    throw DataError(msg.str());
  }
  at::Tensor x = stack_in.to(at::kDouble);
  if (!at::isfinite(x).all().item<bool>())
    throw DataError("temporal generalisation: the RDM stack contains NaN or Inf");
  at::Tensor centred = x - x.mean(/*dim=*/1, /*keepdim=*/true);
  at::Tensor norms = centred.norm(2, /*dim=*/1, /*keepdim=*/true);  // (T, 1)
  if ((norms == 0).any().item<bool>())
    throw DataError(
        "temporal generalisation: a timepoint's RDM is constant (correlation undefined)");
  at::Tensor z = centred / norms;
  return at::mm(z, z.t()).clamp_(-1.0, 1.0);  // (T, T)
}

}  // namespace cliphba::rsa
