// ConvertReferencePth; see convert.h.
#include "predict/convert.h"

#include <torch/utils.h>  // torch::manual_seed

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "data/prompts.h"
#include "io/csv.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/dora.h"
#include "predict/model_files.h"

namespace cliphba::predict {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kPrefix = "clip_model.";
constexpr const char* kOriginal = ".attn.out_proj.original_layer.";

using detail::EndsWith;

// Block indices i of "<tower>resblocks.<i>.attn.out_proj.m" among names.
std::vector<int64_t> AdaptedBlocks(const std::vector<std::string>& names, const std::string& tower) {
  std::vector<int64_t> out;
  const std::string head = tower + "resblocks.";
  for (const auto& n : names) {
    if (n.rfind(head, 0) != 0 || !EndsWith(n, ".attn.out_proj.m")) continue;
    out.push_back(std::stoll(n.substr(head.size(), n.find('.', head.size()) - head.size())));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ConvertResult ConvertReferencePth(const ConvertOptions& o) {
  if (o.in.empty()) throw ConfigError("convert: FILE.pth is required");
  if (o.out.empty()) throw ConfigError("--out FILE.safetensors is required");
  if (!(o.dora_alpha > 0)) throw ConfigError("--dora-alpha must be > 0");
  CheckOutputPath("--out", o.out, o.force, {o.in, o.text.prompts, o.text.vocab, o.text.labels});
  // The text options first: they are cheap to check, the checkpoint is not.
  std::vector<std::string> prompts, labels;
  if (!o.text.prompts.empty()) {
    prompts = data::ReadPrompts(o.text.prompts, "--prompts");
    labels = o.text.labels.empty() ? prompts : io::ReadNameList(o.text.labels);
    if (labels.size() != prompts.size())
      throw DataError(o.text.labels + " (--labels): " + std::to_string(labels.size()) +
                      " labels for " + std::to_string(prompts.size()) + " prompts");
  } else if (!o.text.labels.empty()) {
    throw ConfigError("--labels needs --prompts (one label per prompt)");
  }
  if (model::DetectFormat(o.in) != model::CheckpointFormat::kTorchZip)
    throw DataError(o.in + ": a " + model::FormatName(model::DetectFormat(o.in)) +
                    " file; --from reference-pth expects the reference's torch.save state dict");
  model::StateDict sd = model::LoadCheckpoint(o.in);  // "module." already stripped

  // Keys: clip_model.* only; original_layer.* become the base weights of adapted blocks.
  model::StateDict base, dora;
  std::vector<std::string> unknown, dora_names;
  for (auto& [name, t] : sd.entries) {
    if (name.rfind(kPrefix, 0) != 0) {
      unknown.push_back(name);
      continue;
    }
    std::string key = name.substr(std::string(kPrefix).size());
    const size_t at = key.find(kOriginal);
    if (at != std::string::npos) {
      const std::string what = key.substr(at + std::string(kOriginal).size());
      if (what == "weight") base.entries.emplace_back(key.substr(0, at) + ".attn.out_proj.weight", t);
      else if (what != "bias") unknown.push_back(name);  // the wrapped bias duplicates DoRA's
      continue;
    }
    if (IsDoraTensorName(key)) {
      dora.entries.emplace_back(key, t);
      dora_names.push_back(key);
    } else {
      base.entries.emplace_back(key, t);
    }
  }
  if (!unknown.empty()) {
    std::string msg = o.in + ": " + std::to_string(unknown.size()) +
                      " key(s) that are not a CLIP-HBA-Behavior state dict's (expected "
                      "[module.]clip_model.<CLIP key>; MEG reference checkpoints are not "
                      "supported yet):";
    for (size_t i = 0; i < unknown.size() && i < 20; ++i) msg += "\n  " + unknown[i];
    if (unknown.size() > 20) msg += "\n  ... and " + std::to_string(unknown.size() - 20) + " more";
    throw DataError(msg);
  }
  if (dora.entries.empty()) throw DataError(o.in + ": no DoRA tensors (attn.out_proj.m, ...)");

  // The adapted blocks must be the last ones of each tower (apply_dora_to_ViT's choice).
  model::ClipConfig cfg;
  try {
    cfg = model::InferClipConfig(base.entries);
  } catch (const DataError& e) {
    throw DataError(o.in + ": its clip_model.* tensors are not a CLIP ViT: " + e.what());
  }
  const std::vector<int64_t> vis = AdaptedBlocks(dora_names, "visual.transformer.");
  const std::vector<int64_t> txt = AdaptedBlocks(dora_names, "transformer.");
  auto last_ones = [](const std::vector<int64_t>& b, int64_t depth) {
    for (size_t i = 0; i < b.size(); ++i)
      if (b[i] != depth - int64_t(b.size()) + int64_t(i)) return false;
    return true;
  };
  if (!last_ones(vis, cfg.vision_layers) || !last_ones(txt, cfg.transformer_layers))
    throw DataError(o.in + ": DoRA on blocks that are not the last ones of their tower; "
                           "cliphba adapts the last vision/text blocks as the reference does");
  const at::Tensor* a = dora.Find(dora_names[0].substr(0, dora_names[0].rfind('.')) + ".delta_D_A");
  if (a == nullptr || a->dim() != 2) throw DataError(o.in + ": a DoRA block without delta_D_A");
  const int64_t rank = a->size(0);

  // Validate: the base loads into a CLIP, DoRA of these settings takes every tensor.
  model::Clip clip(cfg);
  try {
    model::LoadStateDict(clip, base.entries);
  } catch (const DataError& e) {
    throw DataError(o.in + ": " + e.what());
  }
  torch::manual_seed(0);
  model::ApplyDora(clip, int64_t(vis.size()), int64_t(txt.size()), rank, o.dora_alpha, false);
  model::StateDict check = dora;
  for (const auto& [name, t] : base.entries)  // DoRA's bias has the Linear's name
    if (EndsWith(name, ".attn.out_proj.bias") &&
        dora.Find(name.substr(0, name.size() - 4) + "m") != nullptr)
      check.entries.emplace_back(name, t);
  model::LoadDora(clip, check, "", o.in, "does not fit a CLIP with DoRA of its own shapes:");

  json meta = {{"dora",
                {{"rank", rank},
                 {"alpha", o.dora_alpha},
                 {"vision_blocks", int64_t(vis.size())},
                 {"text_blocks", int64_t(txt.size())},
                 {"train_magnitude", false}}},
               {"source", fs::absolute(o.in).lexically_normal().string()},
               {"source_sha256", Sha256HexOfFile(o.in)},
               {"normalization", o.normalization}};
  if (!prompts.empty()) {
    meta["prompt_texts"] = prompts;
    meta["labels"] = labels;
  }
  if (!o.text.vocab.empty()) meta["vocab"] = fs::absolute(o.text.vocab).lexically_normal().string();
  if (!o.text.vocab_remap.empty()) meta["vocab_remap"] = o.text.vocab_remap == "none" ? "" : o.text.vocab_remap;

  model::StateDict out;
  out.entries = base.entries;
  out.entries.insert(out.entries.end(), dora.entries.begin(), dora.entries.end());
  model::SaveSafetensors(o.out, out,
                         {{"format", detail::kConvertedFormat}, {"model", meta.dump()}});
  ConvertResult r;
  r.n_tensors = int64_t(out.entries.size());
  r.vision_blocks = int64_t(vis.size());
  r.text_blocks = int64_t(txt.size());
  r.rank = rank;
  r.source_sha256 = meta["source_sha256"].get<std::string>();
  return r;
}

}  // namespace cliphba::predict
