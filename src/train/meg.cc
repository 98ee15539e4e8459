// CLIP-HBA-MEG training (stages 2 and 3); see meg.h for the contract and the files written.
#include "train/meg.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/utils.h>  // torch::manual_seed

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/shard.h"
#include "core/signals.h"
#include "data/behavior_dataset.h"
#include "data/image.h"
#include "parallel/grad_sync.h"
#include "io/csv.h"
#include "io/results_store.h"
#include "io/text_file.h"
#include "meg/curves.h"
#include "meg/rdm_stack.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "model/tokenizer.h"
#include "rsa/compare.h"
#include "train/common.h"
#include "train/meg_loss.h"

namespace cliphba::train {

namespace fs = std::filesystem;
using config::TrainMegOptions;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

namespace {

using detail::AdamW;
using detail::AdamWStep;
using detail::DoraTensors;
using detail::LoadDora;
using detail::ReadJsonFile;
using detail::ReadPrompts;
using detail::ReadResumeRecord;
using detail::RemapTiny;
using detail::RestoreTrainState;
using detail::Snapshot;
using detail::WriteResumeState;

constexpr uint64_t kEvalStream = uint64_t(1) << 62;  // jitter streams of validation

void Require(const std::string& value, const char* key) {
  if (value.empty())
    throw ConfigError(std::string("train.meg.") + key +
                      " is required: set it in the --config YAML or with --set train.meg." + key +
                      "=...");
}

// name -> image_dir/name, or name + one of the usual extensions. ONE DataError for all missing.
std::vector<std::string> ResolveImages(const std::vector<std::string>& names,
                                       const std::string& image_dir, const std::string& source) {
  if (!fs::is_directory(image_dir))
    throw IoError(image_dir + ": train.meg.image_dir is not a folder");
  std::vector<std::string> paths, missing;
  for (const auto& n : names) {
    std::string found;
    for (const char* ext : {"", ".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"}) {
      const std::string p = image_dir + "/" + n + ext;
      if (fs::is_regular_file(p)) {
        found = p;
        break;
      }
    }
    if (found.empty()) missing.push_back(n);
    paths.push_back(found);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 20; ++i) list += (i ? ", " : "") + missing[i];
    throw DataError(std::to_string(missing.size()) + " of the " + std::to_string(names.size()) +
                    " objects of " + source + " have no image in " + image_dir +
                    " (train.meg.image_dir; expected NAME, NAME.jpg, NAME.jpeg or NAME.png): " +
                    list + (missing.size() > 20 ? ", ..." : ""));
  }
  return paths;
}

// Batches [begin, begin + size) of n items; a last batch of fewer than 3 objects (no Pearson RDM)
// is merged into the one before. Throws DataError if n < 3.
std::vector<std::pair<int64_t, int64_t>> MakeBatches(int64_t n, int64_t batch, const char* what) {
  if (n < 3)
    throw DataError(std::string("train.meg: the ") + what + " set has " + std::to_string(n) +
                    " objects; the MEG loss needs at least 3 per batch (check val_fraction, "
                    "heldout_names and the number of RDM objects)");
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t b = 0; b < n; b += batch) out.emplace_back(b, std::min(batch, n - b));
  if (out.size() > 1 && out.back().second < 3) {
    out[out.size() - 2].second += out.back().second;
    out.pop_back();
  }
  return out;
}

at::Generator MakeGenerator(uint64_t seed, uint64_t stream) {
  CounterRng rng(seed, stream);
  return at::detail::createCPUGenerator(rng.NextU64());
}

// ---- the model ------------------------------------------------------------------------------

struct ModelParts {
  model::Clip clip{nullptr};
  model::ClipConfig cfg;
  model::StateDict base;  // the base checkpoint's tensors (released once the text is encoded)
  data::ImageOptions image_options;
  at::Tensor text_norm;  // (K, E) normalised text features, computed once
  double scale_exp = 1;
  int64_t n_prompts = 0;
};

// The stage-1 model in `path` (best.safetensors + best.json beside it): text features of the K
// prompts, and, if `vision`, its adapted vision blocks merged into m.clip (each DoRA out-projection
// replaced by its weight W' = m * normalize(D + B A s) and bias, so m.clip's image tower IS the
// stage-1 one; phase 2 then adapts those weights). DataError if it does not fit the base CLIP.
at::Tensor Stage1Model(ModelParts& m, const at::Tensor& ids, const std::string& path, bool vision) {
  const std::string json_path = (fs::path(path).parent_path() / "best.json").string();
  if (!fs::exists(path))
    throw IoError(path +
                  ": train.meg.behavior_checkpoint does not exist (expected a stage-1 "
                  "OUT_DIR/best.safetensors)");
  if (!fs::exists(json_path))
    throw DataError(path +
                    ": no best.json beside it; train.meg.behavior_checkpoint must be the "
                    "best.safetensors of a `cliphba train behavior` run");
  const nlohmann::json meta = ReadJsonFile(json_path, "not valid JSON");
  if (!meta.contains("dora") || !meta["dora"].is_object())
    throw DataError(json_path + ": no `dora` settings; not a stage-1 checkpoint");
  const auto& d = meta["dora"];
  model::Clip clip(m.cfg);
  model::LoadStateDict(clip, m.base.entries);
  const int64_t vb = d.value("vision_blocks", int64_t(0)), tb = d.value("text_blocks", int64_t(0));
  if (vb > m.cfg.vision_layers || tb > m.cfg.transformer_layers)
    throw DataError(
        path + ": a stage-1 model with DoRA on " + std::to_string(vb) + " vision and " +
        std::to_string(tb) + " text blocks, but the base checkpoint (train.meg.checkpoint) has " +
        std::to_string(m.cfg.vision_layers) + " and " + std::to_string(m.cfg.transformer_layers) +
        ": a checkpoint of another architecture");
  torch::manual_seed(0);  // A and B are overwritten below
  model::ApplyDora(clip, vb, tb, d.value("rank", int64_t(1)), d.value("alpha", 1.0),
                   d.value("train_magnitude", false));
  LoadDora(clip, model::LoadSafetensors(path), "", path,
           "does not fit the base CLIP of train.meg.checkpoint (a stage-1 checkpoint of another "
           "architecture?):");
  LOG_INFO("text features from the stage-1 model {} (trained on {})", path,
           meta.value("base_checkpoint", std::string("?")));
  at::NoGradGuard no_grad;
  clip->eval();
  if (vision && vb > 0) {
    auto& from = clip->visual->transformer;
    auto& to = m.clip->visual->transformer;
    for (int64_t i = from->layers() - vb; i < from->layers(); ++i) {
      to->block(i)->attn->out_proj->weight.copy_(from->block(i)->OutProjWeight());
      to->block(i)->attn->out_proj->bias.copy_(from->block(i)->OutProjBias());
    }
    LOG_INFO("vision tower from the stage-1 model {} ({} adapted block(s) merged)", path, vb);
  }
  return clip->EncodeText(ids);
}

