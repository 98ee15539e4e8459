#include "train/common.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <unordered_map>

#include "core/error.h"
#include "io/csv.h"
#include "io/text_file.h"
#include "model/tokenizer.h"

namespace cliphba::train::detail {

namespace fs = std::filesystem;

nlohmann::json ModelRecord(const std::string& base_checkpoint, const std::string& prompts_path,
                           const std::vector<std::string>& prompts, const std::string& vocab,
                           config::VocabRemap vocab_remap, const std::string& normalization,
                           const std::string& labels_path, const std::string& section) {
  std::vector<std::string> labels = prompts;
  if (!labels_path.empty()) {
    labels = io::ReadNameList(labels_path);  // unique, non-empty lines
    if (labels.size() != prompts.size())
      throw DataError(labels_path + " (" + section + ".labels): " + std::to_string(labels.size()) +
                      " labels, but " + std::to_string(prompts.size()) +
                      " prompts; expected one label per prompt, in prompt order");
  }
  auto absolute = [](const std::string& p) {
    std::error_code ec;
    const std::filesystem::path a = std::filesystem::absolute(p, ec);
    return ec ? p : a.lexically_normal().string();
  };
  return {{"base_checkpoint", absolute(base_checkpoint)},
          {"prompts", absolute(prompts_path)},
          {"vocab", absolute(vocab)},
          {"vocab_remap", config::Name(vocab_remap)},
          {"normalization", normalization},
          {"prompt_texts", prompts},
          {"labels", labels}};
}

nlohmann::json ReadJsonFile(const std::string& path, const std::string& what) {
  try {
    return nlohmann::json::parse(io::ReadTextFile(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": " + what + ": " + e.what());
  }
}

void RequireKey(const std::string& value, const std::string& section, const char* key) {
  if (value.empty())
    throw ConfigError(section + "." + key +
                      " is required: set it in the --config YAML or with --set " + section + "." +
                      key + "=...");
}

at::Tensor PromptTokenIds(const std::vector<std::string>& prompts, const std::string& vocab,
                          config::VocabRemap vocab_remap, const model::ClipConfig& cfg,
                          const std::string& checkpoint, const std::string& section) {
  model::ClipTokenizer tokenizer(vocab);
  at::Tensor ids = tokenizer.TokenizeBatch(prompts, cfg.context_length);  // (K, L)
  if (vocab_remap == config::VocabRemap::kTiny) {
    if (cfg.vocab_size != 4096)
      throw ConfigError(section + ".vocab_remap is tiny, which needs a 4096-row token table, but " +
                        checkpoint + " has " + std::to_string(cfg.vocab_size));
    return model::RemapTinyVocab(ids);
  }
  if (cfg.vocab_size != model::ClipTokenizer::kVocabSize)
    throw ConfigError(checkpoint + " has " + std::to_string(cfg.vocab_size) +
                      " token rows; the CLIP vocabulary needs 49408 (for the fixtures' reduced "
                      "table set " +
                      section + ".vocab_remap: tiny)");
  return ids;
}

parallel::BackendKind BackendKindOf(config::DistBackend backend) {
  switch (backend) {
    case config::DistBackend::kMpi:
      return parallel::BackendKind::kMpi;
    case config::DistBackend::kNccl:
      return parallel::BackendKind::kNccl;
    case config::DistBackend::kAuto:
      break;
  }
  return parallel::BackendKind::kAuto;
}

void AdamWStep(const std::vector<std::pair<std::string, at::Tensor>>& params,
               const std::vector<double>& lrs, AdamW* st, double weight_decay) {
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;  // PyTorch's defaults
  at::NoGradGuard no_grad;
  if (st->exp_avg.empty())
    for (const auto& p : params) {
      st->exp_avg.push_back(at::zeros_like(p.second));
      st->exp_avg_sq.push_back(at::zeros_like(p.second));
    }
  ++st->step;
  const double bc1 = 1 - std::pow(kBeta1, double(st->step));
  const double bc2 = 1 - std::pow(kBeta2, double(st->step));
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i].second;
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const double lr = lrs[i];
    p.mul_(1 - lr * weight_decay);
    st->exp_avg[i].mul_(kBeta1).add_(g, 1 - kBeta1);
    st->exp_avg_sq[i].mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    at::Tensor denom = (st->exp_avg_sq[i].sqrt() / std::sqrt(bc2)).add_(kEps);
    p.addcdiv_(st->exp_avg[i], denom, -lr / bc1);
  }
}

