// PRIVATE to src/train: the declarations that the MEG training files (meg.cc, meg_data.cc,
// meg_checkpoint.cc, meg_eval.cc) share. Nothing outside src/train may include it; the public
// API is train/meg.h.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"
#include "data/behavior_dataset.h"
#include "data/image.h"
#include "meg/curves.h"
#include "meg/rdm_stack.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/meg_head.h"
#include "model/precision.h"
#include "parallel/comm.h"
#include "train/meg_predictor.h"
#include "train/common.h"
#include "train/meg.h"
#include "train/meg_loss.h"

namespace cliphba::train::meg_detail {

using config::TrainMegOptions;
using detail::AdamW;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

inline constexpr uint64_t kEvalStream = uint64_t(1) << 62;  // jitter streams of validation

// ---- meg_data.cc: images, batches, generators -------------------------------------------------

using train::ResolveImages;  // meg_predictor.h

// Batches [begin, begin + size) of n items; a last batch of fewer than 3 objects (no Pearson RDM)
// is merged into the one before. Throws DataError if n < 3.
std::vector<std::pair<int64_t, int64_t>> MakeBatches(int64_t n, int64_t batch, const char* what);

// A CPU generator seeded with the first draw of CounterRng(seed, stream).
at::Generator MakeGenerator(uint64_t seed, uint64_t stream);

// ---- meg_data.cc: the model ---------------------------------------------------------------------

struct ModelParts {
  model::Clip clip{nullptr};
  model::ClipConfig cfg;
  model::StateDict base;  // the base checkpoint's tensors (released once the text is encoded)
  data::ImageOptions image_options;
  model::Precision precision = model::Precision::kFloat32;  // phase 2's image tower (autocast)
  at::Tensor text_norm;  // (K, E) normalised text features, computed once
  double scale_exp = 1;
  int64_t n_prompts = 0;
  nlohmann::json record;  // detail::ModelRecord (best.json: what `predict` needs)
};

// The base CLIP of o.checkpoint, every parameter frozen, with the normalised text features of the
// K prompts (from the base CLIP, or from the stage-1 model of o.behavior_checkpoint, whose adapted
// vision blocks are merged in if o.behavior_vision). Throws ConfigError / DataError / IoError
// naming the setting.
ModelParts BuildModel(const TrainMegOptions& o);

// (L, N, E) per-block CLS projections of a batch of images.
at::Tensor BlockFeatures(model::Clip& clip, const at::Tensor& images,
                         model::Precision precision = model::Precision::kFloat32);

// Collective, no gradient: (L, len(paths), E) for the given image files; each rank encodes its
// shard (in chunks of `chunk`), the rows are all-gathered.
at::Tensor EncodeAll(model::Clip& clip, const std::vector<std::string>& paths,
                     const data::ImageOptions& io, int64_t chunk, int threads,
                     const parallel::Comm& comm);

// ---- meg_data.cc: the data ----------------------------------------------------------------------

struct MegData {
  std::vector<std::string> names, paths;  // RDM order (n)
  data::BehaviorSplit split;              // indices into names
  std::vector<int64_t> used;              // train then validation objects (indices into names)
  std::vector<int64_t> pos;               // names index -> column in `target` / cache, or -1
  meg::TimeAxis axis;
  std::vector<int64_t> ps;  // selected participants
  std::vector<std::string> participant_labels;
  at::Tensor target;  // (T, n_used, n_used) float32
  meg::Curves curves;
};

// The selected participants (indices into st's participants): o.participants as labels or 0-based
// indices, all of them if none is listed. Throws ConfigError (duplicates, individual mode without
// exactly one) or DataError (unknown participant).
std::vector<int64_t> ResolveParticipants(const TrainMegOptions& o, const meg::RdmStack& st);

// ---- the training state -------------------------------------------------------------------------

struct Stage {
  at::Tensor best_wfr;  // phase 1: Wfr of the best epoch so far (every rank keeps its own copy)
  ModelParts m;
  MegData d;
  model::MegHead head{nullptr};
  PearsonMSELongLoss loss;
  at::Tensor cache;  // (L, n_used, E) block features of train + validation images (phase 1)
  Named dora;        // phase 2 trainable DoRA parameters (empty in phase 1)
  bool dora_applied = false;  // the vision blocks carry DoRA (phase 2, or dora_from_start)
  int64_t dora_blocks = 0;
};

struct Progress {
  int64_t phase = 1;
  int64_t epoch = 0;  // epochs completed (both phases)
  int64_t phase1_epochs = 0;
  int64_t steps = 0;       // optimiser steps over both phases (the noise stream)
  int64_t bad_epochs = 0;  // in the current phase
  int64_t best_epoch = 0;
  double best_total = 0, best_p = 0;
  double p0 = 1, m0 = 1, g0 = 1;
  std::vector<double> train_loss, val_loss, val_p;
  std::vector<int64_t> epoch_phase;
};

struct Terms {
  double total = 0, mse = 0, p = 0, g = 0;
};

// meg_data.cc: the model, the data and the head of o, everything validated and loaded (nothing
// written).
Stage BuildStage(const TrainMegOptions& o);
// DoRA (seeded by train.meg.seed) on the stage's vision blocks; sets s.dora_applied. Does not
// make them trainable for the optimizer: EnterPhase2 collects s.dora.
void ApplyVisionDora(Stage& s, const TrainMegOptions& o);

// ---- meg.cc: the phases -------------------------------------------------------------------------

// The trainable tensors: Wfr, then the phase-2 DoRA parameters.
Named Trainable(Stage& s);

// Collective. Phase 2 set-up: Wfr of the best phase-1 epoch (or its initial value), then rank 0's
// Wfr on every rank; DoRA on the vision blocks. The best Wfr comes from memory; only a resumed run
// reads it from best.safetensors (written by rank 0 in an earlier process: reading it during a
// run would race with rank 0's write of the last phase-1 checkpoint).
void EnterPhase2(Stage& s, const TrainMegOptions& o, const Progress& pr,
                 const parallel::Comm& comm);

// ---- meg_checkpoint.cc: best checkpoint and resume state ----------------------------------------

// Writes best.safetensors + best.json: the model after `epoch` epochs (0 = the initial model).
void SaveBest(Stage& s, const TrainMegOptions& o, const RunInfo& info, const Progress& pr,
              const Terms& val, int64_t epoch);

// Rank 0: writes the resume state after pr.epoch epochs (state_e{E}.safetensors + last_state.json).
void SaveState(Stage& s, const AdamW& adam, const Progress& pr, const TrainMegOptions& o,
               const RunInfo& info);

// Collective: restores the state of out_dir/last_state.json into s, adam and pr (entering phase 2
// first if it was saved in phase 2); false if there is none. Throws ConfigError (another config
// hash) or DataError (corrupt record or state file).
bool LoadState(Stage& s, AdamW* adam, Progress* pr, const TrainMegOptions& o, const RunInfo& info,
               const parallel::Comm& comm);

}  // namespace cliphba::train::meg_detail
