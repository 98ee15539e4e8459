// The batched CLIP-HBA-MEG head; see meg_head.h.
#include "model/meg_head.h"

#include <cmath>
#include <cstdio>
#include <string>

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

MegHead::MegHead(const MegHeadOptions& o, int64_t n_blocks, const at::Tensor& richness,
                 const at::Tensor& beta, const at::Tensor& noise, Init init) {
  MegWindows w = MegTrainWindows(o);
  times_ = MegTrainTimes(o);
  index_ = w.index;
  averaging_ = w.averaging;
  for (const auto& [name, c] : {std::pair<const char*, const at::Tensor&>{"richness", richness},
                                {"beta", beta},
                                {"noise", noise}})
    if (c.dim() != 1 || c.size(0) != o.axis_size)
      throw DataError(std::string("MEG ") + name + " curve has shape [" +
                      std::to_string(c.dim() == 1 ? c.size(0) : -1) + "], expected [" +
                      std::to_string(o.axis_size) + "] (one value per timepoint of the axis)");
  if (n_blocks < 1) throw DataError("MEG head: the vision tower has no blocks");
  at::Tensor r = richness.to(at::kDouble).contiguous(), bt = beta.to(at::kDouble).contiguous();
  s_ = at::mv(averaging_, r);
  b_ = at::mv(averaging_, bt);
  noise_ = noise.to(at::kDouble).index_select(0, at::tensor(index_, at::kLong)).contiguous();
  init_ = init;
  wfr = at::zeros({o.axis_size, n_blocks}, at::kFloat);
  ResetWfr();
  wfr.set_requires_grad(true);
}

void MegHead::ResetWfr() {
  at::NoGradGuard no_grad;
  const int64_t l = wfr.size(1);
  if (init_ == Init::kRamp && l > 1) {
    wfr.copy_(at::arange(l, at::kDouble).div(double(l - 1)).unsqueeze(0).expand_as(wfr));
  } else {
    wfr.zero_();
    wfr.select(1, l - 1).fill_(1.0);
  }
}

at::Tensor MegHead::BlockWeights() const {
  at::Tensor mix = at::mm(averaging_.to(wfr.scalar_type()), wfr);  // (T, L)
  at::Tensor lo = mix.amin({1}, true), hi = mix.amax({1}, true);
  at::Tensor mm = (mix - lo) / (hi - lo + 1e-10);
  return at::relu(mm / (mm.sum({1}, true) + 1e-10));
}

at::Tensor MegHead::Embeddings(const at::Tensor& block_cls, const at::Tensor& text_norm,
                               double logit_scale_exp, bool noise, at::Generator generator) const {
  TORCH_CHECK(block_cls.dim() == 3 && block_cls.size(0) == wfr.size(1),
              "MegHead: expected block_cls (L=", wfr.size(1), ", B, E), got ", block_cls.sizes());
  const int64_t t = timepoints(), l = block_cls.size(0), b = block_cls.size(1),
                e = block_cls.size(2), k = text_norm.size(0);
  const auto dt = block_cls.scalar_type();
  at::Tensor wts = BlockWeights().to(dt) * s_.to(dt).unsqueeze(1);                   // (T, L)
  at::Tensor h = at::mm(wts, block_cls.reshape({l, b * e})).view({t, b, e});         // (T, B, E)
  at::Tensor raw = at::relu(at::matmul(h, text_norm.to(dt).t()) * logit_scale_exp);  // (T, B, K)
  at::Tensor bt = b_.to(dt).view({t, 1, 1});
  const auto opts = block_cls.options().requires_grad(false);
  at::Tensor pre = raw;
  if (noise) {
    at::Tensor n = at::randn({t, b, k}, generator, opts);
    pre =
        raw + n * raw.std({1}, /*unbiased=*/true, /*keepdim=*/true) * noise_.to(dt).view({t, 1, 1});
  }
  at::Tensor jitter = at::rand({t, b, k}, generator, opts) * 1e-5 + 1e-6;
  return at::relu(bt * pre) + jitter;
}

}  // namespace cliphba::model