nlohmann::json ReadResumeRecord(const std::string& json_path, const std::string& config_hash) {
  const nlohmann::json j = ReadJsonFile(json_path, "corrupt resume state");
  if (j.value("config_hash", "") != config_hash)
    throw ConfigError(json_path + ": written under configuration " +
                      j.value("config_hash", std::string("?")) + ", this run has " + config_hash +
                      "; use the same configuration, or another out_dir");
  return j;
}

model::StateDict Snapshot(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                          const std::string& prefix) {
  model::StateDict sd;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU);
    if (c.is_floating_point()) c = c.to(at::kFloat);
    sd.entries.emplace_back(prefix + name, c.contiguous().clone());
  }
  return sd;
}

namespace {

// "param/<name>", "exp_avg/<name>" and "exp_avg_sq/<name>" where the moments exist, "step".
model::StateDict TrainStateTensors(const std::vector<std::pair<std::string, at::Tensor>>& params,
                                   const AdamW& adam) {
  model::StateDict sd = Snapshot(params, "param/");
  for (size_t i = 0; i < params.size() && i < adam.exp_avg.size(); ++i) {
    sd.entries.emplace_back("exp_avg/" + params[i].first, adam.exp_avg[i].clone());
    sd.entries.emplace_back("exp_avg_sq/" + params[i].first, adam.exp_avg_sq[i].clone());
  }
  sd.entries.emplace_back("step", at::tensor({adam.step}, at::kLong));
  return sd;
}

}  // namespace

void WriteResumeState(const std::string& out_dir, int64_t epoch,
                      const std::vector<std::pair<std::string, at::Tensor>>& params,
                      const AdamW& adam, nlohmann::json record, const std::string& config_hash) {
  const std::string file = "state_e" + std::to_string(epoch) + ".safetensors";
  model::SaveSafetensors(out_dir + "/" + file, TrainStateTensors(params, adam),
                         {{"config_hash", config_hash}});
  const std::string json_path = out_dir + "/last_state.json";
  std::string previous;
  if (fs::exists(json_path))
    previous = ReadJsonFile(json_path, "corrupt resume state").value("file", "");
  record["config_hash"] = config_hash;
  record["file"] = file;
  io::WriteTextFileAtomically(json_path, record.dump(1) + "\n");
  if (!previous.empty() && previous != file) fs::remove(out_dir + "/" + previous);
}

void RestoreTrainState(const model::StateDict& sd, const std::string& file,
                       const std::vector<std::pair<std::string, at::Tensor>>& params, AdamW* adam,
                       bool with_moments) {
  auto get = [&](const std::string& name) {
    const at::Tensor* t = sd.Find(name);
    if (t == nullptr) throw DataError(file + ": resume state lacks tensor " + name);
    return *t;
  };
  at::NoGradGuard no_grad;
  adam->exp_avg.clear();
  adam->exp_avg_sq.clear();
  for (const auto& [name, p] : params) {
    const at::Tensor v = get("param/" + name);
    if (v.sizes() != p.sizes()) throw DataError(file + ": " + name + " has another shape");
    at::Tensor(p).copy_(v);
    if (with_moments) {
      adam->exp_avg.push_back(get("exp_avg/" + name).clone());
      adam->exp_avg_sq.push_back(get("exp_avg_sq/" + name).clone());
    }
  }
  adam->step = get("step").item<int64_t>();
}

}  // namespace cliphba::train::detail
