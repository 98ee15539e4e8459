// LoadBehaviorModel: see behavior_model.h.
#include "predict/behavior_model.h"

#include <torch/utils.h>  // torch::manual_seed

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/prompts.h"
#include "io/csv.h"
#include "model/checkpoint.h"
#include "model/dora.h"
#include "model/known_checkpoints.h"
#include "model/tokenizer.h"
#include "predict/model_files.h"

namespace cliphba::predict {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using detail::EndsWith;
using detail::kConvertedFormat;
using detail::kMegFormat;
using detail::kStage1Format;

// The DoRA settings and text record of a model, wherever they came from.
struct Recorded {
  int64_t rank = 0, vision_blocks = 0, text_blocks = 0;
  double alpha = 0;
  bool train_magnitude = false;
  std::vector<std::string> prompts, labels;
  std::string vocab, vocab_remap, normalization = "things";
};

Recorded FromMeta(const json& meta, const std::string& where) {
  Recorded r;
  try {
    const json& d = meta.at("dora");
    r.rank = d.at("rank").get<int64_t>();
    r.alpha = d.at("alpha").get<double>();
    r.vision_blocks = d.at("vision_blocks").get<int64_t>();
    r.text_blocks = d.at("text_blocks").get<int64_t>();
    r.train_magnitude = d.value("train_magnitude", false);
    if (meta.contains("prompt_texts")) r.prompts = meta["prompt_texts"].get<std::vector<std::string>>();
    if (meta.contains("labels")) r.labels = meta["labels"].get<std::vector<std::string>>();
    r.vocab = meta.value("vocab", std::string());
    r.vocab_remap = meta.value("vocab_remap", std::string());
    r.normalization = meta.value("normalization", std::string("things"));
  } catch (const json::exception& e) {
    throw DataError(where + ": corrupt model metadata: " + e.what());
  }
  return r;
}

model::Clip BuildClip(const std::vector<std::pair<std::string, at::Tensor>>& entries,
                      const std::string& source) {
  model::ClipConfig cfg;
  try {
    cfg = model::InferClipConfig(entries);
  } catch (const DataError& e) {
    throw DataError(source + ": not a CLIP ViT checkpoint: " + e.what());
  }
  model::Clip clip(cfg);
  try {
    model::LoadStateDict(clip, entries);
  } catch (const DataError& e) {
    throw DataError(source + ": " + e.what());
  }
  return clip;
}

void AdaptAndLoad(model::Clip& clip, const Recorded& r, const model::StateDict& dora,
                  const std::string& source) {
  const auto& c = clip->config();
  if (r.vision_blocks > c.vision_layers || r.text_blocks > c.transformer_layers)
    throw DataError(source + ": DoRA on " + std::to_string(r.vision_blocks) + " vision and " +
                    std::to_string(r.text_blocks) + " text blocks, but the base CLIP has " +
                    std::to_string(c.vision_layers) + " and " +
                    std::to_string(c.transformer_layers) + ": a model of another architecture");
  torch::manual_seed(0);  // A and B are overwritten by the file's
  model::ApplyDora(clip, r.vision_blocks, r.text_blocks, r.rank, r.alpha, r.train_magnitude);
  model::LoadDora(clip, dora, "", source, "does not fit its base CLIP:");
}

}  // namespace

bool IsDoraTensorName(const std::string& name) {
  for (const char* tail : {".attn.out_proj.m", ".attn.out_proj.D", ".attn.out_proj.delta_D_A",
                           ".attn.out_proj.delta_D_B"})
    if (EndsWith(name, tail)) return true;
  return false;
}

