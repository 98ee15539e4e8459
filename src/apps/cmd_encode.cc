// `cliphba encode`: feature extraction with a CLIP checkpoint, as THINGSvision-style tools do.
// Writes float32 NPY files: image_features (N x E), block_cls_proj (blocks x N x E), and with
// --prompts text_features (K x E) and hba_logits (N x K); image_names.txt lists the images of
// --images DIR in the order of the rows.
#include <fmt/core.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/staged_folder.h"
#include "data/image.h"
#include "data/prompts.h"
#include "io/csv.h"
#include "io/npy.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/known_checkpoints.h"
#include "model/precision.h"
#include "model/tokenizer.h"

namespace cliphba::apps {

namespace {

// Every file encode may write into --out.
constexpr const char* kEncodeOutputs[] = {"image_features.npy", "block_cls_proj.npy",
                                          "text_features.npy", "hba_logits.npy", "image_names.txt"};

std::vector<std::string> ImageFiles(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw IoError(dir + ": not a folder of images");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png"))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw DataError(dir + ": no .jpg, .jpeg or .png images found");
  return files;
}

}  // namespace

int RunEncode(const CommonArgs& args, const EncodeArgs& e) {
  if (e.checkpoint.empty()) throw ConfigError("--checkpoint FILE is required");
  if (e.out_dir.empty()) throw ConfigError("--out DIR is required");
  {  // Before any work: the output must be a folder (or not exist yet) without an earlier
     // encode's files, unless --force (then those not written again are removed, so the folder
     // never mixes two runs).
    std::error_code ec;
    if (std::filesystem::exists(e.out_dir, ec) && !std::filesystem::is_directory(e.out_dir, ec))
      throw ConfigError("--out " + e.out_dir + " is a file; encode writes a folder of NPY files");
    for (const char* f : kEncodeOutputs) {
      const std::string p = (std::filesystem::path(e.out_dir) / f).string();
      if (!e.force && std::filesystem::exists(p, ec))
        throw ConfigError("--out " + e.out_dir + " holds an earlier encode (" + p +
                          "): use --force to replace its files, or choose another --out");
    }
  }
  if (e.images_dir.empty() == e.images_npy.empty())
    throw ConfigError("give exactly one of --images DIR and --images-npy ARRAY.npy");
  const model::Precision precision = model::ParsePrecision(e.precision, "--precision");
  if (!e.prompts.empty() && e.vocab.empty())
    throw ConfigError("--prompts needs --vocab BPE.gz (bpe_simple_vocab_16e6.txt.gz)");
  if (!e.vocab_remap.empty() && e.vocab_remap != "tiny")
    throw ConfigError("--vocab-remap '" + e.vocab_remap + "' is unknown; expected tiny");
  ApplyRuntime("info", 0);

  model::CheckKnownCheckpoint(e.checkpoint, /*strict=*/false);  // a warning for an altered copy
  model::StateDict sd = model::LoadCheckpoint(e.checkpoint);
  if (sd.code_bearing)
    LOG_WARN(
        "{} is a TorchScript archive: it carries code; cliphba reads only its tensors. "
        "Prefer safetensors.",
        e.checkpoint);
  model::ClipConfig cfg = model::InferClipConfig(sd.entries);
  model::Clip clip(cfg);
  model::LoadStateDict(clip, sd.entries);
  clip->eval();
  torch::NoGradGuard no_grad;

  // Prompts first: a bad prompts file fails before the images are read.
  at::Tensor text_features;
  if (!e.prompts.empty()) {
    model::ClipTokenizer tokenizer(e.vocab);
    at::Tensor ids =
        tokenizer.TokenizeBatch(data::ReadPrompts(e.prompts, "--prompts"), cfg.context_length);
    if (e.vocab_remap == "tiny") ids = model::RemapTinyVocab(ids);
    if (ids.max().item<int64_t>() >= cfg.vocab_size)
      throw DataError(
          e.checkpoint + " has a " + std::to_string(cfg.vocab_size) +
          "-token vocabulary but the prompts use larger ids" +
          (cfg.vocab_size == 4096 ? " (tiny fixture models need --vocab-remap tiny)" : ""));
    text_features = clip->EncodeText(ids);  // (K, E), all prompts as one batch
  }

  std::vector<at::Tensor> features, blocks, logits;
  // Per batch, as `predict behavior` does: the logits do not depend on how many images there are.
  // The image tower in --precision; its outputs are float32 whatever it is.
  auto encode = [&](const at::Tensor& images) { return clip->EncodeImage(images, true, precision); };
  auto add = [&](const model::ImageOutputs& out) {
    features.push_back(out.features);
    blocks.push_back(at::stack(out.block_cls_proj));
    if (text_features.defined()) logits.push_back(clip->HbaLogits(out.features, text_features));
  };
  std::vector<std::string> names;
  const int64_t batch = 32;
  if (!e.images_npy.empty()) {
    at::Tensor images = io::ReadNpy(e.images_npy);
    if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != cfg.image_resolution ||
        images.size(3) != cfg.image_resolution || images.scalar_type() != at::kFloat)
      throw DataError(e.images_npy + ": expected a normalised float32 (N, 3, " +
                      std::to_string(cfg.image_resolution) + ", " +
                      std::to_string(cfg.image_resolution) + ") array for this checkpoint");
    // NaN/Inf would flow through the tower into NaN features (and an exit code 0).
    const at::Tensor bad = at::logical_not(at::isfinite(images)).flatten(1).any(1);
    if (bad.any().item<bool>()) {
      const int64_t first = bad.nonzero()[0][0].item<int64_t>();
      throw DataError(e.images_npy + ": image " + std::to_string(first) + " (of " +
                      std::to_string(images.size(0)) + ", " +
                      std::to_string(bad.sum().item<int64_t>()) +
                      " in all) contains NaN or Inf values; expected finite normalised pixels");
    }
    for (int64_t i = 0; i < images.size(0); i += batch) {
      add(encode(images.narrow(0, i, std::min(batch, images.size(0) - i))));
    }
  } else {
    std::vector<std::string> files = ImageFiles(e.images_dir);
    data::ImageOptions opts = data::ImageOptionsFor(e.normalization, cfg.image_resolution);
    data::ImageLoader loader(files, opts, /*threads=*/2, /*prefetch=*/2 * batch);
    for (int64_t i = 0; i < loader.size(); i += batch) {
      std::vector<int64_t> idx;
      for (int64_t k = i; k < std::min(loader.size(), i + batch); ++k) idx.push_back(k);
      add(encode(loader.Batch(idx)));
    }
    for (const auto& f : files) names.push_back(std::filesystem::path(f).filename().string());
  }
  at::Tensor image_features = at::cat(features);      // (N, E)
  at::Tensor block_cls = at::cat(blocks, /*dim=*/1);  // (blocks, N, E)

