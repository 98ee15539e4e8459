// Stage 1 (behaviour) training loop; see behavior.h for the contract and the files written.
#include "train/behavior.h"

#include <fmt/format.h>
#include <torch/utils.h>  // torch::manual_seed

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/signals.h"
#include "data/behavior_dataset.h"
#include "data/image.h"
#include "data/prompts.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "io/text_file.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/known_checkpoints.h"
#include "model/precision.h"
#include "model/tokenizer.h"
#include "parallel/grad_sync.h"
#include "rsa/behavior.h"
#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "rsa/triplet.h"
#include "train/common.h"

namespace cliphba::train {

namespace fs = std::filesystem;
using config::TrainBehaviorOptions;
using Clock = std::chrono::steady_clock;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

namespace {

using detail::AdamW;
using detail::AdamWStep;
using detail::DoraTensors;
using detail::LoadDora;
using detail::RestoreTrainState;
using detail::Snapshot;
using detail::WriteResumeState;

constexpr const char* kDoesNotFit =
    "does not fit the model built from train.behavior (checkpoint, dora.*):";
using data::ReadPrompts;
using detail::PromptTokenIds;
using detail::ReadResumeRecord;
using detail::RequireKey;

void Require(const std::string& value, const char* key) {
  RequireKey(value, "train.behavior", key);
}

// Everything built from the options that training and evaluation share.
struct Stage {
  model::Clip clip{nullptr};
  at::Tensor token_ids;  // (K, context_length) int64
  int64_t n_prompts = 0;
  data::ImageOptions image_options;
  model::Precision precision = model::Precision::kFloat32;  // the towers' forward (autocast)
  Named trainable;  // (name, parameter) with requires_grad, named_parameters() order
  bool text_trainable = false;
  data::BehaviorDataset ds;
  data::BehaviorSplit split;
  nlohmann::json record;  // detail::ModelRecord: what `predict` needs to rebuild the model
};

Stage BuildStage(const TrainBehaviorOptions& o) {
  Require(o.checkpoint, "checkpoint");
  Require(o.vocab, "vocab");
  Require(o.prompts, "prompts");
  Require(o.targets_csv, "targets_csv");
  Require(o.image_dir, "image_dir");
  Stage s;
  const std::vector<std::string> prompts = ReadPrompts(o.prompts, "train.behavior.prompts");
  s.n_prompts = int64_t(prompts.size());
  s.record = detail::ModelRecord(o.checkpoint, o.prompts, prompts, o.vocab, o.vocab_remap,
                                 o.normalization, o.labels, "train.behavior");
  s.ds = data::LoadBehaviorDataset(o.targets_csv, o.image_dir, s.n_prompts);
  std::vector<std::string> heldout;
  if (!o.heldout_names.empty()) heldout = io::ReadNameList(o.heldout_names);
  s.split =
      data::SplitBehavior(s.ds.names, heldout, o.val_fraction, uint64_t(o.seed), o.heldout_names);

  model::CheckKnownCheckpoint(o.checkpoint, /*strict=*/false);  // warns on an altered OpenAI file
  model::StateDict sd = model::LoadCheckpoint(o.checkpoint);
  if (sd.code_bearing) LOG_INFO("{}: TorchScript archive (code-bearing) loaded", o.checkpoint);
  model::ClipConfig cfg;
  try {
    cfg = model::InferClipConfig(sd.entries);
  } catch (const DataError& e) {
    throw DataError(o.checkpoint +
                    ": not a CLIP ViT checkpoint (train.behavior.checkpoint): " + e.what());
  }
  s.clip = model::Clip(cfg);
  try {
    model::LoadStateDict(s.clip, sd.entries);
  } catch (const DataError& e) {
    throw DataError(o.checkpoint + ": " + e.what());
  }
  if (o.image_size != 0 && o.image_size != cfg.image_resolution)
    throw ConfigError("train.behavior.image_size is " + std::to_string(o.image_size) + ", but " +
                      o.checkpoint + " takes " + std::to_string(cfg.image_resolution) + " x " +
                      std::to_string(cfg.image_resolution) + " images (use 0)");
  s.image_options = data::ImageOptionsFor(o.normalization, cfg.image_resolution);
  s.precision = model::ParsePrecision(o.precision, "train.behavior.precision");
  if (s.precision == model::Precision::kBFloat16 && !model::CpuHasFastBf16())
    LOG_WARN("train.behavior.precision is bfloat16, but this CPU has no AMX-BF16/AVX512-BF16: "
             "bfloat16 is emulated here and slower than float32");

  s.token_ids = PromptTokenIds(prompts, o.vocab, o.vocab_remap, cfg, o.checkpoint,
                               "train.behavior");  // (K, L), once

  torch::manual_seed(uint64_t(o.seed));  // DoRA A and B
  model::ApplyDora(s.clip, o.dora_vision_blocks, o.dora_text_blocks, o.dora_rank, o.dora_alpha,
                   o.dora_train_magnitude);
  s.clip->eval();  // no dropout runs in the CLIP attention either way (dora.h)
  for (const auto& item : s.clip->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    s.trainable.emplace_back(item.key(), item.value());
    if (item.key().rfind("transformer.", 0) == 0) s.text_trainable = true;
  }
  return s;
}

// (K, E) float32 text features of the prompts, all in one batch (the tower's GEMMs in
// train.behavior.precision).
at::Tensor TextFeatures(Stage& s) { return s.clip->EncodeText(s.token_ids, s.precision); }

// images (b, 3, R, R), text (K, E) -> HBA logits (b, K), float32 (the tower in s.precision; the
// backward runs outside the autocast scope, as autocast prescribes).
at::Tensor Predict(Stage& s, const at::Tensor& images, const at::Tensor& text) {
  return s.clip->HbaLogits(s.clip->EncodeImage(images, true, s.precision).features, text);
}

// Predictions (len(items), K) for dataset items, in order, without gradients.
at::Tensor PredictItems(Stage& s, const std::vector<int64_t>& items, const at::Tensor& text,
                        const TrainBehaviorOptions& o) {
  at::NoGradGuard no_grad;
  std::vector<std::string> paths;
  for (int64_t i : items) paths.push_back(s.ds.paths[i]);
  data::ImageLoader loader(paths, s.image_options, int(o.loader_threads));
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < int64_t(items.size()); b += o.batch) {
    std::vector<int64_t> idx;
    for (int64_t k = b; k < std::min<int64_t>(b + o.batch, items.size()); ++k) idx.push_back(k);
    out.push_back(Predict(s, loader.Batch(idx), text));
  }
  if (out.empty()) return at::zeros({0, s.n_prompts}, at::kFloat);
  return at::cat(out, 0);
}

at::Tensor Targets(const Stage& s, const std::vector<int64_t>& items) {
  return s.ds.targets.index_select(0, at::tensor(items, at::kLong));  // (n, K)
}

// Collective: mean squared error over the validation set; each rank predicts its shard.
double ValidationLoss(Stage& s, const at::Tensor& text, const TrainBehaviorOptions& o,
                      const parallel::Comm& comm) {
  const auto& val = s.split.val;
  Range r = ShardRange(int64_t(val.size()), comm.size(), comm.rank());
  std::vector<int64_t> mine(val.begin() + r.begin, val.begin() + r.end);
  double sse = 0;
  if (!mine.empty())
    sse = (PredictItems(s, mine, text, o) - Targets(s, mine)).pow(2).sum().item<double>();
  at::Tensor t = at::tensor({sse}, at::kDouble);
  comm.AllreduceSum(t);
  return t.item<double>() / double(val.size() * s.n_prompts);
}

nlohmann::json ModelMeta(const Stage& s, const TrainBehaviorOptions& o, const RunInfo& info) {
  nlohmann::json meta = s.record;  // base_checkpoint, prompts, vocab, labels, ...
  meta.update(nlohmann::json{
          {"format", "cliphba behavior DoRA checkpoint"},
          {"config_hash", info.config_hash},
          {"seed", o.seed},
          {"batch", o.batch},  // `predict behavior` encodes in chunks of this size
          {"dora",
           {{"rank", o.dora_rank},
            {"alpha", o.dora_alpha},
            {"vision_blocks", o.dora_vision_blocks},
            {"text_blocks", o.dora_text_blocks},
            {"train_magnitude", o.dora_train_magnitude}}}});
  return meta;
}

void SaveBest(Stage& s, const TrainBehaviorOptions& o, const RunInfo& info, int64_t epoch,
              double val_loss) {
  nlohmann::json meta = ModelMeta(s, o, info);
  meta["epoch"] = epoch;
  meta["best_val_loss"] = val_loss;
  std::map<std::string, std::string> md;
  for (auto it = meta.begin(); it != meta.end(); ++it)
    md[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  model::SaveSafetensors(o.out_dir + "/best.safetensors", Snapshot(DoraTensors(s.clip)), md);
  io::WriteTextFileAtomically(o.out_dir + "/best.json", meta.dump(1) + "\n");
}

struct Progress {
  int64_t epoch = 0;  // epochs completed
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0;
  int64_t bad_epochs = 0;
  double initial_val = 0;
  std::vector<double> train_loss, val_loss;
};

void SaveState(Stage& s, const AdamW& adam, const Progress& pr, const TrainBehaviorOptions& o,
               const RunInfo& info) {
  nlohmann::json j = {{"epoch", pr.epoch},
                      {"best_val_loss", pr.best_val},
                      {"best_epoch", pr.best_epoch},
                      {"bad_epochs", pr.bad_epochs},
                      {"initial_val_loss", pr.initial_val},
                      {"train_loss", pr.train_loss},
                      {"val_loss", pr.val_loss}};
  if (!std::isfinite(pr.best_val)) j["best_val_loss"] = nullptr;
  WriteResumeState(o.out_dir, pr.epoch, s.trainable, adam, std::move(j), info.config_hash);
}

// Restores params, AdamW state and progress from out_dir/last_state.json. False if none exists.
bool LoadState(Stage& s, AdamW* adam, Progress* pr, const TrainBehaviorOptions& o,
               const RunInfo& info) {
  const std::string json_path = o.out_dir + "/last_state.json";
  if (!fs::exists(json_path)) return false;
  const nlohmann::json j = ReadResumeRecord(json_path, info.config_hash);
  const std::string file = o.out_dir + "/" + j.at("file").get<std::string>();
  RestoreTrainState(model::LoadSafetensors(file), file, s.trainable, adam, /*with_moments=*/true);
  pr->epoch = j.at("epoch").get<int64_t>();
  pr->best_val = j.at("best_val_loss").is_null() ? std::numeric_limits<double>::infinity()
                                                 : j.at("best_val_loss").get<double>();
  pr->best_epoch = j.at("best_epoch").get<int64_t>();
  pr->bad_epochs = j.at("bad_epochs").get<int64_t>();
  pr->initial_val = j.at("initial_val_loss").get<double>();
  pr->train_loss = j.at("train_loss").get<std::vector<double>>();
  pr->val_loss = j.at("val_loss").get<std::vector<double>>();
  return true;
}

// Held-out evaluation (every rank computes it; rank 0 writes `out` if non-empty).
BehaviorEvaluation Evaluate(Stage& s, const TrainBehaviorOptions& o, const RunInfo& info,
                            const at::Tensor& text, const parallel::Comm& comm,
                            const std::string& out) {
  BehaviorEvaluation ev;
  const auto& items = s.split.heldout;
  if (items.size() < 3) return ev;  // an RDM and triplets need >= 3 objects
  std::vector<std::string> names;
  for (int64_t i : items) names.push_back(s.ds.names[i]);
  at::Tensor pred = PredictItems(s, items, text, o).to(at::kDouble);  // (n, K)
  at::Tensor targets = Targets(s, items).to(at::kDouble);
  ev.target_mse = (pred - targets).pow(2).mean().item<double>();
  rsa::CondensedRdm reference;
  if (!o.reference_rdm.empty()) {
    std::vector<std::string> rdm_names = io::ReadNameList(o.reference_rdm_names);
    at::Tensor square = io::ReadNpy(o.reference_rdm);  // C or Fortran order
    if (square.dim() != 2 || square.size(0) != int64_t(rdm_names.size()) ||
        square.size(1) != int64_t(rdm_names.size()))
      throw DataError(o.reference_rdm + ": expected a square RDM with one row per name of " +
                      o.reference_rdm_names);
    reference = rsa::CondenseSquare(square, o.reference_rdm);
    std::vector<int64_t> rows =
        rsa::AlignByName(names, rdm_names, o.heldout_names, o.reference_rdm_names);
    at::Tensor idx = at::tensor(rows, at::kLong);
    pred = pred.index_select(0, idx);
    std::vector<std::string> aligned;
    for (int64_t r : rows) aligned.push_back(names[r]);
    names = aligned;
    ev.reference = o.reference_rdm;
  } else {
    reference = rsa::ComputeRdm(targets, rsa::RdmMetric::kCorrelation);
    ev.reference = "targets";
  }
  rsa::CondensedRdm model_rdm = rsa::ComputeRdm(pred, rsa::RdmMetric::kCorrelation);
  ev.spearman = rsa::Spearman(model_rdm.values, reference.values);
  ev.pearson = rsa::Pearson(model_rdm.values, reference.values);
  rsa::TripletResult tr =
      rsa::TripletAccuracyAll(rsa::DotSimilarity(pred), rsa::ExpandSquare(reference));
  ev.triplet_accuracy = tr.accuracy;
  ev.n_triplets = tr.n_used;
  ev.n_triplets_tied = tr.n_tied;
  ev.n_objects = int64_t(names.size());
  ev.done = true;
  if (!out.empty() && comm.is_root()) {
    io::ResultsStore store = io::ResultsStore::Create(out);
    store.SetAttribute("/", "schema_version", int64_t(1));
    store.SetAttribute("/", "config_hash", info.config_hash);
    store.SetAttribute("/", "config_yaml", info.config_yaml);
    store.SetAttribute("/", "command", info.command);
    store.WriteStrings("/behavior/object_names", names);
    store.WriteTensor("/behavior/predicted", pred.to(at::kFloat));
    store.WriteTensor("/behavior/model_rdm/correlation", model_rdm.values);
    store.WriteTensor("/behavior/reference_rdm", reference.values);
    store.SetAttribute("/behavior", "reference", ev.reference);
    store.SetAttribute("/behavior", "spearman", ev.spearman);
    store.SetAttribute("/behavior", "pearson", ev.pearson);
    store.SetAttribute("/behavior", "target_mse", ev.target_mse);
    store.SetAttribute("/behavior", "triplet_accuracy", ev.triplet_accuracy);
    store.SetAttribute("/behavior", "n_triplets", ev.n_triplets);
    store.SetAttribute("/behavior", "n_triplets_tied", ev.n_triplets_tied);
    store.Commit();
    ev.out = out;
  }
  return ev;
}

}  // namespace

int64_t DoraTrainableCount(int64_t vision_width, int64_t text_width, int64_t vision_blocks,
                           int64_t text_blocks, int64_t rank, bool train_magnitude) {
  auto block = [&](int64_t w) { return rank * 2 * w + (train_magnitude ? w : 0); };
  return vision_blocks * block(vision_width) + text_blocks * block(text_width);
}

BehaviorTrainResult TrainBehavior(const TrainBehaviorOptions& o, const RunInfo& info, bool resume,
                                  const parallel::Comm& comm, const RunControl& control) {
  // Build: data, model, DoRA, prompts tokenised once.
  Stage s = BuildStage(o);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw IoError(o.out_dir + ": cannot create train.behavior.out_dir: " + ec.message());
  const int64_t n_train = int64_t(s.split.train.size()), k = s.n_prompts;
  BehaviorTrainResult res;
  for (const auto& p : s.trainable) res.n_trainable += p.second.numel();
  LOG_INFO(
      "behaviour: {} objects ({} train, {} validation, {} held out), {} prompts, {} "
      "trainable parameters, {} rank(s), global batch {}",
      s.ds.names.size(), n_train, s.split.val.size(), s.split.heldout.size(), k, res.n_trainable,
      comm.size(), o.batch);
  std::vector<at::Tensor> params;
  for (const auto& p : s.trainable) params.push_back(p.second);
  std::unique_ptr<parallel::AllreduceBackend> backend =
      parallel::MakeBackend(detail::BackendKindOf(o.dist_backend), comm, at::Device(at::kCPU));
  const int64_t bucket_bytes = int64_t(o.dist_bucket_mb * double(1 << 20));

  // Text features: cached when the text tower has nothing to train.
  at::Tensor cached_text;
  if (!s.text_trainable) {
    at::NoGradGuard no_grad;
    cached_text = TextFeatures(s);
  }
  auto eval_text = [&] {
    at::NoGradGuard no_grad;
    return s.text_trainable ? TextFeatures(s) : cached_text;
  };

  res.initial = Evaluate(s, o, info, eval_text(), comm, "");
  AdamW adam;
  Progress pr;
  if (!(resume && LoadState(s, &adam, &pr, o, info))) {
    pr.initial_val = ValidationLoss(s, eval_text(), o, comm);
  } else {
    LOG_INFO("resumed after epoch {} from {}/last_state.json", pr.epoch, o.out_dir);
  }
  res.initial_val_loss = pr.initial_val;
  LOG_INFO("initial validation loss {:.6f}", pr.initial_val);

  const int64_t n_batches = (n_train + o.batch - 1) / o.batch;
  const auto t_start = Clock::now();
  auto t_last = t_start;
  int64_t steps_done = 0, epochs_this_run = 0;
  bool stop = pr.bad_epochs >= o.patience;
  res.early_stopped = stop;
  while (!stop && pr.epoch < o.epochs) {
    // One epoch: this rank's shard of every global batch, in the epoch's shuffled order.
    const std::vector<int64_t> order = data::EpochOrder(n_train, uint64_t(o.seed), pr.epoch);
    std::vector<std::vector<int64_t>> local(n_batches);  // dataset items per batch
    std::vector<int64_t> sizes(n_batches);               // global batch sizes
    std::vector<std::string> paths;
    for (int64_t b = 0; b < n_batches; ++b) {
      const int64_t begin = b * o.batch, size = std::min(o.batch, n_train - begin);
      sizes[b] = size;
      const Range r = ShardRange(size, comm.size(), comm.rank());
      for (int64_t j = begin + r.begin; j < begin + r.end; ++j) {
        local[b].push_back(s.split.train[order[j]]);
        paths.push_back(s.ds.paths[s.split.train[order[j]]]);
      }
    }
    data::ImageLoader loader(paths, s.image_options, int(o.loader_threads));
    int64_t consumed = 0;
    double sse = 0;
    for (int64_t b = 0; b < n_batches; ++b) {
      // forward, backward (loss = SSE of this shard / (B K)), all-reduce, step.
      at::Tensor text = s.text_trainable ? TextFeatures(s) : cached_text;  // (K, E)
      if (!local[b].empty()) {
        std::vector<int64_t> idx;
        for (size_t j = 0; j < local[b].size(); ++j) idx.push_back(consumed++);
        at::Tensor pred = Predict(s, loader.Batch(idx), text);  // (b, K)
        at::Tensor sq = (pred - Targets(s, local[b])).pow(2).sum();
        at::Tensor loss = sq / double(sizes[b] * k);
        loss.backward();
        sse += sq.item<double>();
      }
      parallel::AllreduceGradients(params, *backend, bucket_bytes);
      AdamWStep(s.trainable, std::vector<double>(s.trainable.size(), o.lr), &adam, o.weight_decay);
      for (auto& p : params) p.mutable_grad() = at::Tensor();
      ++steps_done;
      if (comm.AnyTrue(TerminationRequested())) {
        LOG_WARN("termination requested: stopping; resume from the state after epoch {}", pr.epoch);
        res.stopped = true;
        break;
      }
      const auto now = Clock::now();
      if (comm.is_root() &&
          std::chrono::duration<double>(now - t_last).count() >= o.progress_seconds) {
        t_last = now;
        const double el = std::chrono::duration<double>(now - t_start).count();
        const int64_t left = (o.epochs - pr.epoch - 1) * n_batches + (n_batches - b - 1);
        LOG_INFO("epoch {} batch {}/{}: loss {:.6f}, {:.1f} images/s, ETA {} (at most)",
                 pr.epoch + 1, b + 1, n_batches, sse / double(std::max<int64_t>(1, consumed) * k),
                 double(steps_done) * double(o.batch) / el, FormatDuration(el / steps_done * left));
      }
    }
    if (res.stopped) break;
    // Epoch end: losses, early stopping, checkpoints.
    at::Tensor t = at::tensor({sse}, at::kDouble);
    comm.AllreduceSum(t);
    const double train_loss = t.item<double>() / double(n_train * k);
    const double val_loss = ValidationLoss(s, eval_text(), o, comm);
    ++pr.epoch;
    ++epochs_this_run;
    pr.train_loss.push_back(train_loss);
    pr.val_loss.push_back(val_loss);
    const bool improved = val_loss < pr.best_val;
    if (improved) {
      pr.best_val = val_loss;
      pr.best_epoch = pr.epoch;
      pr.bad_epochs = 0;
      if (comm.is_root()) SaveBest(s, o, info, pr.epoch, val_loss);
    } else {
      ++pr.bad_epochs;
    }
    if (comm.is_root()) SaveState(s, adam, pr, o, info);
    LOG_INFO("epoch {}/{}: train loss {:.6f}, validation loss {:.6f}{}", pr.epoch, o.epochs,
             train_loss, val_loss, improved ? " (best, saved)" : "");
    if (pr.bad_epochs >= o.patience) {
      LOG_INFO("early stopping: no improvement for {} epochs (best epoch {})", o.patience,
               pr.best_epoch);
      res.early_stopped = stop = true;
    }
    if (control.stop_after_epochs > 0 && epochs_this_run >= control.stop_after_epochs &&
        pr.epoch < o.epochs && !stop) {
      res.stopped = true;
      break;
    }
  }
  comm.Barrier();  // rank 0's files are complete before anyone reads them
  res.train_loss = pr.train_loss;
  res.val_loss = pr.val_loss;
  res.epochs_done = pr.epoch;
  res.best_epoch = pr.best_epoch;
  res.best_val_loss = pr.best_val;
  for (const auto& p : params) {
    at::Tensor f = p.detach().to(at::kFloat).contiguous().view(-1);
    res.trainable.insert(res.trainable.end(), f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  }
  if (!res.stopped && pr.best_epoch > 0) {
    LoadDora(s.clip, model::LoadSafetensors(o.out_dir + "/best.safetensors"), "",
             o.out_dir + "/best.safetensors", kDoesNotFit);
    res.final_eval = Evaluate(s, o, info, eval_text(), comm, o.out_dir + "/evaluation.h5");
  }
  return res;
}

BehaviorEvaluation EvaluateBehavior(const TrainBehaviorOptions& o, const RunInfo& info,
                                    const parallel::Comm& comm) {
  Stage s = BuildStage(o);
  const std::string best = o.out_dir + "/best.safetensors";
  if (!fs::exists(best))
    throw IoError(best + ": no trained checkpoint; run `cliphba train behavior` first");
  LoadDora(s.clip, model::LoadSafetensors(best), "", best, kDoesNotFit);
  at::NoGradGuard no_grad;
  at::Tensor text = TextFeatures(s);
  BehaviorEvaluation ev = Evaluate(s, o, info, text, comm, o.out_dir + "/evaluation.h5");
  if (!ev.done)
    throw ConfigError(
        "evaluate behavior: fewer than 3 held-out objects; set "
        "train.behavior.heldout_names");
  return ev;
}

}  // namespace cliphba::train
