// The batched CLIP-HBA-MEG head; see meg_head.h.
#include "model/meg_head.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"

namespace cliphba::model {

namespace {

std::string Ms(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g ms", v);
  return buf;
}

}  // namespace

std::vector<double> MegTrainTimes(const MegHeadOptions& o) {
  if (!(o.train_step_ms > 0))
    throw ConfigError("train.meg.train_step_ms must be > 0, got " + Ms(o.train_step_ms));
  if (o.train_end_ms < o.train_start_ms)
    throw ConfigError("train.meg.train_end_ms (" + Ms(o.train_end_ms) +
                      ") must not be before train.meg.train_start_ms (" + Ms(o.train_start_ms) +
                      ")");
  std::vector<double> t;
  for (int64_t k = 0;; ++k) {
    const double v = o.train_start_ms + double(k) * o.train_step_ms;
    if (v > o.train_end_ms + 1e-9) break;
    t.push_back(v);
  }
  return t;
}

MegWindows MegTrainWindows(const MegHeadOptions& o) {
  if (!(o.axis_step_ms > 0) || o.axis_size < 1)
    throw DataError("MEG time axis: step " + Ms(o.axis_step_ms) + " and " +
                    std::to_string(o.axis_size) + " timepoints; expected step > 0 and >= 1 point");
  if (!(o.window_ms >= 0))
    throw ConfigError("train.meg.window_ms must be >= 0, got " + Ms(o.window_ms));
  const std::vector<double> times = MegTrainTimes(o);
  const int64_t n = o.axis_size;
  const double axis_end = o.axis_start_ms + double(n - 1) * o.axis_step_ms;
  MegWindows w;
  w.half_width = int64_t(std::floor(o.window_ms / o.axis_step_ms));
  if (2 * w.half_width + 1 > n)
    throw DataError("train.meg.window_ms = " + Ms(o.window_ms) + " spans " +
                    std::to_string(2 * w.half_width + 1) + " timepoints, more than the " +
                    std::to_string(n) + " of the MEG time axis (" + Ms(o.axis_start_ms) + " .. " +
                    Ms(axis_end) + ")");
  w.averaging = at::zeros({int64_t(times.size()), n}, at::kDouble);
  auto a = w.averaging.accessor<double, 2>();
  for (size_t k = 0; k < times.size(); ++k) {
    // Python // semantics; 1e-9 absorbs the rounding of start + k * step (e.g. 0.1 ms steps).
    const int64_t i = int64_t(std::floor((times[k] - o.axis_start_ms) / o.axis_step_ms + 1e-9));
    if (i < 0 || i >= n)
      throw DataError("train.meg training time " + Ms(times[k]) + " (train_start_ms " +
                      Ms(o.train_start_ms) + " .. train_end_ms " + Ms(o.train_end_ms) +
                      ") lies outside the MEG time axis " + Ms(o.axis_start_ms) + " .. " +
                      Ms(axis_end) + " (step " + Ms(o.axis_step_ms) + ")");
    const int64_t lo = std::max<int64_t>(0, i - w.half_width);
    const int64_t hi = std::min<int64_t>(i + w.half_width + 1, n);
    for (int64_t j = lo; j < hi; ++j) a[int64_t(k)][j] = 1.0 / double(hi - lo);
    w.index.push_back(i);
  }
  return w;
}

MegHeadImpl::MegHeadImpl(const MegHeadOptions& o, int64_t n_blocks,
                         const at::Tensor& visual_scaler_curve, const at::Tensor& beta_curve,
                         const at::Tensor& noise_curve, Init init)
    : init_(init) {
  MegWindows w = MegTrainWindows(o);
  times_ = MegTrainTimes(o);
  index_ = w.index;
  averaging_ = w.averaging;
  centre_ = at::tensor(index_, at::kLong);
  for (const auto& [name, c] :
       {std::pair<const char*, const at::Tensor&>{"visual_scaler (richness)", visual_scaler_curve},
        {"beta", beta_curve},
        {"noise", noise_curve}})
    if (!c.defined() || c.dim() != 1 || c.size(0) != o.axis_size)
      throw DataError(std::string("MEG ") + name + " curve has shape [" +
                      std::to_string(c.defined() && c.dim() == 1 ? c.size(0) : -1) +
                      "], expected [" + std::to_string(o.axis_size) +
                      "] (one value per timepoint of the axis)");
  if (n_blocks < 1) throw DataError("MEG head: the vision tower has no blocks");
  auto curve = [](const at::Tensor& c) { return c.detach().to(at::kFloat).clone(); };
  wfr = register_parameter("wfr", at::zeros({o.axis_size, n_blocks}, at::kFloat));
  beta = register_parameter("beta", curve(beta_curve), /*requires_grad=*/false);
  visual_scaler = register_parameter("visual_scaler", curve(visual_scaler_curve), false);
  noise_level = register_buffer("noise_level", curve(noise_curve));
  ResetWfr();
}

void MegHeadImpl::ResetWfr() {
  at::NoGradGuard no_grad;
  const int64_t l = wfr.size(1);
  if (init_ == Init::kRamp && l > 1) {
    wfr.copy_(at::arange(l, at::kDouble).div(double(l - 1)).unsqueeze(0).expand_as(wfr));
  } else {
    wfr.zero_();
    wfr.select(1, l - 1).fill_(1.0);
  }
}

void MegHeadImpl::SetWfr(const at::Tensor& values) {
  if (values.sizes() != wfr.sizes())
    throw DataError("MEG head: Wfr of shape " + c10::str(values.sizes()) + ", expected " +
                    c10::str(wfr.sizes()) + " (timepoints of the axis x vision blocks)");
  at::NoGradGuard no_grad;
  wfr.copy_(values);
}

at::Tensor MegHeadImpl::BlockWeights() const {
  at::Tensor mix = at::mm(averaging_.to(wfr.device(), wfr.scalar_type()), wfr);  // (T, L)
  // min/max over dim (not amin/amax), as the reference: at a tie the gradient goes to the first
  // index alone instead of being split evenly, which decides the Wfr gradient at the one-hot start.
  at::Tensor lo = std::get<0>(mix.min(1, true)), hi = std::get<0>(mix.max(1, true));
  at::Tensor mm = (mix - lo) / (hi - lo + 1e-10);
  return at::relu(mm / (mm.sum({1}, true) + 1e-10));
}

at::Tensor MegHeadImpl::MixWeights() const {
  const at::Tensor s = at::mv(averaging_.to(wfr.device(), wfr.scalar_type()), visual_scaler);  // (T)
  return BlockWeights() * s.unsqueeze(1);                                       // (T, L)
}

at::Tensor MegHeadImpl::Mix(const at::Tensor& block_cls, const at::Tensor& weights) const {
  TORCH_CHECK(block_cls.dim() == 3 && block_cls.size(0) == wfr.size(1),
              "MegHead: expected block_cls (L=", wfr.size(1), ", B, E), got ", block_cls.sizes());
  TORCH_CHECK(weights.dim() == 2 && weights.size(1) == wfr.size(1),
              "MegHead: expected mix weights (count, L=", wfr.size(1), "), got ", weights.sizes());
  const int64_t l = block_cls.size(0), b = block_cls.size(1), e = block_cls.size(2);
  const at::Tensor w = weights.to(block_cls.scalar_type());
  return at::mm(w, block_cls.reshape({l, b * e})).view({w.size(0), b, e});  // (count, B, E)
}

at::Tensor MegHeadImpl::Logits(const at::Tensor& h, const at::Tensor& text_norm,
                               double logit_scale_exp) const {
  TORCH_CHECK(text_norm.dim() == 2 && text_norm.size(1) == h.size(2), "MegHead: expected text (K, E=",
              h.size(2), "), got ", text_norm.sizes());
  return at::relu(at::matmul(h, text_norm.to(h.scalar_type()).t()) * logit_scale_exp);
}

at::Tensor MegHeadImpl::Raw(const at::Tensor& block_cls, const at::Tensor& text_norm,
                            double logit_scale_exp, const at::Tensor& weights) const {
  return Logits(Mix(block_cls, weights), text_norm, logit_scale_exp);
}

at::Tensor MegHeadImpl::Finish(const at::Tensor& raw, int64_t t_begin, const at::Tensor& normal,
                               const at::Tensor& uniform) const {
  TORCH_CHECK(raw.dim() == 3 && t_begin >= 0 && t_begin + raw.size(0) <= timepoints(),
              "MegHead: raw logits ", raw.sizes(), " at timepoint ", t_begin, " outside [0, ",
              timepoints(), ")");
  const int64_t count = raw.size(0);
  TORCH_CHECK(uniform.defined() && uniform.sizes() == raw.sizes(), "MegHead: uniform draws ",
              uniform.defined() ? c10::str(uniform.sizes()) : std::string("undefined"),
              ", expected ", raw.sizes());
  TORCH_CHECK(!normal.defined() || normal.sizes() == raw.sizes(), "MegHead: normal draws ",
              normal.sizes(), ", expected ", raw.sizes());
  const auto dt = raw.scalar_type();
  const at::Tensor a = averaging_.narrow(0, t_begin, count).to(raw.device(), dt);
  const at::Tensor bt = at::mv(a, beta.to(dt)).view({count, 1, 1});  // (count, 1, 1)
  at::Tensor pre = raw;
  if (normal.defined()) {
    const at::Tensor level =
        noise_level.to(dt).index_select(0, centre_.narrow(0, t_begin, count).to(raw.device()))
            .view({count, 1, 1});
    pre = raw + normal.to(dt) * raw.std({1}, /*unbiased=*/true, /*keepdim=*/true) * level;
  }
  return at::relu(bt * pre) + (uniform.to(dt) * 1e-5 + 1e-6);
}

MegHeadImpl::Outputs MegHeadImpl::Forward(const at::Tensor& block_cls, const at::Tensor& text_norm,
                                          double logit_scale_exp, const at::Tensor& normal,
                                          const at::Tensor& uniform) const {
  const at::Tensor h = Mix(block_cls, MixWeights());                    // (T, B, E)
  const at::Tensor raw = Logits(h, text_norm, logit_scale_exp);          // (T, B, K)
  return {Finish(raw, 0, normal, uniform), h};
}

at::Tensor MegHeadImpl::Embeddings(const at::Tensor& block_cls, const at::Tensor& text_norm,
                                   double logit_scale_exp, bool noise,
                                   at::Generator generator) const {
  const std::vector<int64_t> draws{timepoints(), block_cls.size(1), text_norm.size(0)};
  // Drawn on the generator's device (the trainers' generators are CPU ones, a function of (seed,
  // step)) and moved to the features' device: the same draws on CPU and GPU.
  const auto opts = block_cls.options().requires_grad(false).device(
      generator.defined() ? generator.device() : block_cls.device());
  at::Tensor normal;
  if (noise) normal = at::randn(draws, generator, opts).to(block_cls.device());
  at::Tensor uniform = at::rand(draws, generator, opts).to(block_cls.device());
  return Forward(block_cls, text_norm, logit_scale_exp, normal, uniform).embedding;
}

}  // namespace cliphba::model
