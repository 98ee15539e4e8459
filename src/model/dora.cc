#include "model/dora.h"

#include <torch/nn/init.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <unordered_map>
#include <string>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/clip.h"

namespace cliphba::model {

DoraLinearImpl::DoraLinearImpl(const at::Tensor& weight, const at::Tensor& bias_in,
                               const DoraOptions& options)
    : options_(options), scaling_(options.alpha / static_cast<double>(options.rank)) {
  TORCH_CHECK(weight.dim() == 2, "DoRA: weight must be (out, in), got ", weight.sizes());
  TORCH_CHECK(bias_in.defined() && bias_in.dim() == 1 && bias_in.size(0) == weight.size(0),
              "DoRA: bias must be (", weight.size(0), ")");
  TORCH_CHECK(options.rank >= 1, "DoRA: rank must be >= 1, got ", options.rank);
  TORCH_CHECK(options.dropout >= 0.0 && options.dropout < 1.0, "DoRA: dropout must be in [0, 1)");
  torch::NoGradGuard no_grad;
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  const at::Tensor wt = weight.detach().t();     // (in, out)
  const at::Tensor magnitude = wt.norm(2, {0});  // (out)
  TORCH_CHECK(magnitude.gt(0).all().item<bool>(), "DoRA: weight has a zero row");
  m = register_parameter("m", magnitude.clone(), options.train_magnitude);
  D = register_buffer("D", (wt / magnitude).contiguous());  // (in, out)
  at::Tensor a = at::zeros({options.rank, out}, weight.options());
  at::Tensor b = at::zeros({in, options.rank}, weight.options());
  torch::nn::init::kaiming_uniform_(a, /*a=*/std::sqrt(5.0));
  torch::nn::init::kaiming_uniform_(b, /*a=*/std::sqrt(5.0));
  delta_D_A = register_parameter("delta_D_A", a);
  delta_D_B = register_parameter("delta_D_B", b);
  bias = register_parameter("bias", bias_in.detach().clone(), /*requires_grad=*/false);
}

at::Tensor DoraLinearImpl::AdaptedWeight(const at::Tensor& delta) const {
  const at::Tensor dn = D + delta;                                   // (in, out)
  const at::Tensor norm = dn.norm(2, {0}, /*keepdim=*/true) + 1e-8;  // (1, out)
  return (dn / norm * m).t();                                        // (out, in)
}

at::Tensor DoraLinearImpl::Weight() const {
  return AdaptedWeight(at::matmul(delta_D_B, delta_D_A) * scaling_);  // delta: (in, out)
}

at::Tensor DoraLinearImpl::forward(const at::Tensor& x) {
  at::Tensor delta = at::matmul(delta_D_B, delta_D_A) * scaling_;  // (in, out)
  if (is_training() && options_.dropout > 0) delta = at::dropout(delta, options_.dropout, true);
  return at::linear(x, AdaptedWeight(delta), bias);  // (..., out)
}

void ApplyDora(Clip& clip, int64_t last_vision_blocks, int64_t last_text_blocks, int64_t rank,
               double alpha, bool train_magnitude) {
  Transformer& vision = clip->visual->transformer;
  Transformer& text = clip->transformer;
  CLIPHBA_CHECK(last_vision_blocks >= 0 && last_vision_blocks <= vision->layers(), ConfigError,
                "DoRA: last_vision_blocks = " + std::to_string(last_vision_blocks) +
                    " outside [0, " + std::to_string(vision->layers()) + "]");
  CLIPHBA_CHECK(last_text_blocks >= 0 && last_text_blocks <= text->layers(), ConfigError,
                "DoRA: last_text_blocks = " + std::to_string(last_text_blocks) + " outside [0, " +
                    std::to_string(text->layers()) + "]");
  CLIPHBA_CHECK(rank >= 1, ConfigError, "DoRA: rank must be >= 1, got " + std::to_string(rank));

  for (auto& p : clip->parameters()) p.requires_grad_(false);
  DoraOptions options;
  options.rank = rank;
  options.alpha = alpha;
  options.dropout = 0.1;
  options.train_magnitude = train_magnitude;
  auto adapt = [&](Transformer& tower, int64_t count) {
    for (int64_t i = tower->layers() - count; i < tower->layers(); ++i) {
      ResidualAttentionBlock& block = tower->block(i);
      at::Tensor weight, bias;
      {
        torch::NoGradGuard no_grad;
        weight = block->OutProjWeight().detach();  // (W, W); W' if already adapted
        bias = block->OutProjBias().detach();      // (W)
      }
      block->SetOutProjAdapter(DoraLinear(weight, bias, options));
    }
  };
  adapt(vision, last_vision_blocks);
  adapt(text, last_text_blocks);
}

std::vector<std::pair<std::string, at::Tensor>> DoraTensors(Clip& clip) {
  std::vector<std::string> prefixes;
  for (const auto& item : clip->named_buffers()) {
    const std::string& k = item.key();
    const std::string tail = ".attn.out_proj.D";
    if (k.size() > tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0)
      prefixes.push_back(k.substr(0, k.size() - 1));
  }
  auto adapted = [&](const std::string& k) {
    for (const auto& p : prefixes)
      if (k.rfind(p, 0) == 0) return true;
    return false;
  };
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : clip->named_parameters())
    if (adapted(item.key())) out.emplace_back(item.key(), item.value());
  for (const auto& item : clip->named_buffers())
    if (adapted(item.key())) out.emplace_back(item.key(), item.value());
  return out;
}

void LoadDora(Clip& clip, const StateDict& sd, const std::string& prefix,
              const std::string& source, const std::string& what) {
  std::unordered_map<std::string, at::Tensor> want;
  for (const auto& [name, t] : DoraTensors(clip)) want[name] = t;
  std::string problems;
  for (const auto& [name, t] : sd.entries) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto it = want.find(name);
    if (it == want.end()) {
      problems += "\n  unexpected tensor " + name;
      continue;
    }
    if (it->second.sizes() != t.sizes())
      problems += "\n  " + name + ": shape " + fmt::format("{}", fmt::join(t.sizes(), " x ")) +
                  ", the model has " + fmt::format("{}", fmt::join(it->second.sizes(), " x "));
  }
  for (const auto& [name, t] : want)
    if (sd.Find(name) == nullptr) problems += "\n  missing tensor " + name;
  if (!problems.empty()) throw DataError(source + ": " + what + problems);
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : sd.entries)
    if (name.rfind(prefix, 0) == 0) want[name].copy_(t);
}

}  // namespace cliphba::model