ModelParts BuildModel(const TrainMegOptions& o) {
  Require(o.checkpoint, "checkpoint");
  Require(o.vocab, "vocab");
  Require(o.prompts, "prompts");
  ModelParts m;
  const std::vector<std::string> prompts = ReadPrompts(o.prompts, "train.meg.prompts");
  m.n_prompts = int64_t(prompts.size());
  m.base = model::LoadCheckpoint(o.checkpoint);
  try {
    m.cfg = model::InferClipConfig(m.base.entries);
  } catch (const DataError& e) {
    throw DataError(o.checkpoint +
                    ": not a CLIP ViT checkpoint (train.meg.checkpoint): " + e.what());
  }
  m.clip = model::Clip(m.cfg);
  try {
    model::LoadStateDict(m.clip, m.base.entries);
  } catch (const DataError& e) {
    throw DataError(o.checkpoint + ": " + e.what());
  }
  if (o.image_size != 0 && o.image_size != m.cfg.image_resolution)
    throw ConfigError("train.meg.image_size is " + std::to_string(o.image_size) + ", but " +
                      o.checkpoint + " takes " + std::to_string(m.cfg.image_resolution) +
                      " pixel images (use 0)");
  m.image_options = data::ImageOptionsFor(o.normalization, m.cfg.image_resolution);
  model::ClipTokenizer tokenizer(o.vocab);
  at::Tensor ids = tokenizer.TokenizeBatch(prompts, m.cfg.context_length);
  if (o.vocab_remap == "tiny") {
    if (m.cfg.vocab_size != 4096)
      throw ConfigError("train.meg.vocab_remap is tiny, which needs a 4096-row token table, but " +
                        o.checkpoint + " has " + std::to_string(m.cfg.vocab_size));
    ids = RemapTiny(ids);
  } else if (m.cfg.vocab_size != model::ClipTokenizer::kVocabSize) {
    throw ConfigError(o.checkpoint + " has " + std::to_string(m.cfg.vocab_size) +
                      " token rows; the CLIP vocabulary needs 49408 (for the fixtures' reduced "
                      "table set train.meg.vocab_remap: tiny)");
  }
  // Everything frozen (phase 1); ApplyDora with 0 blocks freezes every parameter.
  model::ApplyDora(m.clip, 0, 0, 1, 1.0, false);
  m.clip->eval();
  at::Tensor text;
  if (o.behavior_checkpoint.empty()) {
    at::NoGradGuard no_grad;
    text = m.clip->EncodeText(ids);
  } else {
    text = Stage1Model(m, ids, o.behavior_checkpoint, o.behavior_vision);
  }
  m.text_norm = (text / text.norm(2, {1}, true)).contiguous();
  m.scale_exp = m.clip->logit_scale.exp().item<double>();
  m.base = model::StateDict();  // the model holds its own copy
  return m;
}

int64_t VisionDoraBlocks(const TrainMegOptions& o, const model::ClipConfig& cfg) {
  if (o.dora_vision_blocks < 0) return cfg.vision_layers;
  if (o.dora_vision_blocks > cfg.vision_layers)
    throw ConfigError("train.meg.dora.vision_blocks is " + std::to_string(o.dora_vision_blocks) +
                      ", but the vision tower has " + std::to_string(cfg.vision_layers) +
                      " blocks (-1 = all)");
  return o.dora_vision_blocks;
}

// (L, N, E) per-block CLS projections of a batch of images.
at::Tensor BlockFeatures(model::Clip& clip, const at::Tensor& images) {
  return at::stack(clip->EncodeImage(images).block_cls_proj, 0);
}

// Collective, no gradient: (L, len(paths), E) for the given image files; each rank encodes its
// shard (in chunks of `chunk`), the rows are all-gathered.
at::Tensor EncodeAll(model::Clip& clip, const std::vector<std::string>& paths,
                     const data::ImageOptions& io, int64_t chunk, int threads,
                     const parallel::Comm& comm) {
  at::NoGradGuard no_grad;
  const int64_t n = int64_t(paths.size()), l = clip->config().vision_layers,
                e = clip->config().embed_dim;
  const Range r = ShardRange(n, comm.size(), comm.rank());
  at::Tensor rows = at::zeros({n, l, e}, at::kFloat);
  std::vector<std::string> mine(paths.begin() + r.begin, paths.begin() + r.end);
  if (!mine.empty()) {
    data::ImageLoader loader(mine, io, threads);
    for (int64_t b = 0; b < int64_t(mine.size()); b += chunk) {
      std::vector<int64_t> idx;
      for (int64_t k = b; k < std::min<int64_t>(b + chunk, mine.size()); ++k) idx.push_back(k);
      at::Tensor f = BlockFeatures(clip, loader.Batch(idx));  // (L, c, E)
      rows.slice(0, r.begin + b, r.begin + b + int64_t(idx.size())).copy_(f.permute({1, 0, 2}));
    }
  }
  std::vector<int64_t> counts;
  for (int k = 0; k < comm.size(); ++k) counts.push_back(ShardRange(n, comm.size(), k).size());
  comm.AllgatherRows(rows, counts);
  return rows.permute({1, 0, 2}).contiguous();
}

// ---- the data --------------------------------------------------------------------------------

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

