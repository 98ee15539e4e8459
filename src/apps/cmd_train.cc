// `cliphba train behavior`, `cliphba evaluate behavior`, `cliphba synth images` (stage 1).
//
// Flow: load config -> runtime, rank-aware logging, SIGTERM handler -> train::TrainBehavior /
// EvaluateBehavior (collective) -> print on rank 0 (text or one JSON object).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "apps/train_commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"
#include "data/behavior_dataset.h"
#include "train/behavior.h"

namespace cliphba::apps {

namespace {

// The hash a resume must match: train.behavior only, without the keys that do not change results
// (threads, progress interval, all-reduce transport) and without `epochs`, so that a finished run
// can be extended with --resume.
std::string TrainHash(const config::Config& cfg) {
  config::Config c;
  c.train_behavior = cfg.train_behavior;
  const config::TrainBehaviorOptions defaults;
  c.train_behavior.loader_threads = defaults.loader_threads;
  c.train_behavior.progress_seconds = defaults.progress_seconds;
  c.train_behavior.dist_backend = defaults.dist_backend;
  c.train_behavior.dist_bucket_mb = defaults.dist_bucket_mb;
  c.train_behavior.epochs = defaults.epochs;
  return config::ConfigHash(c);
}

config::Config Setup(const CommonArgs& args, const dist::Comm& comm) {
  SetLogRank(comm.rank(), comm.size());
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  SetLogRank(comm.rank(), comm.size(), cfg.log.all_ranks);  // after the level: quiets ranks != 0
  return cfg;
}

nlohmann::json EvalJson(const train::BehaviorEvaluation& e) {
  if (!e.done) return nullptr;
  nlohmann::json j = {{"n_objects", e.n_objects},   {"reference", e.reference},
                      {"spearman", e.spearman},     {"pearson", e.pearson},
                      {"target_mse", e.target_mse}, {"triplet_accuracy", e.triplet_accuracy},
                      {"n_triplets", e.n_triplets}, {"n_triplets_tied", e.n_triplets_tied}};
  if (!e.out.empty()) j["out"] = e.out;
  return j;
}

void PrintEval(const char* what, const train::BehaviorEvaluation& e) {
  if (!e.done) return;
  fmt::print(
      "{}: {} held-out objects vs {}: Spearman {:.4f}, Pearson {:.4f}, target MSE {:.5f}, "
      "triplet accuracy {:.4f} ({} triplets, {} tied)\n",
      what, e.n_objects, e.reference, e.spearman, e.pearson, e.target_mse, e.triplet_accuracy,
      e.n_triplets, e.n_triplets_tied);
}

}  // namespace

int RunTrainBehavior(const CommonArgs& args, bool resume, const dist::Comm& comm) {
  config::Config cfg = Setup(args, comm);
  InstallTerminationHandler();
  const train::RunInfo info{TrainHash(cfg), config::DumpConfig(cfg), "train behavior"};
  train::BehaviorTrainResult r = train::TrainBehavior(cfg.train_behavior, info, resume, comm);
  const int code = r.stopped ? int(ExitCode::kPreempted) : 0;
  if (!comm.is_root()) return code;
  if (args.json) {
    nlohmann::json j = {
        {"epochs_done", r.epochs_done},     {"best_epoch", r.best_epoch},
        {"best_val_loss", r.best_val_loss}, {"initial_val_loss", r.initial_val_loss},
        {"train_loss", r.train_loss},       {"val_loss", r.val_loss},
        {"early_stopped", r.early_stopped}, {"stopped", r.stopped},
        {"n_trainable", r.n_trainable},     {"initial", EvalJson(r.initial)},
        {"final", EvalJson(r.final_eval)},  {"out_dir", cfg.train_behavior.out_dir},
        {"config_hash", info.config_hash}};
    fmt::print("{}\n", j.dump());
    return code;
  }
  fmt::print(
      "behaviour training: {} epochs, best epoch {} (validation loss {:.6f}, initial "
      "{:.6f}), {} trainable parameters{}\n",
      r.epochs_done, r.best_epoch, r.best_val_loss, r.initial_val_loss, r.n_trainable,
      r.early_stopped ? ", early stopped" : "");
  PrintEval("untrained model", r.initial);
  PrintEval("best checkpoint", r.final_eval);
  if (r.stopped)
    fmt::print("stopped after epoch {}: rerun with --resume to continue\n", r.epochs_done);
  else
    fmt::print("checkpoint: {}/best.safetensors\n", cfg.train_behavior.out_dir);
  return code;
}

int RunEvaluateBehavior(const CommonArgs& args, const dist::Comm& comm) {
  config::Config cfg = Setup(args, comm);
  const train::RunInfo info{TrainHash(cfg), config::DumpConfig(cfg), "evaluate behavior"};
  train::BehaviorEvaluation e = train::EvaluateBehavior(cfg.train_behavior, info, comm);
  if (!comm.is_root()) return 0;
  if (args.json) {
    nlohmann::json j = EvalJson(e);
    j["config_hash"] = info.config_hash;
    fmt::print("{}\n", j.dump());
    return 0;
  }
  PrintEval("best checkpoint", e);
  fmt::print("results written to {}\n", e.out);
  return 0;
}

int RunSynthImages(const CommonArgs& args) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  data::SynthImagesSummary s = data::WriteSynthImages(cfg.synth_images);
  if (args.json) {
    nlohmann::json j = {{"n_images", s.n_images},
                        {"n_dims", s.n_dims},
                        {"image_dir", s.image_dir},
                        {"targets_csv", s.targets_csv},
                        {"prompts", s.prompts},
                        {"heldout_names", s.heldout_names},
                        {"config_hash", config::ConfigHash(cfg)}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("synthetic images: {} images, {} target dims\n  {}\n  {}\n  {}\n  {}\n", s.n_images,
             s.n_dims, s.image_dir, s.targets_csv, s.prompts, s.heldout_names);
  return 0;
}

}  // namespace cliphba::apps
