// Contrastive pre-training of a base CLIP on the shapes world (issue 17): what `cliphba synth
// model` does with synth.model.pretrain_steps > 0, so the demo's base model, like a real CLIP, has
// features that carry what captions name (colour, shape, stripes, size) before any fine-tuning.
// A random-init base model carries the cohort's semantic code only weakly, so models fine-tuned
// from it fitted their training objects without generalising to new ones.
//
// The step, top to bottom (OpenAI CLIP's objective):
//   items step * B .. step * B + B - 1 of the world (data::ShapesWorldSample, pure functions of
//   (seed, item)) -> images (B, 3, S, S) normalised as the pipeline loads PNGs, captions tokenised
//   -> image and text features (B, E), L2-normalised -> logits = exp(logit_scale) * I T^T (B, B)
//   -> loss = mean of the image->text and text->image cross-entropies, with soft targets: a batch
//   often holds several items of the same caption (288 captions), so the target of row i is
//   uniform over the items whose caption equals i's (not only the diagonal)
//   -> backward -> AdamW (train/common.h) on every parameter but the token embedding (the random
//   rows are distinct codes the text blocks learn to read), learning rate warmed up linearly over
//   the first 5 % of the steps then cosine to 0; logit_scale clamped to log(100) as OpenAI's.
// Evaluation: zero-shot caption classification of held-out world items (items >= 2^40, never
// trained on) among all 288 captions: top-1 accuracy and per-attribute accuracy of the argmax.
// Deterministic for (seed, steps, batch, lr, the thread count): float sums depend on threads.
#pragma once

#include <cstdint>
#include <string>

#include "model/clip.h"
#include "model/tokenizer.h"

namespace cliphba::train {

struct PretrainOptions {
  int64_t steps = 0;                 // optimiser steps (0: nothing to do)
  int64_t batch = 128;               // image-caption pairs per step (>= 2)
  double lr = 1e-3;                  // peak learning rate
  double weight_decay = 0.05;        // AdamW's, on every parameter
  uint64_t seed = 1;                 // the world's seed (data::ShapesWorldSample)
  std::string normalization = "things";  // data::ImageOptionsFor, as the training stages load
  int64_t eval_items = 576;          // held-out items of the evaluation
  double progress_seconds = 10.0;    // a log line at most this often
};

struct PretrainSummary {
  int64_t steps = 0;
  double first_loss = 0, final_loss = 0;  // the first step's; the mean of the last min(20, steps)
  double chance_loss = 0;                  // log(batch): the loss of uniform logits
  double top1 = 0;                         // held-out caption accuracy (chance 1/288)
  double colour = 0, shape = 0, texture = 0, size = 0;  // held-out attribute accuracies
  int64_t n_captions = 0;
  double seconds = 0;
};

// Trains every parameter of `clip` but the token embedding in place (CPU, float32; leaves it in
// eval mode, no gradients kept). The tokenizer must be the real CLIP BPE (the model's vocabulary
// has 49408 rows).
// REQUIRES: options.steps >= 0, options.batch >= 2, clip's context length >= the captions' ids.
// Throws ConfigError for a model whose vocabulary is not 49408 rows.
PretrainSummary PretrainOnShapesWorld(model::Clip& clip, const model::ClipTokenizer& tokenizer,
                                      const PretrainOptions& options);

// Zero-shot evaluation alone (what PretrainOnShapesWorld reports at the end): the model as it is.
PretrainSummary EvaluateOnShapesWorld(model::Clip& clip, const model::ClipTokenizer& tokenizer,
                                      const PretrainOptions& options);

}  // namespace cliphba::train