std::vector<int64_t> ResolveParticipants(const TrainMegOptions& o, const meg::RdmStack& st) {
  if (o.mode != "group" && o.mode != "individual")
    throw ConfigError("train.meg.mode must be group or individual, got '" + o.mode + "'");
  const auto& labels = st.participant_labels();
  std::vector<int64_t> ps;
  for (const auto& want : o.participants) {
    int64_t found = -1;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == want) found = int64_t(i);
    if (found < 0) {
      char* end = nullptr;
      const long long v = std::strtoll(want.c_str(), &end, 10);
      if (!want.empty() && end != nullptr && *end == '\0' && v >= 0 && v < (long long)labels.size())
        found = v;
    }
    if (found < 0) {
      std::string avail;
      for (size_t i = 0; i < labels.size(); ++i) avail += (i ? ", " : "") + labels[i];
      throw DataError("train.meg.participants: '" + want + "' is not a participant of " +
                      st.source() + " (labels: " + avail + "; or a 0-based index < " +
                      std::to_string(labels.size()) + ")");
    }
    if (std::find(ps.begin(), ps.end(), found) != ps.end())
      throw ConfigError("train.meg.participants: '" + want + "' is listed twice");
    ps.push_back(found);
  }
  if (o.mode == "individual" && ps.size() != 1)
    throw ConfigError(
        "train.meg.mode individual needs exactly one participant in "
        "train.meg.participants, got " +
        std::to_string(ps.size()));
  if (ps.empty())
    for (int64_t p = 0; p < st.participants(); ++p) ps.push_back(p);
  return ps;
}

model::MegHeadOptions HeadOptions(const TrainMegOptions& o, const meg::TimeAxis& axis) {
  model::MegHeadOptions h;
  h.axis_start_ms = axis.start_ms;
  h.axis_step_ms = axis.step_ms;
  h.axis_size = axis.size;
  h.train_start_ms = o.train_start_ms;
  h.train_end_ms = o.train_end_ms;
  h.train_step_ms = o.train_step_ms;
  h.window_ms = o.window_ms;
  return h;
}

// meg.rdm.rescale minmax: the reference's load_rdm rescales the WHOLE (P, T, n, n) array by its
// own min and max (RdmStack::ValueRange), so every read is rescaled by the file's bounds.
at::Tensor MaybeRescale(const TrainMegOptions& o, const meg::RdmStack::Range& range,
                        const at::Tensor& stack) {
  return o.rdm.rescale == "minmax" ? meg::RescaleMinMax(stack, range.min, range.max)
                                   : stack.to(at::kFloat);
}

MegData LoadData(const TrainMegOptions& o) {
  Require(o.image_dir, "image_dir");
  if (o.rdm.path.empty())
    throw ConfigError("meg.rdm.path is required: the MEG RDM stacks to train on");
  MegData d;
  meg::RdmStack st = meg::RdmStack::Open(o.rdm);
  d.names = st.names();
  d.axis = st.time();
  d.participant_labels = st.participant_labels();
  d.ps = ResolveParticipants(o, st);
  // The training window and the axis, before reading any data.
  const model::MegHeadOptions ho = HeadOptions(o, d.axis);
  const model::MegWindows win = model::MegTrainWindows(ho);
  d.paths = ResolveImages(d.names, o.image_dir, st.source());
  std::vector<std::string> heldout;
  if (!o.heldout_names.empty()) heldout = io::ReadNameList(o.heldout_names);
  d.split =
      data::SplitBehavior(d.names, heldout, o.val_fraction, uint64_t(o.seed), o.heldout_names);
  d.used = d.split.train;
  d.used.insert(d.used.end(), d.split.val.begin(), d.split.val.end());
  d.pos.assign(d.names.size(), -1);
  for (size_t k = 0; k < d.used.size(); ++k) d.pos[d.used[k]] = int64_t(k);
  // Target: mean over the participants, every timepoint (for the global rescale), then the
  // training timepoints only.
  at::Tensor full = st.ReadMean(d.ps, 0, d.axis.size, d.used);  // (T_full, u, u)
  const meg::RdmStack::Range range =
      o.rdm.rescale == "minmax" ? st.ValueRange() : meg::RdmStack::Range{};
  full = MaybeRescale(o, range, full);
  d.target = full.index_select(0, at::tensor(win.index, at::kLong)).contiguous();
  full = at::Tensor();
  // Curves from the participants' training-object stacks.
  std::vector<at::Tensor> stacks;
  for (int64_t p : d.ps)
    stacks.push_back(MaybeRescale(o, range, st.Read(p, 0, d.axis.size, d.split.train)));
  d.curves = meg::ComputeCurves(stacks, d.axis, o.noise_scale, o.noise_sigma);
  return d;
}

// ---- training state ----------------------------------------------------------------------------

