// The MEG model units of `cliphba run` (stages group and individual, pipeline/run.h): the unit's
// model, its in-sample RDMs, and the out-of-sample RDMs the alignment compares.
//
// Dimension legend: n objects of the MEG RDM stack, T timepoints of its axis, K folds,
// m = n (n - 1) / 2.
#include <ATen/ATen.h>
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "config/config.h"
#include "core/error.h"
#include "core/folds.h"
#include "core/log.h"
#include "io/csv.h"
#include "io/text_file.h"
#include "meg/rdm_stack.h"
#include "parallel/collectives.h"
#include "pipeline/run.h"
#include "rsa/rdm.h"
#include "train/meg.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

namespace {

// The names of `all` (stack order) that are (keep = true) or are not in `list`.
std::vector<std::string> Select(const std::vector<std::string>& all,
                                const std::vector<std::string>& list, bool keep) {
  std::vector<std::string> out;
  for (const auto& name : all)
    if ((std::find(list.begin(), list.end(), name) != list.end()) == keep) out.push_back(name);
  return out;
}

}  // namespace

std::vector<std::string> MegHeldoutObjects(const config::Config& cfg, const meg::RdmStack& stack) {
  const std::string& list = cfg.train_meg.heldout_names;
  if (list.empty()) return {};
  const std::vector<std::string> held = Select(stack.names(), io::ReadNameList(list), true);
  if (held.size() < 3)
    throw ConfigError(fmt::format(
        "train.meg.heldout_names: {} names {} object(s) of meg.rdm ({}); the held-out alignment "
        "needs at least 3 (or leave the key empty for run.cv_folds cross-validation)",
        list, held.size(), stack.source()));
  return held;
}

std::vector<int64_t> MegFolds(const config::Config& cfg, const meg::RdmStack& stack) {
  return ObjectFolds(stack.names(), cfg.run.cv_folds, uint64_t(cfg.train_meg.seed), 3,
                     "run.cv_folds");
}

