#include "meg/curves.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cliphba::meg {

namespace {

at::Tensor MinMax(const at::Tensor& v, const std::string& what) {
  const double lo = v.min().item<double>(), hi = v.max().item<double>();
  if (!(hi > lo))
    throw DataError("MEG curves: the " + what + " is constant (" + fmt::format("{:g}", lo) +
                    " at every timepoint), so its min-max normalisation is undefined");
  return (v - lo) / (hi - lo);
}

}  // namespace

at::Tensor GaussianFilter1d(const at::Tensor& x, double sigma) {
  TORCH_CHECK(x.dim() == 1, "GaussianFilter1d: expected a 1-D tensor");
  if (!(sigma > 0)) throw ConfigError("gaussian sigma must be > 0, got " + std::to_string(sigma));
  const int64_t radius = int64_t(4.0 * sigma + 0.5);
  std::vector<double> w(size_t(2 * radius + 1));
  double total = 0;
  for (int64_t i = -radius; i <= radius; ++i) {
    w[size_t(i + radius)] = std::exp(-0.5 / (sigma * sigma) * double(i * i));
    total += w[size_t(i + radius)];
  }
  for (double& v : w) v /= total;
  at::Tensor in = x.to(at::kDouble).contiguous();
  const int64_t n = in.size(0);
  at::Tensor out = at::zeros({n}, at::kDouble);
  if (n == 0) return out;
  const double* src = in.data_ptr<double>();
  double* dst = out.data_ptr<double>();
  auto reflect = [n](int64_t i) {  // scipy 'reflect': period 2n, half-sample symmetric
    int64_t j = i % (2 * n);
    if (j < 0) j += 2 * n;
    return j < n ? j : 2 * n - 1 - j;
  };
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (int64_t d = -radius; d <= radius; ++d) acc += w[size_t(d + radius)] * src[reflect(i + d)];
    dst[i] = acc;
  }
  return out;
}

Curves ComputeCurves(const std::vector<at::Tensor>& participant_stacks, const TimeAxis& axis,
                     double noise_scale, double sigma) {
  if (participant_stacks.empty())
    throw ConfigError("MEG curves: no participant RDM stacks were given");
  const int64_t T = participant_stacks[0].size(0);
  if (axis.size != T)
    throw ConfigError("MEG curves: the time axis has " + std::to_string(axis.size) +
                      " timepoints, the RDM stacks " + std::to_string(T));
  at::Tensor richness_sum = at::zeros({T}, at::kDouble);
  at::Tensor beta_sum = at::zeros({T}, at::kDouble);
  for (size_t p = 0; p < participant_stacks.size(); ++p) {
    const at::Tensor& s = participant_stacks[p];
    TORCH_CHECK(s.dim() == 3 && s.size(1) == s.size(2) && s.size(0) == T,
                "ComputeCurves: participant stack ", p, " must be (T, k, k) with T = ", T);
    const int64_t k = s.size(1);
    if (k < 3)
      throw DataError("MEG curves: at least 3 objects are needed for the generalisation curve, got " +
                      std::to_string(k));
    at::Tensor x = s.to(at::kDouble);
    richness_sum += x.mean({1, 2});
    at::Tensor iu = at::triu_indices(k, k, 1, at::kLong);
    at::Tensor upper = x.index({at::indexing::Slice(), iu[0], iu[1]});  // (T, m)
    at::Tensor c = upper - upper.mean(1, true);
    at::Tensor norm = c.pow(2).sum(1).sqrt();  // (T)
    at::Tensor zero = (norm == 0).nonzero();
    if (zero.size(0) > 0)
      throw DataError("MEG curves: participant stack " + std::to_string(p) + " has a constant RDM "
                      "at timepoint " + std::to_string(zero[0][0].item<int64_t>()) +
                      ", whose correlation with other timepoints is undefined");
    at::Tensor z = c / norm.unsqueeze(1);
    at::Tensor corr = at::mm(z, z.t()).clamp(-1.0, 1.0);  // np.corrcoef clips to [-1, 1] too
    beta_sum += MinMax(corr.mean(1), "generalisation curve of participant stack " +
                                         std::to_string(p));
  }
  const double P = double(participant_stacks.size());
  const int64_t zpos = std::clamp<int64_t>(axis.ZeroMsPosition(), 0, T);
  Curves out;
  at::Tensor richness = MinMax(richness_sum / P, "mean RDM value (richness)");
  at::Tensor beta = beta_sum / P;
  if (zpos > 0) {
    richness.narrow(0, 0, zpos).zero_();
    beta.narrow(0, 0, zpos).zero_();
  }
  at::Tensor noise = MinMax(GaussianFilter1d(1.0 - beta, sigma), "smoothed 1 - generalisation") *
                     noise_scale;
  out.richness = richness.to(at::kFloat);
  out.beta = beta.to(at::kFloat);
  out.noise = noise.to(at::kFloat);
  return out;
}

}  // namespace cliphba::meg
