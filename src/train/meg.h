// Stages 2 and 3 of CLIP-HBA: MEG fine-tuning (METHOD.md "Stage 2", "Stage 3"), group or
// individual, in two phases.
//
// Dimension legend: n objects of the RDM stack (RDM order = image names), T training timepoints,
// T_full timepoints of the MEG axis, L vision blocks, B global batch, b this rank's shard of it,
// E joint embedding, K prompts, m = B (B - 1) / 2.
//
// Data. Objects = the stack's names; image `name` (or name + .jpg/.jpeg/.png) in image_dir.
// heldout_names are kept out of training and validation (alignment uses them); the rest is split
// train / validation by (seed, val_fraction) (data::SplitBehavior). Target = mean over the
// selected participants (group) or the one participant (individual) of the RDMs of the
// train + validation objects, all T_full timepoints read once, min-max rescaled by the whole
// file's bounds as the reference's load_rdm (meg.rdm.rescale: minmax; RdmStack::ValueRange
// streams the file once), then restricted to the training timepoints and cached: memory
// T * (n_train + n_val)^2 floats. Curves (meg::ComputeCurves) from the selected participants'
// stacks of the training objects (each rescaled likewise).
//
// Model (model/meg_head.h): frozen text features of the K prompts computed ONCE (from the base
// CLIP, or from the stage-1 text tower of behavior_checkpoint), per-block CLS projections of the
// images, the batched head over all T training timepoints, model RDMs = PearsonRdm (T, B, B),
// loss = PearsonMSELongLoss (train/meg_loss.h) normalised by P0, M0, G0 = the losses of the
// initial model on the validation set (noise off).
//
// Phase 1: the whole CLIP is frozen, so the per-block CLS projections of every train/validation
// image are computed once ((L, n_train + n_val, E), sharded over ranks and all-gathered) and only
// Wfr is trained on that cache (lr_wfr_1), without any image forward or CLIP backward. Phase 1
// ends after patience_phase1 epochs without a checkpoint, or after phase1_epochs (if > 0).
// Phase 2: Wfr is reloaded from the best checkpoint (the initial Wfr if none was written), DoRA
// (after torch::manual_seed(seed)) is applied to the last dora.vision_blocks vision blocks
// (direction only unless dora.train_magnitude), AdamW restarts with two learning rates (lr_wfr_2
// for Wfr, lr_dora for DoRA); images go through the vision tower every step (text stays cached).
// Stops after patience_phase2 epochs without a checkpoint or at `epochs` (both phases counted).
// Checkpoint rule: a validation epoch is "best" only when BOTH its normalised total loss and its
// Pearson loss are below the best so far (initially p_w + m_w + g_w and P0).
//
// Noise: training step s (global optimiser step, counted over both phases) draws its Gaussian
// noise and jitter from a CPU generator seeded with CounterRng(seed, s); validation and
// prediction run without noise and with a jitter seeded by (seed, batch index), so they are
// deterministic.
//
// Data parallel (collective over comm). The MEG loss is not a sum over samples (it correlates
// all pairs of a batch), so the stage-1 convention (sum over the shard / B) cannot be used.
// Instead: phase 1 is computed redundantly on every rank (identical cache, identical full-batch
// loss and Wfr gradient, no communication per step). Phase 2: each rank encodes its shard
// ShardRange(B, ranks, rank) of the batch with autograd, the (b, L, E) features are all-gathered
// (parallel::Comm::AllgatherRows) so every rank evaluates the SAME loss on the full batch, with only
// its own shard attached to the graph (the others are constants). Backward then gives each rank
// the gradient through its own images; parallel::AllreduceGradients sums them (= the full-batch
// DoRA gradient). Wfr's gradient is complete on every rank, so ranks other than 0 zero it before
// the all-reduce. Losses are therefore rank-count invariant up to float rounding.
//
// Files in out_dir:
//   best.safetensors + best.json  the head's registered tensors: "wfr" (T_full, L), "beta",
//                                 "visual_scaler", "noise_level" (T_full, float32),
//                                 the DoRA tensors of the adapted vision blocks (phase 2); json:
//                                 phase, epoch, validation losses, P0/M0/G0, axis, DoRA settings.
//   state_e{E}.safetensors + last_state.json   resume state after epoch E (as stage 1, plus the
//                                 phase, the checkpoint-rule references, P0/M0/G0, step count).
//   evaluation.h5                 EvaluateMeg's results.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"
#include "parallel/comm.h"
#include "train/behavior.h"  // RunInfo, RunControl

