// Helpers the stage loops share (internal to cliphba_train): JSON files, the prompts' token ids,
// the fixtures' reduced-vocabulary remap, the all-reduce backend choice, the AdamW optimiser and
// the DoRA tensors of a model.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "parallel/grad_sync.h"

namespace cliphba::train::detail {

// The JSON document in path. Throws IoError (unreadable) or DataError "<path>: <what>: <parser
// message>" (not JSON).
nlohmann::json ReadJsonFile(const std::string& path, const std::string& what);

// Throws ConfigError "<section>.<key> is required: ..." when value is empty (section e.g.
// "train.meg").
void RequireKey(const std::string& value, const std::string& section, const char* key);

// The prompts' token ids (K, L = cfg.context_length) int64 for a checkpoint's token table: the
// CLIP BPE of `vocab`, with the fixtures' reduced-vocabulary remap (model::RemapTinyVocab) when
// vocab_remap is kTiny. Throws ConfigError naming `<section>.vocab_remap` and `checkpoint` when
// the table size does not fit (4096 rows for tiny, 49408 otherwise).
at::Tensor PromptTokenIds(const std::vector<std::string>& prompts, const std::string& vocab,
                          config::VocabRemap vocab_remap, const model::ClipConfig& cfg,
                          const std::string& checkpoint, const std::string& section);

// What a checkpoint records so that `cliphba predict` can rebuild the model without the training
// config: {"base_checkpoint", "prompts", "vocab" (absolute paths), "vocab_remap", "normalization",
// "prompt_texts" (K), "labels" (K: the lines of labels_path, or the prompt texts when it is "")}.
// Throws IoError / DataError (labels unreadable, not K unique non-empty lines) naming
// `<section>.labels`.
nlohmann::json ModelRecord(const std::string& base_checkpoint, const std::string& prompts_path,
                           const std::vector<std::string>& prompts, const std::string& vocab,
                           config::VocabRemap vocab_remap, const std::string& normalization,
                           const std::string& labels_path, const std::string& section);

// The parallel backend kind of a `dist.backend` setting.
parallel::BackendKind BackendKindOf(config::DistBackend backend);

// torch.optim.AdamW (amsgrad off, betas 0.9 / 0.999, eps 1e-8): per-parameter moments and the step
// count shared by all parameters.
struct AdamW {
  std::vector<at::Tensor> exp_avg, exp_avg_sq;  // like params, created on the first step
  int64_t step = 0;
};

// One AdamW step on params (name, tensor) with their (all-reduced) gradients; lrs[i] is the
// learning rate of params[i] (lrs.size() == params.size()); parameters without a gradient are
// skipped (their moments unchanged). REQUIRES: the same params, in the same order, every step.
void AdamWStep(const std::vector<std::pair<std::string, at::Tensor>>& params,
               const std::vector<double>& lrs, AdamW* state, double weight_decay);

// The DoRA tensors of a model and their loading live in model/dora.h.
using model::DoraTensors;
using model::LoadDora;

// The resume record json_path (a stage loop's last_state.json) after checking that it was written
// under config_hash. Throws DataError (not JSON) or ConfigError (another configuration), both
// naming the file.
nlohmann::json ReadResumeRecord(const std::string& json_path, const std::string& config_hash);

// Detached CPU copies of `tensors` as a state dict, names prefixed with `prefix`; floating tensors
// as float32 (what SaveSafetensors writes), others unchanged.
model::StateDict Snapshot(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                          const std::string& prefix = "");

// Writes the resume state after `epoch` epochs into out_dir: state_e<epoch>.safetensors
// ("param/<name>" for every parameter, "exp_avg/<name>" and "exp_avg_sq/<name>" where the AdamW
// moments exist, "step" int64 [1]), then last_state.json = `record` plus "config_hash" and
// "file" (atomically), then removes the state file the previous last_state.json named. Rank 0
// only. Throws IoError.
void WriteResumeState(const std::string& out_dir, int64_t epoch,
                      const std::vector<std::pair<std::string, at::Tensor>>& params,
                      const AdamW& adam, nlohmann::json record, const std::string& config_hash);

// Copies WriteResumeState's tensors back (read from `file`, named in errors): every parameter in
// place (under NoGradGuard), adam's moments if with_moments (else none), adam's step. Throws
// DataError naming file and tensor for a missing or mis-shaped tensor.
void RestoreTrainState(const model::StateDict& sd, const std::string& file,
                       const std::vector<std::pair<std::string, at::Tensor>>& params, AdamW* adam,
                       bool with_moments);

}  // namespace cliphba::train::detail