struct Stage {
  at::Tensor best_wfr;  // phase 1: Wfr of the best epoch so far (every rank keeps its own copy)
  ModelParts m;
  MegData d;
  std::unique_ptr<model::MegHead> head;
  PearsonMSELongLoss loss;
  at::Tensor cache;  // (L, n_used, E) block features of train + validation images (phase 1)
  Named dora;        // phase 2 trainable DoRA parameters
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

Named Trainable(Stage& s) {
  Named out{{"wfr", s.head->wfr}};
  out.insert(out.end(), s.dora.begin(), s.dora.end());
  return out;
}

std::vector<double> LearningRates(const Stage& s, const TrainMegOptions& o, int64_t phase) {
  std::vector<double> lrs{phase == 1 ? o.lr_wfr_1 : o.lr_wfr_2};
  lrs.resize(1 + s.dora.size(), o.lr_dora);
  return lrs;
}

// Target (T, B, B) of objects `items` (indices into names).
at::Tensor TargetOf(const Stage& s, const std::vector<int64_t>& items) {
  std::vector<int64_t> cols;
  for (int64_t i : items) cols.push_back(s.d.pos[i]);
  at::Tensor idx = at::tensor(cols, at::kLong);
  return s.d.target.index_select(1, idx).index_select(2, idx);
}

MegLossTerms BatchLoss(Stage& s, const at::Tensor& block_cls, const std::vector<int64_t>& items,
                       bool noise, at::Generator gen) {
  at::Tensor emb = s.head->Embeddings(block_cls, s.m.text_norm, s.m.scale_exp, noise, gen);
  return s.loss(PearsonRdm(emb), TargetOf(s, items));
}

struct Terms {
  double total = 0, mse = 0, p = 0, g = 0;
};

// Validation terms (mean over the validation batches, noise off). Collective in phase 2 (the
// validation images are re-encoded, sharded over ranks).
Terms Validate(Stage& s, const TrainMegOptions& o, int64_t phase, const parallel::Comm& comm) {
  at::NoGradGuard no_grad;
  const auto& val = s.d.split.val;
  at::Tensor feats;  // (L, n_val, E)
  if (phase == 1) {
    std::vector<int64_t> cols;
    for (int64_t i : val) cols.push_back(s.d.pos[i]);
    feats = s.cache.index_select(1, at::tensor(cols, at::kLong));
  } else {
    std::vector<std::string> paths;
    for (int64_t i : val) paths.push_back(s.d.paths[i]);
    feats = EncodeAll(s.m.clip, paths, s.m.image_options, o.batch, int(o.loader_threads), comm);
  }
  Terms t;
  const auto batches = MakeBatches(int64_t(val.size()), o.batch, "validation");
  for (size_t k = 0; k < batches.size(); ++k) {
    const auto [b0, bn] = batches[k];
    std::vector<int64_t> items(val.begin() + b0, val.begin() + b0 + bn);
    MegLossTerms l = BatchLoss(s, feats.narrow(1, b0, bn), items, false,
                               MakeGenerator(uint64_t(o.seed), kEvalStream + k));
    t.total += l.total.item<double>();
    t.mse += l.mse.item<double>();
    t.p += l.pearson.item<double>();
    t.g += l.generalization.item<double>();
  }
  const double n = double(batches.size());
  t.total /= n;
  t.mse /= n;
  t.p /= n;
  t.g /= n;
  return t;
}

// Writes best.safetensors + best.json: the model after `epoch` epochs (0 = the initial model).
void SaveBest(Stage& s, const TrainMegOptions& o, const RunInfo& info, const Progress& pr,
              const Terms& val, int64_t epoch) {
  Named t{{"wfr", s.head->wfr},
          {"curves/richness", s.d.curves.richness},
          {"curves/beta", s.d.curves.beta},
          {"curves/noise", s.d.curves.noise}};
  if (pr.phase == 2) {
    Named dt = DoraTensors(s.m.clip);
    t.insert(t.end(), dt.begin(), dt.end());
  }
  nlohmann::json meta = {
      {"format", "cliphba MEG checkpoint"},
      {"config_hash", info.config_hash},
      {"mode", o.mode},
      {"participants",
       [&] {
         std::vector<std::string> l;
         for (int64_t p : s.d.ps) l.push_back(s.d.participant_labels[p]);
         return l;
       }()},
      {"base_checkpoint", o.checkpoint},
      {"behavior_checkpoint", o.behavior_checkpoint},
      {"behavior_vision", o.behavior_vision},
      {"phase", pr.phase},
      {"epoch", epoch},
      {"val_loss", val.total},
      {"val_pearson", val.p},
      {"val_mse", val.mse},
      {"val_generalization", val.g},
      {"p0", pr.p0},
      {"m0", pr.m0},
      {"g0", pr.g0},
      {"axis",
       {{"start_ms", s.d.axis.start_ms}, {"step_ms", s.d.axis.step_ms}, {"size", s.d.axis.size}}},
      {"window_ms", o.window_ms},
      {"wfr_init", o.wfr_init},
      {"dora",
       {{"applied", pr.phase == 2},
        {"rank", o.dora_rank},
        {"alpha", o.dora_alpha},
        {"vision_blocks", s.dora_blocks},
        {"train_magnitude", o.dora_train_magnitude}}}};
  std::map<std::string, std::string> md{{"config_hash", info.config_hash}};
  model::SaveSafetensors(o.out_dir + "/best.safetensors", Snapshot(t), md);
  io::WriteTextFileAtomically(o.out_dir + "/best.json", meta.dump(1) + "\n");
}

void SaveState(Stage& s, const AdamW& adam, const Progress& pr, const TrainMegOptions& o,
               const RunInfo& info) {
  nlohmann::json j = {{"phase", pr.phase},
                      {"epoch", pr.epoch},
                      {"phase1_epochs", pr.phase1_epochs},
                      {"steps", pr.steps},
                      {"bad_epochs", pr.bad_epochs},
                      {"best_epoch", pr.best_epoch},
                      {"best_total", pr.best_total},
                      {"best_p", pr.best_p},
                      {"p0", pr.p0},
                      {"m0", pr.m0},
                      {"g0", pr.g0},
                      {"adam_initialised", !adam.exp_avg.empty()},
                      {"train_loss", pr.train_loss},
                      {"val_loss", pr.val_loss},
                      {"val_pearson", pr.val_p},
                      {"epoch_phase", pr.epoch_phase}};
  WriteResumeState(o.out_dir, pr.epoch, Trainable(s), adam, std::move(j), info.config_hash);
}

// Collective: rank 0's values of `t` (contiguous CPU float32/float64) on every rank, in place.
void BroadcastFromRoot(at::Tensor& t, const parallel::Comm& comm) {
  if (comm.size() == 1) return;
  at::NoGradGuard no_grad;
  at::Tensor rows = t.detach().reshape({1, -1}).clone();
  std::vector<int64_t> counts(size_t(comm.size()), 0);
  counts[0] = 1;
  comm.AllgatherRows(rows, counts);
  t.copy_(rows.view(t.sizes()));
}

// Collective: rank 0's validation terms on every rank, so that every rank takes the same
// checkpoint, patience and phase decisions (a rank deciding otherwise would leave the others
// waiting in a collective for ever).
void AgreeOnTerms(Terms* t, const parallel::Comm& comm) {
  at::Tensor v = at::tensor({t->total, t->mse, t->p, t->g}, at::kDouble);
  BroadcastFromRoot(v, comm);
  auto a = v.accessor<double, 1>();
  *t = Terms{a[0], a[1], a[2], a[3]};
}

// Collective: throws (an internal error, exit 1) if the ranks' trainable tensors differ. In phase 2
// the ranks hold replicas (equal all-reduced gradients, elementwise AdamW steps), so a difference
// is a bug that would otherwise give a rank-dependent model; a cheap fingerprint (sum and sum of
// squares of every tensor, float64) is compared once per epoch.
void CheckReplicasAgree(const Named& params, const parallel::Comm& comm, int64_t epoch) {
  if (comm.size() == 1) return;
  std::vector<double> f;
  for (const auto& p : params) {
    at::Tensor d = p.second.detach().to(at::kDouble);
    f.push_back(d.sum().item<double>());
    f.push_back(d.pow(2).sum().item<double>());
  }
  at::Tensor hi = at::tensor(f, at::kDouble), lo = -hi.clone();
  comm.AllreduceMax(hi);
  comm.AllreduceMax(lo);
  // max - min over ranks; non-finite fingerprints (a diverged loss) are not this check's business.
  const at::Tensor spread = (hi + lo).abs().masked_select(at::isfinite(hi) & at::isfinite(lo));
  if (spread.numel() > 0 && spread.max().item<double>() > 0)
    throw Error(ExitCode::kInternal,
                fmt::format("MEG training: the ranks' model replicas differ after epoch {} "
                            "(largest fingerprint spread {:.3g}); this is a bug, please report it",
                            epoch, spread.max().item<double>()));
}

// Collective. Phase 2 set-up: Wfr of the best phase-1 epoch (or its initial value), then rank 0's
// Wfr on every rank; DoRA on the vision blocks. The best Wfr comes from memory; only a resumed run
// reads it from best.safetensors (written by rank 0 in an earlier process: reading it during a
// run would race with rank 0's write of the last phase-1 checkpoint).
void EnterPhase2(Stage& s, const TrainMegOptions& o, const Progress& pr, const parallel::Comm& comm) {
  at::NoGradGuard no_grad;
  const std::string best = o.out_dir + "/best.safetensors";
  if (pr.best_epoch > 0 && s.best_wfr.defined()) {
    s.head->wfr.copy_(s.best_wfr);
  } else if (pr.best_epoch > 0) {
    model::StateDict sd = model::LoadSafetensors(best);
    const at::Tensor* w = sd.Find("wfr");
    if (w == nullptr || w->sizes() != s.head->wfr.sizes())
      throw DataError(best + ": no Wfr of shape (" + std::to_string(s.head->wfr.size(0)) + ", " +
                      std::to_string(s.head->wfr.size(1)) + ")");
    s.head->wfr.copy_(*w);
  } else {
    s.head->ResetWfr();  // phase 1 saved nothing: phase 2 starts from Wfr's configured start
  }
  BroadcastFromRoot(s.head->wfr, comm);
  s.best_wfr = at::Tensor();
  torch::manual_seed(uint64_t(o.seed));
  model::ApplyDora(s.m.clip, s.dora_blocks, 0, o.dora_rank, o.dora_alpha, o.dora_train_magnitude);
  s.m.clip->eval();
  s.dora.clear();
  for (const auto& item : s.m.clip->named_parameters())
    if (item.value().requires_grad()) s.dora.emplace_back(item.key(), item.value());
  s.cache = at::Tensor();  // phase 2 re-encodes the images
}

bool LoadState(Stage& s, AdamW* adam, Progress* pr, const TrainMegOptions& o, const RunInfo& info,
               const parallel::Comm& comm) {
  const std::string json_path = o.out_dir + "/last_state.json";
  if (!fs::exists(json_path)) return false;
  const nlohmann::json j = ReadResumeRecord(json_path, info.config_hash);
  try {
    pr->phase = j.at("phase").get<int64_t>();
    pr->epoch = j.at("epoch").get<int64_t>();
    pr->phase1_epochs = j.at("phase1_epochs").get<int64_t>();
    pr->steps = j.at("steps").get<int64_t>();
    pr->bad_epochs = j.at("bad_epochs").get<int64_t>();
    pr->best_epoch = j.at("best_epoch").get<int64_t>();
    pr->best_total = j.at("best_total").get<double>();
    pr->best_p = j.at("best_p").get<double>();
    pr->p0 = j.at("p0").get<double>();
    pr->m0 = j.at("m0").get<double>();
    pr->g0 = j.at("g0").get<double>();
    pr->train_loss = j.at("train_loss").get<std::vector<double>>();
    pr->val_loss = j.at("val_loss").get<std::vector<double>>();
    pr->val_p = j.at("val_pearson").get<std::vector<double>>();
    pr->epoch_phase = j.at("epoch_phase").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(json_path + ": corrupt resume state: " + e.what());
  }
  if (pr->phase == 2) EnterPhase2(s, o, *pr, comm);
  const std::string file = o.out_dir + "/" + j.at("file").get<std::string>();
  RestoreTrainState(model::LoadSafetensors(file), file, Trainable(s), adam,
                    j.value("adam_initialised", false));
  return true;
}

Stage BuildStage(const TrainMegOptions& o) {
  Stage s;
  s.m = BuildModel(o);
  s.d = LoadData(o);
  s.dora_blocks = VisionDoraBlocks(o, s.m.cfg);
  s.head = std::make_unique<model::MegHead>(
      HeadOptions(o, s.d.axis), s.m.cfg.vision_layers, s.d.curves.richness, s.d.curves.beta,
      s.d.curves.noise,
      o.wfr_init == "ramp" ? model::MegHead::Init::kRamp : model::MegHead::Init::kLastBlock);
  s.loss.p_weight = o.p_weight;
  s.loss.m_weight = o.m_weight;
  s.loss.g_weight = o.g_weight;
  return s;
}

}  // namespace