  // Staging (core/staged_folder.h): a new --out appears complete by one rename; an existing one
  // (--force) gets the new files, and loses the earlier encode's files not written again.
  StagedFolder staged(e.out_dir, "encode");
  auto path = [&](const char* f) { return staged.path() + "/" + f; };
  io::WriteNpy(path("image_features.npy"), image_features.contiguous());
  io::WriteNpy(path("block_cls_proj.npy"), block_cls.contiguous());
  if (text_features.defined()) {
    io::WriteNpy(path("text_features.npy"), text_features.contiguous());
    io::WriteNpy(path("hba_logits.npy"), at::cat(logits).contiguous());
  }
  if (!names.empty()) io::WriteNameList(path("image_names.txt"), names);
  staged.Commit(std::vector<std::string>(std::begin(kEncodeOutputs), std::end(kEncodeOutputs)));
  if (args.json) {
    fmt::print("{}\n",
               nlohmann::json{{"n_images", image_features.size(0)},
                              {"embed_dim", cfg.embed_dim},
                              {"blocks", block_cls.size(0)},
                              {"n_prompts", text_features.defined() ? text_features.size(0) : 0},
                              {"out", e.out_dir}}
                   .dump());
  } else {
    fmt::print("encoded {} images ({} blocks, E = {}){} into {}\n", image_features.size(0),
               block_cls.size(0), cfg.embed_dim,
               text_features.defined() ? fmt::format(" and {} prompts", text_features.size(0)) : "",
               e.out_dir);
  }
  return 0;
}

int RunTokenize(const CommonArgs& args, const std::string& vocab) {
  if (vocab.empty()) throw ConfigError("--vocab BPE.gz is required");
  model::ClipTokenizer tokenizer(vocab);
  nlohmann::json all = nlohmann::json::array();
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<int64_t> ids = tokenizer.Tokenize(line);
    if (args.json) {
      all.push_back(ids);
    } else {
      std::string text;
      for (size_t i = 0; i < ids.size(); ++i) text += (i ? " " : "") + std::to_string(ids[i]);
      fmt::print("{}\n", text);
    }
  }
  if (args.json) fmt::print("{}\n", all.dump());
  return 0;
}

}  // namespace cliphba::apps
