// `cliphba train behavior`, `cliphba evaluate behavior`, `cliphba synth images` (stage 1).
//
// Flow: load config -> runtime, rank-aware logging, SIGTERM handler -> train::TrainBehavior /
// EvaluateBehavior (collective) -> print on rank 0 (text or one JSON object).
#include <fmt/core.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/train_commands.h"
#include "config/config.h"
#include "config/identity.h"
#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"
#include "data/behavior_dataset.h"
#include "train/behavior.h"
#include "train/meg.h"

namespace cliphba::apps {

namespace {

// The hash a resume must match (config/identity.h): train.behavior without the keys that do not
// change results and without `epochs`, so that a finished run can be extended with --resume.
std::string TrainHash(const config::Config& cfg) {
  return config::TrainResumeHash(cfg, config::ResultKind::kBehaviorModel);
}

// The output policy for a training command (README.md): without --resume, a folder that already
// holds a trained model or an unfinished run's state is not trained over unless --force. Checked on
// every rank before any work (ConfigError, exit 2, naming the file and both flags).
void CheckTrainOutput(const std::string& out_dir, const char* key, bool resume, bool force) {
  if (resume || force || out_dir.empty()) return;
  for (const char* file : {"last_state.json", "best.safetensors"}) {
    const std::string path = out_dir + "/" + file;
    std::error_code ec;
    if (std::filesystem::exists(path, ec))
      throw ConfigError(path + " exists (" + key + " " + out_dir +
                        " holds an earlier run): --resume continues it, --force trains over it, "
                        "or choose another --out-dir");
  }
}

config::Config Setup(const CommonArgs& args, const parallel::Comm& comm) {
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

int RunTrainBehavior(const CommonArgs& args, bool resume, bool force, const parallel::Comm& comm) {
  config::Config cfg = Setup(args, comm);
  CheckTrainOutput(cfg.train_behavior.out_dir, "train.behavior.out_dir", resume, force);
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

int RunEvaluateBehavior(const CommonArgs& args, const parallel::Comm& comm) {
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

namespace {

// The hash a MEG resume must match (config/identity.h): train.meg and meg.rdm, without the keys
// that do not change results and without `epochs` (a finished run can be extended with --resume).
std::string TrainMegHash(const config::Config& cfg) {
  return config::TrainResumeHash(cfg, config::ResultKind::kGroupModel);
}

config::TrainMegOptions MegOptions(const config::Config& cfg) {
  config::TrainMegOptions o = cfg.train_meg;
  o.rdm = cfg.meg_rdm;  // the RDM source is the shared meg.rdm section
  return o;
}

}  // namespace

int RunTrainMeg(const CommonArgs& args, bool resume, bool force, const parallel::Comm& comm) {
  config::Config cfg = Setup(args, comm);
  CheckTrainOutput(cfg.train_meg.out_dir, "train.meg.out_dir", resume, force);
  InstallTerminationHandler();
  const train::RunInfo info{TrainMegHash(cfg), config::DumpConfig(cfg), "train meg"};
  const config::TrainMegOptions o = MegOptions(cfg);
  train::MegTrainResult r = train::TrainMeg(o, info, resume, comm);
  const int code = r.stopped ? int(ExitCode::kPreempted) : 0;
  if (!comm.is_root()) return code;
  if (args.json) {
    nlohmann::json j = {{"epochs_done", r.epochs_done},
                        {"phase1_epochs", r.phase1_epochs},
                        {"best_epoch", r.best_epoch},
                        {"best_val_loss", r.best_val_loss},
                        {"best_val_pearson", r.best_val_pearson},
                        {"p0", r.p0},
                        {"m0", r.m0},
                        {"g0", r.g0},
                        {"train_loss", r.train_loss},
                        {"val_loss", r.val_loss},
                        {"val_pearson", r.val_pearson},
                        {"epoch_phase", r.epoch_phase},
                        {"early_stopped", r.early_stopped},
                        {"stopped", r.stopped},
                        {"timepoints", r.timepoints},
                        {"n_train", r.n_train},
                        {"n_val", r.n_val},
                        {"n_heldout", r.n_heldout},
                        {"n_trainable_phase1", r.n_trainable_phase1},
                        {"n_trainable_phase2", r.n_trainable_phase2},
                        {"out_dir", o.out_dir},
                        {"config_hash", info.config_hash}};
    fmt::print("{}\n", j.dump());
    return code;
  }
  fmt::print(
      "MEG training ({}): {} epochs ({} in phase 1), best epoch {} (validation loss {:.6f}, "
      "Pearson loss {:.6f}; initial P0 {:.6f}, M0 {:.6f}, G0 {:.6f}){}\n",
      config::Name(o.mode), r.epochs_done, r.phase1_epochs, r.best_epoch, r.best_val_loss,
      r.best_val_pearson, r.p0, r.m0, r.g0, r.early_stopped ? ", early stopped" : "");
  if (r.stopped)
    fmt::print("stopped after epoch {}: rerun with --resume to continue\n", r.epochs_done);
  else if (r.best_epoch == 0)
    fmt::print(
        "no epoch improved both validation losses: {}/best.safetensors is the initial "
        "model (epoch 0)\n",
        o.out_dir);
  else
    fmt::print("checkpoint: {}/best.safetensors\n", o.out_dir);
  return code;
}

int RunEvaluateMeg(const CommonArgs& args, const parallel::Comm& comm) {
  config::Config cfg = Setup(args, comm);
  const train::RunInfo info{TrainMegHash(cfg), config::DumpConfig(cfg), "evaluate meg"};
  train::MegEvaluation e = train::EvaluateMeg(MegOptions(cfg), info, comm);
  if (!comm.is_root()) return 0;
  if (args.json) {
    std::vector<double> target(e.target_spearman.data_ptr<double>(),
                               e.target_spearman.data_ptr<double>() + e.target_spearman.numel());
    nlohmann::json j = {{"n_objects", e.n_objects},
                        {"times_ms", e.times_ms},
                        {"participants", e.participants},
                        {"target_spearman", target},
                        {"mean_target_spearman_from0", e.mean_target_spearman_from0},
                        {"out", e.out},
                        {"config_hash", info.config_hash}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print(
      "MEG evaluation: {} held-out objects, {} timepoints; mean Spearman with the training "
      "target from 0 ms: {:.4f}\nresults written to {}\n",
      e.n_objects, e.times_ms.size(), e.mean_target_spearman_from0, e.out);
  return 0;
}

int RunSynthImages(const CommonArgs& args, bool force) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  RefuseNonEmptyOutDir(cfg.synth_images.out_dir, "synth.images.out_dir", force);
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
