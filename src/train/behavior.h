// Stage 1 of CLIP-HBA: behaviour fine-tuning (METHOD.md "Stage 1").
//
// Dimension legend: n objects, K prompts = target dimensions, B global batch, b this rank's shard
// of a batch, E joint embedding.
//
// The model: the base CLIP checkpoint, DoRA on attn.out_proj of the last vision/text blocks (A, B
// drawn after torch::manual_seed(seed)); output for an image = HBA logits (K) = logit_scale.exp()
// * cos(image feature, text feature of prompt k). Loss: MSE to the targets. AdamW (PyTorch's
// formula, betas 0.9/0.999, eps 1e-8) on the trainable parameters only. Early stopping on the
// validation loss (patience). Data parallel: every rank takes ShardRange(B, ranks, rank) of each
// global batch; its loss is (sum of squared errors of its samples) / (B K), so the all-reduced
// gradient sum equals the gradient of the global-batch mean and every rank takes the same step.
//
// Files in out_dir:
//   best.safetensors + best.json   DoRA tensors (m, D, delta_D_A, delta_D_B, bias of every
//                                  adapted block) of the best validation epoch, and metadata
//                                  (config hash, epoch, best val loss, base checkpoint, DoRA
//                                  settings); rewritten each time the validation loss improves.
//   state_e{E}.safetensors + last_state.json   resume state after epoch E (trainable tensors
//                                  "param/<name>", AdamW "exp_avg/<name>", "exp_avg_sq/<name>",
//                                  "step"); last_state.json (written last, atomically) names the
//                                  file and holds epoch, early-stopping counters and the loss
//                                  history. Shuffles are pure functions of (seed, epoch), so no RNG
//                                  state is needed.
//   evaluation.h5                  held-out evaluation (io::ResultsStore, atomic).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"
#include "parallel/comm.h"

namespace cliphba::train {

// Provenance of a run, computed by the caller from the whole configuration.
struct RunInfo {
  std::string config_hash;  // must match on --resume (ConfigError otherwise)
  std::string config_yaml;  // stored in evaluation.h5
  std::string command;      // e.g. "train behavior"
};

// Test and preemption hooks.
struct RunControl {
  int64_t stop_after_epochs = 0;  // > 0: stop (as if preempted) after this many epochs this call
};

struct BehaviorEvaluation {
  bool done = false;      // false when there are no held-out objects
  int64_t n_objects = 0;  // held-out objects evaluated
  std::string reference;  // reference_rdm path, or "targets" (RDM of their targets)
  double spearman = 0;    // model RDM (1 - Pearson) vs reference RDM
  double pearson = 0;
  double target_mse = 0;        // MSE of the predictions to the held-out targets
  double triplet_accuracy = 0;  // odd-one-out, SPoSE rule (dot-product similarity)
  int64_t n_triplets = 0;
  int64_t n_triplets_tied = 0;
  std::string out;  // results file ("" if not written)
};

struct BehaviorTrainResult {
  std::vector<double> train_loss;  // per epoch since epoch 1 (resumed history included)
  std::vector<double> val_loss;    // per epoch since epoch 1
  double initial_val_loss = 0;     // validation loss before any step
  int64_t epochs_done = 0;         // epochs completed in total
  int64_t best_epoch = 0;          // 0 = no improvement over the initial model
  double best_val_loss = 0;
  bool early_stopped = false;
  bool stopped = false;           // preempted (SIGTERM) or RunControl stop: resume later
  int64_t n_trainable = 0;        // trainable parameter elements
  std::vector<float> trainable;   // final trainable parameters, flattened (for tests)
  BehaviorEvaluation initial;     // held-out evaluation of the untrained (DoRA-initialised) model
  BehaviorEvaluation final_eval;  // ... of the best checkpoint
};

// Trains stage 1 (see the top of this file) and evaluates the best checkpoint on the held-out
// objects. resume: continue from out_dir/last_state.json if it exists (ConfigError if it was
// written under another config hash). Collective over comm: every rank must call with the same
// options. Logs progress on rank 0. Throws ConfigError (missing key, bad remap/image size),
// IoError, DataError (inputs, checkpoint of another architecture). A stop by SIGTERM returns with
// stopped = true after saving the resume state of the last finished epoch.
BehaviorTrainResult TrainBehavior(const config::TrainBehaviorOptions& options, const RunInfo& info,
                                  bool resume, const parallel::Comm& comm,
                                  const RunControl& control = {});

// Rebuilds the model from the base checkpoint and out_dir/best.safetensors and evaluates the
// held-out objects; writes out_dir/evaluation.h5 on rank 0. Collective. Throws IoError if there
// is no best checkpoint, DataError if it does not fit the model.
BehaviorEvaluation EvaluateBehavior(const config::TrainBehaviorOptions& options,
                                    const RunInfo& info, const parallel::Comm& comm);

// Elements of the parameters ApplyDora makes trainable for a CLIP of vision/text width Wv/Wt:
// per adapted block r (W + W) + W (m, if train_magnitude). For tests and the log.
int64_t DoraTrainableCount(int64_t vision_width, int64_t text_width, int64_t vision_blocks,
                           int64_t text_blocks, int64_t rank, bool train_magnitude);

}  // namespace cliphba::train