MegTrainResult TrainMeg(const TrainMegOptions& o, const RunInfo& info, bool resume,
                        const parallel::Comm& comm, const RunControl& control) {
  // Everything is validated and loaded before out_dir is touched.
  Stage s = BuildStage(o);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw IoError(o.out_dir + ": cannot create train.meg.out_dir: " + ec.message());
  const auto& train = s.d.split.train;
  const int64_t n_train = int64_t(train.size());
  MegTrainResult res;
  res.timepoints = s.head->timepoints();
  res.n_train = n_train;
  res.n_val = int64_t(s.d.split.val.size());
  res.n_heldout = int64_t(s.d.split.heldout.size());
  res.n_trainable_phase1 = s.head->wfr.numel();
  res.n_trainable_phase2 =
      s.head->wfr.numel() + DoraTrainableCount(s.m.cfg.vision_width, s.m.cfg.transformer_width,
                                               s.dora_blocks, 0, o.dora_rank,
                                               o.dora_train_magnitude);
  LOG_INFO(
      "MEG {} model: {} objects ({} train, {} validation, {} held out), {} training timepoints "
      "({}..{} ms), {} participant(s), {} rank(s), global batch {}",
      o.mode, s.d.names.size(), n_train, res.n_val, res.n_heldout, res.timepoints, o.train_start_ms,
      o.train_end_ms, s.d.ps.size(), comm.size(), o.batch);
  std::unique_ptr<parallel::AllreduceBackend> backend =
      parallel::MakeBackend(o.dist_backend, comm, at::Device(at::kCPU));
  const int64_t bucket_bytes = int64_t(o.dist_bucket_mb * double(1 << 20));

  AdamW adam;
  Progress pr;
  const bool resumed = resume && LoadState(s, &adam, &pr, o, info, comm);
  if (pr.phase == 1) {
    std::vector<std::string> paths;
    for (int64_t i : s.d.used) paths.push_back(s.d.paths[i]);
    s.cache = EncodeAll(s.m.clip, paths, s.m.image_options, o.batch, int(o.loader_threads), comm);
  }
  if (resumed) {
    LOG_INFO("resumed after epoch {} (phase {}) from {}/last_state.json", pr.epoch, pr.phase,
             o.out_dir);
  } else {
    // Initial-loss normalisation: the initial model on the validation set, noise off.
    const Terms t0 = Validate(s, o, 1, comm);
    if (!(t0.p > 0) || !(t0.mse > 0) || !(t0.g > 0))
      throw DataError(fmt::format(
          "train.meg: the initial validation losses (Pearson {}, MSE {}, generalisation {}) "
          "cannot normalise the loss (each must be > 0)",
          t0.p, t0.mse, t0.g));
    pr.p0 = t0.p;
    pr.m0 = t0.mse;
    pr.g0 = t0.g;
    pr.best_total = o.p_weight + o.m_weight + o.g_weight;
    pr.best_p = t0.p;
    // The initial model is the checkpoint until an epoch improves both losses (the reference
    // leaves none, and its phase 2 then fails to load one): a participant whose training never
    // improves still gets a model (best_epoch 0, reported) instead of failing a cohort run.
    if (comm.is_root()) SaveBest(s, o, info, pr, t0, 0);
  }
  s.loss.p0 = pr.p0;
  s.loss.m0 = pr.m0;
  s.loss.g0 = pr.g0;
  LOG_INFO("initial validation losses: Pearson {:.6f}, MSE {:.6f}, generalisation {:.6f}", pr.p0,
           pr.m0, pr.g0);

  const auto batches = MakeBatches(n_train, o.batch, "training");
  int64_t epochs_this_run = 0;
  bool stop = false;
  auto phase1_over = [&] {
    return pr.bad_epochs >= o.patience_phase1 ||
           (o.phase1_epochs > 0 && pr.phase1_epochs >= o.phase1_epochs);
  };
  while (!stop && pr.epoch < o.epochs) {
    if (pr.phase == 1 && phase1_over()) {
      LOG_INFO("phase 1 over after {} epochs (best epoch {}): DoRA on the last {} vision blocks",
               pr.phase1_epochs, pr.best_epoch, s.dora_blocks);
      pr.phase = 2;
      pr.bad_epochs = 0;
      EnterPhase2(s, o, pr, comm);
      adam = AdamW();
      adam.step = 0;
      continue;
    }
    if (pr.phase == 2 && pr.bad_epochs >= o.patience_phase2) {
      res.early_stopped = true;
      break;
    }
    const Named params = Trainable(s);
    std::vector<at::Tensor> tensors;
    for (const auto& p : params) tensors.push_back(p.second);
    const std::vector<double> lrs = LearningRates(s, o, pr.phase);
    const std::vector<int64_t> order = data::EpochOrder(n_train, uint64_t(o.seed), pr.epoch);
    // Phase 2: this rank's images of every batch, in order.
    std::vector<Range> mine(batches.size());
    std::unique_ptr<data::ImageLoader> loader;
    if (pr.phase == 2) {
      std::vector<std::string> paths;
      for (size_t b = 0; b < batches.size(); ++b) {
        mine[b] = ShardRange(batches[b].second, comm.size(), comm.rank());
        for (int64_t j = mine[b].begin; j < mine[b].end; ++j)
          paths.push_back(s.d.paths[train[order[batches[b].first + j]]]);
      }
      loader = std::make_unique<data::ImageLoader>(paths, s.m.image_options, int(o.loader_threads));
    }
    int64_t consumed = 0;
    double loss_sum = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto [b0, bn] = batches[b];
      std::vector<int64_t> items;
      for (int64_t j = b0; j < b0 + bn; ++j) items.push_back(train[order[j]]);
      at::Generator gen = MakeGenerator(uint64_t(o.seed), uint64_t(pr.steps));
      at::Tensor feats;  // (L, B, E)
      if (pr.phase == 1) {
        std::vector<int64_t> cols;
        for (int64_t i : items) cols.push_back(s.d.pos[i]);
        feats = s.cache.index_select(1, at::tensor(cols, at::kLong));
      } else {
        const Range r = mine[b];
        at::Tensor own;  // (L, b, E) with autograd
        at::Tensor all = at::zeros({bn, s.m.cfg.vision_layers, s.m.cfg.embed_dim}, at::kFloat);
        if (r.size() > 0) {
          std::vector<int64_t> idx;
          for (int64_t j = 0; j < r.size(); ++j) idx.push_back(consumed++);
          own = BlockFeatures(s.m.clip, loader->Batch(idx));
          all.slice(0, r.begin, r.end).copy_(own.detach().permute({1, 0, 2}));
        }
        std::vector<int64_t> counts;
        for (int k = 0; k < comm.size(); ++k)
          counts.push_back(ShardRange(bn, comm.size(), k).size());
        comm.AllgatherRows(all, counts);
        at::Tensor full = all.permute({1, 0, 2});  // constants, (L, B, E)
        feats = r.size() == 0
                    ? full
                    : at::cat({full.slice(1, 0, r.begin), own, full.slice(1, r.end, bn)}, 1);
      }
      MegLossTerms l = BatchLoss(s, feats, items, o.noise, gen);
      l.total.backward();
      loss_sum += l.total.item<double>();
      if (pr.phase == 2) {
        // Wfr's gradient is already the full-batch one on every rank: count it once.
        if (!comm.is_root() && s.head->wfr.grad().defined()) s.head->wfr.mutable_grad().zero_();
        parallel::AllreduceGradients(tensors, *backend, bucket_bytes);
      }
      AdamWStep(params, lrs, &adam, o.weight_decay);
      ++pr.steps;
      for (auto& p : tensors) p.mutable_grad() = at::Tensor();
      if (comm.AnyTrue(TerminationRequested())) {
        LOG_WARN("termination requested: stopping; resume from the state after epoch {}", pr.epoch);
        res.stopped = true;
        break;
      }
    }
    if (res.stopped) break;
    // Phase 1 trains Wfr redundantly on every rank (ranks on nodes with other thread counts may
    // round differently): rank 0's Wfr is the model. Phase 2's replicas must agree exactly.
    if (pr.phase == 1)
      BroadcastFromRoot(s.head->wfr, comm);
    else
      CheckReplicasAgree(params, comm, pr.epoch + 1);
    Terms val = Validate(s, o, pr.phase, comm);
    AgreeOnTerms(&val, comm);
    const double train_loss = loss_sum / double(batches.size());
    const bool improved = val.total < pr.best_total && val.p < pr.best_p;
    if (improved) {
      if (pr.phase == 1) s.best_wfr = s.head->wfr.detach().clone();
      if (comm.is_root()) SaveBest(s, o, info, pr, val, pr.epoch + 1);
      pr.best_total = val.total;
      pr.best_p = val.p;
      pr.best_epoch = pr.epoch + 1;
      pr.bad_epochs = 0;
    } else {
      ++pr.bad_epochs;
    }
    ++pr.epoch;
    if (pr.phase == 1) ++pr.phase1_epochs;
    ++epochs_this_run;
    pr.train_loss.push_back(train_loss);
    pr.val_loss.push_back(val.total);
    pr.val_p.push_back(val.p);
    pr.epoch_phase.push_back(pr.phase);
    if (comm.is_root()) SaveState(s, adam, pr, o, info);
    LOG_INFO(
        "epoch {}/{} (phase {}): train loss {:.6f}, validation loss {:.6f} (Pearson {:.6f}, MSE "
        "{:.6f}, generalisation {:.6f}){}",
        pr.epoch, o.epochs, pr.phase, train_loss, val.total, val.p, val.mse, val.g,
        improved ? " (best, saved)" : "");
    if (control.stop_after_epochs > 0 && epochs_this_run >= control.stop_after_epochs &&
        pr.epoch < o.epochs) {
      res.stopped = true;
      break;
    }
  }
  if (!res.stopped && pr.phase == 2 && pr.bad_epochs >= o.patience_phase2) res.early_stopped = true;
  comm.Barrier();
  res.train_loss = pr.train_loss;
  res.val_loss = pr.val_loss;
  res.val_pearson = pr.val_p;
  res.epoch_phase = pr.epoch_phase;
  res.p0 = pr.p0;
  res.m0 = pr.m0;
  res.g0 = pr.g0;
  res.epochs_done = pr.epoch;
  res.phase1_epochs = pr.phase1_epochs;
  res.best_epoch = pr.best_epoch;
  res.best_val_loss = pr.best_total;
  res.best_val_pearson = pr.best_p;
  for (const auto& p : Trainable(s)) {
    at::Tensor f = p.second.detach().to(at::kFloat).contiguous().view(-1);
    res.trainable.insert(res.trainable.end(), f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  }
  return res;
}