// Stages 2 and 3, in three steps:
//   1. the unit's model (train::TrainMeg in the unit folder: group = mean of the cohort on the
//      world, individual = one participant on its group's sub-communicator) on every object of
//      meg.rdm but train.meg.heldout_names, with the stage-1 text tower of <run>/behavior when that
//      stage is part of the run; it is the model `predict` applies to new images;
//   2. its RDMs of the objects it trained on -> model_rdms_insample.h5 (a labelled diagnostic);
//   3. the out-of-sample RDMs -> model_rdms.h5: with held-out names, the unit's model on them;
//      otherwise run.cv_folds models in cv/fold-<k>, each trained without fold k (same options)
//      and predicting fold k only; the within-fold pairs are assembled into one (T, m) file, the
//      cross-fold pairs NaN (no single model predicted both objects).
// Resumable: every training resumes from its state, and a finished fold (cv/fold-<k>/
// fold_rdms.h5) is not redone.
UnitOutcome MegStage(const StageContext& c) {
  const config::Config& cfg = *c.config;
  const parallel::Comm& comm = *c.comm;
  config::TrainMegOptions o = cfg.train_meg;
  o.rdm = cfg.meg_rdm;
  o.out_dir = c.out_dir;
  if (c.participant.empty()) {
    o.mode = config::MegMode::kGroup;
    o.participants = c.participants;
  } else {
    o.mode = config::MegMode::kIndividual;
    o.participants = {c.participant};
  }
  const std::string behavior_best = c.run_dir + "/behavior/best.safetensors";
  if (StageConfigured(cfg, "behavior") && fs::exists(behavior_best))
    o.behavior_checkpoint = behavior_best;
  const train::RunInfo info{c.config_hash, config::DumpConfig(cfg),
                            c.participant.empty() ? "run group" : "run individual"};
  // Checked before any training: the out-of-sample design.
  const meg::RdmStack stack = meg::RdmStack::Open(o.rdm);
  const std::vector<std::string>& all = stack.names();
  const std::vector<std::string> heldout = MegHeldoutObjects(cfg, stack);
  std::vector<int64_t> folds;
  if (heldout.empty()) folds = MegFolds(cfg, stack);

  // 1. The unit's model.
  const train::MegTrainResult r = train::TrainMeg(o, info, c.resume, comm);
  UnitOutcome out;
  out.stopped = r.stopped;
  if (r.stopped) return out;
  if (r.best_epoch == 0 && comm.is_root())
    LOG_WARN(
        "unit {}: no MEG training epoch improved both validation losses (see the log): its "
        "model is the initial one (best_epoch 0 in the manifest); consider other train.meg "
        "epochs or learning rates",
        c.unit);
  out.metric_name = "best_val_pearson_loss";
  out.metric = r.best_val_pearson;
  out.metrics["best_val_loss"] = r.best_val_loss;
  out.metrics["best_epoch"] = double(r.best_epoch);
  out.metrics["epochs_done"] = double(r.epochs_done);
  out.metrics["phase1_epochs"] = double(r.phase1_epochs);

  // 2. In-sample RDMs (diagnostic): the objects the model trained (and validated) on.
  const std::vector<std::string> trained = Select(all, heldout, false);
  at::Tensor block_weights;  // (T, L) of the unit's own model, for the report's heatmaps
  const at::Tensor insample = train::PredictMegRdms(o, trained, comm, &block_weights);
  parallel::RunOnRoot(comm, [&] {
    WriteModelRdms(ModelRdmInsamplePath(c.out_dir),
                   {insample, trained, std::vector<int64_t>(trained.size(), 0), "insample",
                    block_weights});
  });

  // 3. Out-of-sample RDMs.
  if (!heldout.empty()) {
    const at::Tensor rdms = train::PredictMegRdms(o, heldout, comm);
    parallel::RunOnRoot(comm, [&] {
      WriteModelRdms(ModelRdmPath(c.out_dir),
                     {rdms, heldout, std::vector<int64_t>(heldout.size(), 0), "heldout", {}});
    });
    return out;
  }
  const int64_t n = int64_t(all.size()), K = cfg.run.cv_folds;
  at::Tensor cv;  // (T, m) on rank 0
  for (int64_t k = 0; k < K; ++k) {
    std::vector<std::string> fold_names;
    std::vector<int64_t> fold_idx;
    for (int64_t i = 0; i < n; ++i)
      if (folds[size_t(i)] == k) {
        fold_names.push_back(all[size_t(i)]);
        fold_idx.push_back(i);
      }
    const std::string dir = c.out_dir + "/cv/fold-" + std::to_string(k + 1);
    const std::string done = dir + "/fold_rdms.h5";
    if (!(c.resume && fs::exists(done))) {
      config::TrainMegOptions fo = o;
      fo.out_dir = dir;
      fo.heldout_names = c.out_dir + "/cv/fold-" + std::to_string(k + 1) + ".txt";
      parallel::RunOnRoot(comm, [&] {
        std::error_code ec;
        fs::create_directories(c.out_dir + "/cv", ec);
        std::string text;
        for (const auto& name : fold_names) text += name + "\n";
        io::WriteTextFileAtomically(fo.heldout_names, text);
      });
      if (comm.is_root())
        LOG_INFO("unit {}: cross-validation fold {}/{}: {} of {} objects held out", c.unit, k + 1,
                 K, fold_names.size(), n);
      const train::MegTrainResult fr = train::TrainMeg(fo, info, c.resume, comm);
      if (fr.stopped) {
        out.stopped = true;
        return out;
      }
      const at::Tensor rk = train::PredictMegRdms(fo, fold_names, comm);
      parallel::RunOnRoot(comm, [&] {
        WriteModelRdms(done, {rk, fold_names, std::vector<int64_t>(fold_names.size(), k),
                              "heldout", {}});
      });
    }
    if (comm.is_root()) {
      const ModelRdms f = ReadModelRdms(done);
      if (f.names != fold_names)
        throw DataError(done + ": /model/names are not the objects of fold " +
                        std::to_string(k + 1) + " (a stale fold: rerun the unit with --force)");
      if (!cv.defined())
        cv = at::full({f.rdm.size(0), rsa::NumPairs(n)}, std::numeric_limits<double>::quiet_NaN(),
                      at::kDouble);
      cv.index_copy_(1, rsa::SubsetPairIndices(n, fold_idx), f.rdm);
    }
  }
  out.metrics["cv_folds"] = double(K);
  parallel::RunOnRoot(comm, [&] {
    WriteModelRdms(ModelRdmPath(c.out_dir), {cv, all, folds, "cross_validated", {}});
  });
  return out;
}

}  // namespace cliphba::pipeline