BehaviorModel LoadBehaviorModel(const std::string& model_arg, const TextArgs& text, bool strict) {
  if (model_arg.empty()) throw ConfigError("--model is required");
  std::error_code ec;
  if (!fs::exists(model_arg, ec)) throw IoError(model_arg + " (--model): does not exist");
  BehaviorModel m;
  Recorded rec;
  // A folder or a best.safetensors with best.json beside it: a `train` output.
  const fs::path folder = fs::is_directory(model_arg, ec) ? fs::path(model_arg)
                                                           : fs::path(model_arg).parent_path();
  const fs::path json_path = folder / "best.json";
  const bool train_output =
      fs::is_directory(model_arg, ec) ||
      (fs::path(model_arg).filename() == "best.safetensors" && fs::exists(json_path, ec));
  if (train_output) {
    if (!fs::exists(json_path, ec))
      throw IoError(model_arg + " (--model): a folder without best.json: not a model folder of "
                                "`cliphba train behavior` (nor a finished one)");
    const json meta = detail::ReadJsonFile(json_path.string(), "cannot open");
    const std::string format = meta.value("format", std::string());
    if (format == kMegFormat)
      throw ConfigError(model_arg + " (--model) is a MEG model (" + json_path.string() +
                        "): use `cliphba predict meg --model " + model_arg + "`");
    if (format != kStage1Format)
      throw DataError(json_path.string() + ": format '" + format + "', expected '" +
                      kStage1Format + "'");
    rec = FromMeta(meta, json_path.string());
    m.kind = "behavior";
    m.model_file = (folder / "best.safetensors").string();
    m.base_checkpoint = meta.value("base_checkpoint", std::string());
    m.batch = meta.value("batch", int64_t(0));
    if (m.base_checkpoint.empty()) throw DataError(json_path.string() + ": no base_checkpoint");
    model::CheckKnownCheckpoint(m.base_checkpoint, strict);
    m.clip = BuildClip(model::LoadCheckpoint(m.base_checkpoint).entries, m.base_checkpoint);
    AdaptAndLoad(m.clip, rec, model::LoadSafetensors(m.model_file), m.model_file);
  } else {
    model::CheckKnownCheckpoint(model_arg, strict);
    model::StateDict sd = model::LoadCheckpoint(model_arg);
    const auto f = sd.metadata.find("format");
    if (f != sd.metadata.end() && f->second == kStage1Format)
      throw ConfigError(model_arg + " (--model): a stage-1 DoRA file without its best.json; " +
                        "give the `train behavior` folder");
    m.model_file = model_arg;
    if (f != sd.metadata.end() && f->second == kConvertedFormat) {
      json meta;
      try {
        meta = json::parse(sd.metadata.at("model"));
      } catch (const std::exception& e) {
        throw DataError(model_arg + ": corrupt `model` metadata: " + e.what());
      }
      rec = FromMeta(meta, model_arg);
      m.kind = "converted";
      model::StateDict base, dora;
      for (auto& [name, t] : sd.entries) {
        if (IsDoraTensorName(name)) dora.entries.emplace_back(name, t);
        else base.entries.emplace_back(name, t);
      }
      m.clip = BuildClip(base.entries, model_arg);
      // The adapted blocks' bias is DoRA's too (same name as the Linear's).
      for (const auto& [name, t] : base.entries)  // "...attn.out_proj." + "bias" / "m"
        if (EndsWith(name, ".attn.out_proj.bias") &&
            dora.Find(name.substr(0, name.size() - 4) + "m") != nullptr)
          dora.entries.emplace_back(name, t);
      AdaptAndLoad(m.clip, rec, dora, model_arg);
    } else {
      if (sd.code_bearing)
        LOG_WARN("{} is a TorchScript archive: it carries code; cliphba reads only its tensors",
                 model_arg);
      m.kind = "base";
      m.base_checkpoint = model_arg;
      m.clip = BuildClip(sd.entries, model_arg);
    }
  }
  m.clip->eval();

  // Text: the command line's values, else the recorded ones.
  if (!text.prompts.empty()) {
    m.prompts = data::ReadPrompts(text.prompts, "--prompts");
    if (!rec.prompts.empty() && m.prompts.size() != rec.prompts.size())
      throw DataError(text.prompts + " (--prompts): " + std::to_string(m.prompts.size()) +
                      " prompts, but " + m.model_file + " was trained with " +
                      std::to_string(rec.prompts.size()) + "; expected one prompt per dimension");
  } else {
    m.prompts = rec.prompts;
  }
  if (m.prompts.empty())
    throw ConfigError(model_arg + " (--model) records no prompts (" + m.kind +
                      " model): give --prompts JSON and --vocab BPE.gz");
  const std::string vocab = !text.vocab.empty() ? text.vocab : rec.vocab;
  if (vocab.empty())
    throw ConfigError(model_arg + " (--model) records no vocabulary: give --vocab BPE.gz");
  std::string remap = !text.vocab_remap.empty() ? text.vocab_remap : rec.vocab_remap;
  if (remap == "none") remap = "";
  if (!remap.empty() && remap != "tiny")
    throw ConfigError("--vocab-remap '" + remap + "' is unknown; expected tiny or none");
  if (!text.labels.empty()) {
    m.labels = io::ReadNameList(text.labels);
  } else if (!rec.labels.empty() && rec.labels.size() == m.prompts.size() && text.prompts.empty()) {
    m.labels = rec.labels;
  } else {
    m.labels = m.prompts;
  }
  if (m.labels.size() != m.prompts.size())
    throw DataError(text.labels + " (--labels): " + std::to_string(m.labels.size()) +
                    " labels for " + std::to_string(m.prompts.size()) + " prompts");
  if (!rec.normalization.empty()) m.normalization = rec.normalization;

  const auto& cfg = m.clip->config();
  model::ClipTokenizer tokenizer(vocab);
  at::Tensor ids = tokenizer.TokenizeBatch(m.prompts, cfg.context_length);
  if (remap == "tiny") ids = model::RemapTinyVocab(ids);
  if (ids.max().item<int64_t>() >= cfg.vocab_size)
    throw DataError(m.model_file + " has a " + std::to_string(cfg.vocab_size) +
                    "-token vocabulary but the prompts use larger ids" +
                    (cfg.vocab_size == 4096 ? " (tiny fixture models need --vocab-remap tiny)"
                                            : ""));
  at::NoGradGuard no_grad;
  m.text_features = m.clip->EncodeText(ids).contiguous();  // (K, E)
  return m;
}

}  // namespace cliphba::predict