namespace {

// The best checkpoint as a model: CLIP (+ DoRA), text features, the head over the FULL axis.
struct Predictor {
  ModelParts m;
  std::unique_ptr<model::MegHead> head;
  meg::TimeAxis axis;
};

Predictor LoadPredictor(const TrainMegOptions& o) {
  const std::string best = o.out_dir + "/best.safetensors", json_path = o.out_dir + "/best.json";
  if (!fs::exists(best) || !fs::exists(json_path))
    throw IoError(best + ": no trained MEG checkpoint; run `cliphba train meg` first");
  Predictor p;
  p.m = BuildModel(o);
  const nlohmann::json meta = ReadJsonFile(json_path, "not valid JSON");
  model::StateDict sd = model::LoadSafetensors(best);
  try {
    p.axis.start_ms = meta.at("axis").at("start_ms").get<double>();
    p.axis.step_ms = meta.at("axis").at("step_ms").get<double>();
    p.axis.size = meta.at("axis").at("size").get<int64_t>();
    if (meta.at("dora").at("applied").get<bool>()) {
      const auto& d = meta.at("dora");
      const int64_t vb = d.at("vision_blocks").get<int64_t>();
      if (vb > p.m.cfg.vision_layers)
        throw DataError(best + ": DoRA on " + std::to_string(vb) + " vision blocks, but " +
                        o.checkpoint + " has " + std::to_string(p.m.cfg.vision_layers));
      torch::manual_seed(0);
      model::ApplyDora(p.m.clip, vb, 0, d.at("rank").get<int64_t>(), d.at("alpha").get<double>(),
                       d.at("train_magnitude").get<bool>());
      LoadDora(p.m.clip, sd, "visual.", best,
               "does not fit the model built from train.meg.checkpoint:");
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(json_path + ": corrupt checkpoint metadata: " + e.what());
  }
  p.m.clip->eval();
  auto get = [&](const std::string& name) {
    const at::Tensor* t = sd.Find(name);
    if (t == nullptr) throw DataError(best + ": lacks tensor " + name);
    return *t;
  };
  model::MegHeadOptions h;
  h.axis_start_ms = p.axis.start_ms;
  h.axis_step_ms = p.axis.step_ms;
  h.axis_size = p.axis.size;
  h.train_start_ms = p.axis.start_ms;
  h.train_end_ms = p.axis.TimeAt(p.axis.size - 1);
  h.train_step_ms = p.axis.step_ms;
  h.window_ms = meta.value("window_ms", o.window_ms);
  p.head = std::make_unique<model::MegHead>(h, p.m.cfg.vision_layers, get("curves/richness"),
                                            get("curves/beta"), get("curves/noise"));
  at::Tensor w = get("wfr");
  if (w.sizes() != p.head->wfr.sizes())
    throw DataError(best + ": wfr has another shape than (" + std::to_string(p.axis.size) + ", " +
                    std::to_string(p.m.cfg.vision_layers) + ")");
  p.head->wfr = w.clone();
  return p;
}

at::Tensor Predict(Predictor& p, const TrainMegOptions& o, const std::vector<std::string>& names,
                   const parallel::Comm& comm) {
  if (names.size() < 3)
    throw ConfigError("MEG model RDMs need at least 3 objects, got " +
                      std::to_string(names.size()));
  const std::vector<std::string> paths = ResolveImages(names, o.image_dir, "the requested names");
  at::Tensor feats =
      EncodeAll(p.m.clip, paths, p.m.image_options, o.batch, int(o.loader_threads), comm);
  at::NoGradGuard no_grad;
  at::Tensor emb = p.head->Embeddings(feats, p.m.text_norm, p.m.scale_exp, false,
                                      MakeGenerator(uint64_t(o.seed), kEvalStream));
  return UpperTriangles(PearsonRdm(emb.to(at::kDouble))).contiguous();  // (T_full, m)
}

}  // namespace

at::Tensor PredictMegRdms(const TrainMegOptions& o, const std::vector<std::string>& names,
                          const parallel::Comm& comm) {
  Predictor p = LoadPredictor(o);
  return Predict(p, o, names, comm);
}

MegEvaluation EvaluateMeg(const TrainMegOptions& o, const RunInfo& info, const parallel::Comm& comm) {
  if (o.heldout_names.empty())
    throw ConfigError("evaluate meg: set train.meg.heldout_names (at least 3 objects)");
  const std::vector<std::string> names = io::ReadNameList(o.heldout_names);
  if (names.size() < 3)
    throw ConfigError("evaluate meg: " + o.heldout_names + " lists fewer than 3 objects");
  if (o.rdm.path.empty()) throw ConfigError("meg.rdm.path is required");
  meg::RdmStack st = meg::RdmStack::Open(o.rdm);
  const std::vector<int64_t> idx =
      meg::IndicesOfNames(st.names(), names, st.source(), o.heldout_names);
  const std::vector<int64_t> ps = ResolveParticipants(o, st);
  Predictor p = LoadPredictor(o);
  if (p.axis.size != st.timepoints() || std::abs(p.axis.start_ms - st.time().start_ms) > 1e-9 ||
      std::abs(p.axis.step_ms - st.time().step_ms) > 1e-9)
    throw DataError(o.out_dir + "/best.json: the checkpoint's time axis differs from " +
                    st.source() + "'s");
  at::Tensor model_rdm = Predict(p, o, names, comm);  // (T, m) float64
  const int64_t t_full = st.timepoints(), n_p = st.participants();
  MegEvaluation ev;
  ev.n_objects = int64_t(names.size());
  ev.participants = st.participant_labels();
  for (int64_t t = 0; t < t_full; ++t) ev.times_ms.push_back(st.time().TimeAt(t));
  ev.spearman = at::zeros({n_p, t_full}, at::kDouble);
  ev.pearson = at::zeros({n_p, t_full}, at::kDouble);
  ev.target_spearman = at::zeros({t_full}, at::kDouble);
  auto condensed = [](const at::Tensor& stack) {
    return UpperTriangles(stack.to(at::kDouble)).contiguous();
  };
  for (int64_t q = 0; q < n_p; ++q) {
    at::Tensor meg = condensed(st.Read(q, 0, t_full, idx));
    for (int64_t t = 0; t < t_full; ++t) {
      ev.spearman[q][t] = rsa::Spearman(model_rdm[t], meg[t]);
      ev.pearson[q][t] = rsa::Pearson(model_rdm[t], meg[t]);
    }
  }
  at::Tensor target = condensed(st.ReadMean(ps, 0, t_full, idx));
  double sum = 0;
  int64_t count = 0;
  for (int64_t t = 0; t < t_full; ++t) {
    const double r = rsa::Spearman(model_rdm[t], target[t]);
    ev.target_spearman[t] = r;
    if (ev.times_ms[t] >= 0) {
      sum += r;
      ++count;
    }
  }
  ev.mean_target_spearman_from0 = count > 0 ? sum / double(count) : 0.0;
  ev.done = true;
  if (comm.is_root()) {
    const std::string group = o.mode == "group"
                                  ? std::string("/meg/group")
                                  : "/meg/individual/" + st.participant_labels()[ps[0]];
    io::ResultsStore store = io::ResultsStore::Create(o.out_dir + "/evaluation.h5");
    store.SetAttribute("/", "schema_version", int64_t(1));
    store.SetAttribute("/", "config_hash", info.config_hash);
    store.SetAttribute("/", "config_yaml", info.config_yaml);
    store.SetAttribute("/", "command", info.command);
    store.WriteTensor("/meg/times_ms", at::tensor(ev.times_ms, at::kDouble));
    store.WriteStrings("/meg/participants", ev.participants);
    store.WriteStrings(group + "/object_names", names);
    store.WriteTensor(group + "/model_rdm", model_rdm);
    store.WriteTensor(group + "/alignment/spearman", ev.spearman);
    store.WriteTensor(group + "/alignment/pearson", ev.pearson);
    store.WriteTensor(group + "/target_spearman", ev.target_spearman);
    store.SetAttribute(group, "mean_target_spearman_from0", ev.mean_target_spearman_from0);
    store.Commit();
    ev.out = o.out_dir + "/evaluation.h5";
  }
  comm.Barrier();
  return ev;
}

}  // namespace cliphba::train
