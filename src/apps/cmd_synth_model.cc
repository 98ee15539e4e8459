// `cliphba synth model`: a seeded random-init OpenAI CLIP ViT (config synth.model) as safetensors.
//
// The init is model::Clip's fresh one (OpenAI's initialize_parameters for the text side, PyTorch
// defaults for the vision blocks, as OpenAI's own random CLIP), drawn from torch's generator seeded
// with synth.model.seed, so a seed gives the same file. Key names and order are OpenAI's (what
// every cliphba loader and the reference build_model read), plus the three int64 scalar buffers
// OpenAI's archives carry. This is a random network: it stands in for a pretrained CLIP in demos
// and tests (no checkpoint can be downloaded here), as the shared tiny fixture does, but with as
// many vision blocks as the MEG head needs.
// With synth.model.pretrain_steps > 0 the random init is then pre-trained contrastively on
// captioned images of the shapes world (train/pretrain.h), so that, like a real CLIP, the base
// model's features carry what captions name before any fine-tuning (issue 17).
#include <fmt/core.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/tokenizer.h"
#include "train/pretrain.h"

namespace cliphba::apps {

int RunSynthModel(const CommonArgs& args, bool force) {
  namespace fs = std::filesystem;
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  const config::SynthModelOptions& o = cfg.synth_model;
  if (o.out.empty()) throw ConfigError("synth.model.out is empty: name the safetensors file");
  if (fs::exists(o.out) && !force)
    throw ConfigError(o.out + ": exists (synth.model.out): refusing to replace it; pass --force "
                      "to replace it");
  const model::ClipConfig c = model::MakeClipConfig(
      o.image_resolution, o.vision_patch_size, o.vision_width, o.vision_layers, o.embed_dim,
      o.text_width, o.text_layers, o.vocab_size, o.context_length);
  torch::manual_seed(uint64_t(o.seed));
  model::Clip clip(c);
  train::PretrainSummary pre;
  if (o.pretrain_steps > 0) {
    const model::ClipTokenizer tokenizer(o.vocab);
    train::PretrainOptions po;
    po.steps = o.pretrain_steps;
    po.batch = o.pretrain_batch;
    po.lr = o.pretrain_lr;
    po.seed = uint64_t(o.seed);
    po.progress_seconds = cfg.train_behavior.progress_seconds;
    po.normalization = cfg.train_behavior.normalization;  // as the fine-tune will load images
    pre = train::PretrainOnShapesWorld(clip, tokenizer, po);
    LOG_INFO("pre-trained {} steps in {:.1f} s: loss {:.4f} -> {:.4f} (uniform {:.4f}); held-out "
             "zero-shot caption top-1 {:.3f} (chance {:.4f}), colour {:.3f} shape {:.3f} stripes "
             "{:.3f} size {:.3f}",
             pre.steps, pre.seconds, pre.first_loss, pre.final_loss, pre.chance_loss, pre.top1,
             1.0 / double(pre.n_captions), pre.colour, pre.shape, pre.texture, pre.size);
  }

  model::StateDict sd;
  // OpenAI's order: the model's own parameters, then its three scalar buffers, then sub-modules.
  const auto params = clip->named_parameters(/*recurse=*/true);
  int64_t n_params = 0;
  for (const auto& p : params) {
    if (p.key().find('.') == std::string::npos)
      sd.entries.emplace_back(p.key(), p.value().detach().contiguous().clone());
  }
  sd.entries.emplace_back("input_resolution", at::scalar_tensor(o.image_resolution, at::kLong));
  sd.entries.emplace_back("context_length", at::scalar_tensor(o.context_length, at::kLong));
  sd.entries.emplace_back("vocab_size", at::scalar_tensor(o.vocab_size, at::kLong));
  for (const auto& p : params) {
    n_params += p.value().numel();
    if (p.key().find('.') != std::string::npos)
      sd.entries.emplace_back(p.key(), p.value().detach().contiguous().clone());
  }
  const fs::path parent = fs::path(o.out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec)
      throw IoError(parent.string() +
                    ": cannot create the folder of synth.model.out: " + ec.message());
  }
  std::map<std::string, std::string> meta = {
      {"format", "pt"},
      {"key_names", "openai-clip (not HuggingFace)"},
      {"source", o.pretrain_steps > 0
                     ? "cliphba synth model: CLIP ViT pre-trained on the shapes world"
                     : "cliphba synth model: random-init CLIP ViT"},
      {"seed", std::to_string(o.seed)}};
  if (o.pretrain_steps > 0) {
    meta["pretrain_steps"] = std::to_string(o.pretrain_steps);
    meta["pretrain_batch"] = std::to_string(o.pretrain_batch);
    meta["pretrain_lr"] = fmt::format("{}", o.pretrain_lr);
    meta["pretrain_threads"] = std::to_string(at::get_num_threads());
    meta["pretrain_final_loss"] = fmt::format("{:.6f}", pre.final_loss);
    meta["pretrain_heldout_top1"] = fmt::format("{:.4f}", pre.top1);
  }
  model::SaveSafetensors(o.out, sd, meta);
  LOG_INFO(
      "{} CLIP ViT (seed {}): {} vision blocks x width {}, {} px / patch {}, E {}, "
      "text {} x {}, vocab {}: {} parameters",
      o.pretrain_steps > 0 ? "pre-trained" : "random", o.seed, o.vision_layers, o.vision_width,
      o.image_resolution, o.vision_patch_size, o.embed_dim,
      o.text_layers, o.text_width, o.vocab_size, n_params);
  if (args.json) {
    fmt::print("{}\n", nlohmann::json{{"out", o.out},
                                      {"vision_layers", o.vision_layers},
                                      {"parameters", n_params},
                                      {"pretrain_steps", o.pretrain_steps},
                                      {"pretrain_final_loss", pre.final_loss},
                                      {"pretrain_heldout_top1", pre.top1},
                                      {"config_hash", config::ConfigHash(cfg)}}
                           .dump());
    return 0;
  }
  if (o.pretrain_steps > 0)
    fmt::print("CLIP ViT pre-trained on the shapes world ({} steps, held-out caption top-1 {:.3f}): "
               "{} vision blocks, {} parameters -> {}\n",
               o.pretrain_steps, pre.top1, o.vision_layers, n_params, o.out);
  else
    fmt::print("random CLIP ViT: {} vision blocks, {} parameters -> {}\n", o.vision_layers,
               n_params, o.out);
  return 0;
}

}  // namespace cliphba::apps
