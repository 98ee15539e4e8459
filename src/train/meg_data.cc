// MEG training (stages 2 and 3), the data and the model: image files of the RDM objects, batches,
// noise generators, the base / stage-1 CLIP with its cached text features, the per-block image
// features, the participants, the RDM target and curves, and the assembled Stage (meg_internal.h).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/utils.h>  // torch::manual_seed

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/shard.h"
#include "data/behavior_dataset.h"
#include "data/image.h"
#include "data/prompts.h"
#include "io/csv.h"
#include "meg/curves.h"
#include "meg/rdm_stack.h"
#include "meg/target.h"
#include "model/known_checkpoints.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "model/tokenizer.h"
#include "train/common.h"
#include "train/meg_internal.h"

namespace cliphba::train::meg_detail {

namespace fs = std::filesystem;

namespace {

using data::ReadPrompts;
using detail::LoadDora;
using detail::PromptTokenIds;
using detail::ReadJsonFile;
using detail::RequireKey;

void Require(const std::string& value, const char* key) { RequireKey(value, "train.meg", key); }

}  // namespace


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

namespace {

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

}  // namespace

ModelParts BuildModel(const TrainMegOptions& o) {
  Require(o.checkpoint, "checkpoint");
  Require(o.vocab, "vocab");
  Require(o.prompts, "prompts");
  ModelParts m;
  m.precision = model::ParsePrecision(o.precision, "train.meg.precision");
  if (m.precision == model::Precision::kBFloat16 && !model::CpuHasFastBf16())
    LOG_WARN("train.meg.precision is bfloat16, but this CPU has no AMX-BF16/AVX512-BF16: "
             "bfloat16 is emulated here and slower than float32");
  const std::vector<std::string> prompts = ReadPrompts(o.prompts, "train.meg.prompts");
  m.n_prompts = int64_t(prompts.size());
  m.record = detail::ModelRecord(o.checkpoint, o.prompts, prompts, o.vocab, o.vocab_remap,
                                 o.normalization, o.labels, "train.meg");
  model::CheckKnownCheckpoint(o.checkpoint, /*strict=*/false);  // warns on an altered OpenAI file
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
  const at::Tensor ids =
      PromptTokenIds(prompts, o.vocab, o.vocab_remap, m.cfg, o.checkpoint, "train.meg");
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

namespace {

int64_t VisionDoraBlocks(const TrainMegOptions& o, const model::ClipConfig& cfg) {
  if (o.dora_vision_blocks < 0) return cfg.vision_layers;
  if (o.dora_vision_blocks > cfg.vision_layers)
    throw ConfigError("train.meg.dora.vision_blocks is " + std::to_string(o.dora_vision_blocks) +
                      ", but the vision tower has " + std::to_string(cfg.vision_layers) +
                      " blocks (-1 = all)");
  return o.dora_vision_blocks;
}

}  // namespace

// (L, N, E) float32 per-block CLS projections of a batch of images (the tower in `precision`).
at::Tensor BlockFeatures(model::Clip& clip, const at::Tensor& images, model::Precision precision) {
  return at::stack(clip->EncodeImage(images, true, precision).block_cls_proj, 0);
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

std::vector<int64_t> ResolveParticipants(const TrainMegOptions& o, const meg::RdmStack& st) {
  if (o.mode == config::MegMode::kIndividual && o.participants.size() != 1)
    throw ConfigError(
        "train.meg.mode individual needs exactly one participant in "
        "train.meg.participants, got " +
        std::to_string(o.participants.size()));
  return meg::ParticipantIndices(st, o.participants, "train.meg.participants");
}

namespace {

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
  const meg::RdmScale scale = meg::RdmScale::ForFile(st, o.rdm.rescale);  // the one rule
  full = scale.Apply(full);
  d.target = full.index_select(0, at::tensor(win.index, at::kLong)).contiguous();
  full = at::Tensor();
  // Curves from the modelled participants' training-object stacks, or (curves_from_all, the
  // reference) from every participant of the file over every object, held-out ones included.
  std::vector<int64_t> curve_ps = d.ps, curve_objects = d.split.train;
  if (o.curves_from_all) {
    curve_ps = meg::ParticipantIndices(st, {}, "train.meg.curves_from_all");
    curve_objects.resize(size_t(st.objects()));
    for (int64_t i = 0; i < st.objects(); ++i) curve_objects[size_t(i)] = i;
  }
  std::vector<at::Tensor> stacks;
  for (int64_t p : curve_ps)
    stacks.push_back(scale.Apply(st.Read(p, 0, d.axis.size, curve_objects)));
  d.curves = meg::ComputeCurves(stacks, d.axis, o.noise_scale, o.noise_sigma);
  return d;
}

}  // namespace

void ApplyVisionDora(Stage& s, const TrainMegOptions& o) {
  torch::manual_seed(uint64_t(o.seed));  // the adapters' init: a pure function of the seed
  model::ApplyDora(s.m.clip, s.dora_blocks, 0, o.dora_rank, o.dora_alpha, o.dora_train_magnitude);
  s.m.clip->eval();
  s.dora_applied = true;
}

Stage BuildStage(const TrainMegOptions& o) {
  Stage s;
  s.m = BuildModel(o);
  s.d = LoadData(o);
  s.dora_blocks = VisionDoraBlocks(o, s.m.cfg);
  s.head = model::MegHead(HeadOptions(o, s.d.axis), s.m.cfg.vision_layers, s.d.curves.richness,
                          s.d.curves.beta, s.d.curves.noise,
                          o.wfr_init == config::WfrInit::kRamp
                              ? model::MegHeadImpl::Init::kRamp
                              : model::MegHeadImpl::Init::kLastBlock);
  // The reference applies DoRA before phase 1 (fixed there: phase 1 trains Wfr only).
  if (o.dora_from_start) ApplyVisionDora(s, o);
  s.loss.p_weight = o.p_weight;
  s.loss.m_weight = o.m_weight;
  s.loss.g_weight = o.g_weight;
  return s;
}

}  // namespace cliphba::train::meg_detail

namespace cliphba::train {

namespace fs = std::filesystem;

std::vector<std::string> ResolveImages(const std::vector<std::string>& names,
                                       const std::string& image_dir, const std::string& source,
                                       const std::string& key) {
  if (!fs::is_directory(image_dir)) throw IoError(image_dir + ": " + key + " is not a folder");
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
                    " (" + key + "; expected NAME, NAME.jpg, NAME.jpeg or NAME.png): " +
                    list + (missing.size() > 20 ? ", ..." : ""));
  }
  return paths;
}

}  // namespace cliphba::train