namespace cliphba::train {

struct MegTrainResult {
  std::vector<double> train_loss;    // per epoch: mean normalised total over the training batches
  std::vector<double> val_loss;      // per epoch: normalised total on the validation set
  std::vector<double> val_pearson;   // per epoch: Pearson loss on the validation set
  std::vector<int64_t> epoch_phase;  // per epoch: 1 or 2
  double p0 = 0, m0 = 0, g0 = 0;     // initial validation losses (normalisers)
  int64_t epochs_done = 0;
  int64_t phase1_epochs = 0;  // epochs spent in phase 1
  int64_t best_epoch = 0;     // 0 = no checkpoint written
  double best_val_loss = 0;   // normalised total of the best epoch (initially p_w + m_w + g_w)
  double best_val_pearson = 0;
  bool early_stopped = false;  // phase 2 ran out of patience
  bool stopped = false;        // preempted / RunControl stop: resume later
  int64_t timepoints = 0;      // T
  int64_t n_train = 0, n_val = 0, n_heldout = 0;
  int64_t n_trainable_phase1 = 0, n_trainable_phase2 = 0;
  std::vector<float> trainable;  // final Wfr and DoRA parameters, flattened (tests)
};

// Trains one MEG model (see the top of this file). resume: continue from out_dir/last_state.json
// (ConfigError if written under another config hash). Collective over comm. Validates every
// input before anything is written: ConfigError (missing key, mode/participants, windows),
// DataError (names without images, axis not covering the training window, window wider than the
// axis, unknown participants, a behavior_checkpoint of another architecture, NaN in the RDMs),
// IoError. Returns with stopped = true after a SIGTERM (the state of the last finished epoch kept).
MegTrainResult TrainMeg(const config::TrainMegOptions& o, const RunInfo& info, bool resume,
                        const parallel::Comm& comm, const RunControl& control = {});

// Model RDMs (no noise) of the best checkpoint in o.out_dir for the objects `names` (image files
// in o.image_dir) at every timepoint of the MEG axis: (T_full, m) float64 condensed (m = k(k-1)/2,
// row-major i < j). Collective (images sharded over ranks). Throws IoError without a checkpoint,
// DataError for names without images or a checkpoint that does not fit the model. With
// block_weights: also the model's MegPredictor::BlockWeights (T_full, L) float32.
at::Tensor PredictMegRdms(const config::TrainMegOptions& o, const std::vector<std::string>& names,
                          const parallel::Comm& comm, at::Tensor* block_weights = nullptr);

struct MegEvaluation {
  bool done = false;  // false with fewer than 3 held-out objects
  int64_t n_objects = 0;
  std::vector<double> times_ms;           // (T_full)
  std::vector<std::string> participants;  // (P) labels of the stack
  at::Tensor spearman, pearson;           // (P, T_full) float64: model vs participant p
  at::Tensor target_spearman;             // (T_full) model vs the training target
  double mean_target_spearman_from0 = 0;  // mean over t >= 0 ms of target_spearman
  std::string out;                        // out_dir/evaluation.h5 (rank 0)
};

// The best checkpoint's model RDMs of the held-out objects against every participant's MEG RDMs
// and against the training target, per timepoint; writes out_dir/evaluation.h5 (rank 0).
// Collective. Throws as PredictMegRdms; ConfigError with fewer than 3 held-out objects.
MegEvaluation EvaluateMeg(const config::TrainMegOptions& o, const RunInfo& info,
                          const parallel::Comm& comm);

}  // namespace cliphba::train
