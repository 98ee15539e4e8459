// The `--model` of `cliphba predict behavior`: whatever the user names, one CLIP-HBA behaviour
// model (CLIP + DoRA, text features of its K prompts, K labels) ready to apply to images.
//
// What --model may be (decided by content, in this order):
//   * a stage-1 folder (`train behavior` out_dir) or its best.safetensors (best.json beside it):
//     the base checkpoint best.json names, DoRA as it records, the DoRA tensors of the file;
//   * a file written by `cliphba convert` (safetensors whose metadata format is
//     "cliphba CLIP-HBA behavior model"): base weights and DoRA tensors in the one file;
//   * any other CLIP checkpoint (safetensors, torch.save zip, TorchScript): plain CLIP, no adapters
//     (the reference's `load_hba: False`), which needs --prompts and --vocab;
//   * a MEG model folder is refused (ConfigError: use `cliphba predict meg`).
// Text: the prompts, vocab, remap and labels the checkpoint recorded (train/common.h
// ModelRecord, or convert's metadata), each replaceable by the command-line value; prompts of
// another count K than the model was trained with are refused.
//
// Dimension legend: K prompts, E joint embedding.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/clip.h"

namespace cliphba::predict {

// Command-line text options; "" = take the checkpoint's.
struct TextArgs {
  std::string prompts;      // --prompts JSON list
  std::string vocab;        // --vocab BPE.gz
  std::string vocab_remap;  // --vocab-remap: "" (the checkpoint's, else none) | tiny | none
  std::string labels;       // --labels text file, one per prompt
};

struct BehaviorModel {
  model::Clip clip{nullptr};         // eval mode, no gradients needed
  std::string kind;                  // "base" | "behavior" | "converted"
  std::string model_file;            // the file holding the weights or the DoRA tensors
  std::string base_checkpoint;       // the base CLIP file ("" for converted)
  std::string normalization = "things";  // image mean/std the model was trained with
  std::vector<std::string> prompts;  // (K)
  std::vector<std::string> labels;   // (K)
  at::Tensor text_features;          // (K, E) float32
  int64_t batch = 0;                 // the training batch a stage-1 model records (else 0)
};

// Resolves and loads `model` (see the top of this file). strict: refuse a known OpenAI file name
// whose SHA-256 differs (else a warning). Throws ConfigError (MEG folder, missing text options,
// unknown remap), IoError (missing files), DataError (a checkpoint that does not fit, prompts of
// another K, labels not one per prompt).
BehaviorModel LoadBehaviorModel(const std::string& model, const TextArgs& text, bool strict);

// The DoRA tensor names of a CLIP state dict entry ("...attn.out_proj.{m, D, delta_D_A,
// delta_D_B}"); the adapted block's bias keeps the Linear's name "...attn.out_proj.bias".
bool IsDoraTensorName(const std::string& name);

}  // namespace cliphba::predict
