// The real stage implementations of `cliphba run` (pipeline/run.h): each calls the component of
// its stage with the options of its config section and the unit's folder as out_dir.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "io/csv.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "parallel/collectives.h"
#include "pipeline/run.h"
#include "predict/predict.h"
#include "train/behavior.h"
#include "train/meg.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

namespace {

// Stage 1 on the whole world: train::TrainBehavior in <run>/behavior, resumable.
UnitOutcome BehaviorStage(const StageContext& c) {
  config::TrainBehaviorOptions o = c.config->train_behavior;
  o.out_dir = c.out_dir;
  const train::RunInfo info{c.config_hash, config::DumpConfig(*c.config), "run behavior"};
  const train::BehaviorTrainResult r = train::TrainBehavior(o, info, c.resume, *c.comm);
  UnitOutcome out;
  out.stopped = r.stopped;
  if (r.stopped) return out;
  out.metrics["epochs_done"] = double(r.epochs_done);
  out.metrics["best_epoch"] = double(r.best_epoch);
  out.metrics["best_val_loss"] = r.best_val_loss;
  out.metrics["initial_val_loss"] = r.initial_val_loss;
  if (r.initial.done) out.metrics["initial_spearman"] = r.initial.spearman;
  if (r.final_eval.done) {
    out.metric_name = "heldout_spearman";
    out.metric = r.final_eval.spearman;
    out.metrics["heldout_spearman"] = r.final_eval.spearman;
    out.metrics["heldout_pearson"] = r.final_eval.pearson;
    out.metrics["triplet_accuracy"] = r.final_eval.triplet_accuracy;
    out.metrics["target_mse"] = r.final_eval.target_mse;
  } else {
    out.metric_name = "best_val_loss";
    out.metric = r.best_val_loss;
  }
  return out;
}

// Every model of the run on run.predict.images (default: the MEG stages' images, else the
// behaviour images) into <run>/predictions.h5, replaced when the unit is redone. Collective.
UnitOutcome PredictStage(const StageContext& c) {
  const config::Config& cfg = *c.config;
  std::string images = cfg.run.predict_images;
  const bool meg = StageConfigured(cfg, "group") || StageConfigured(cfg, "individual");
  if (images.empty()) images = meg ? cfg.train_meg.image_dir : cfg.train_behavior.image_dir;
  if (images.empty())
    throw ConfigError("stage predict: set run.predict.images (no image_dir of a trained stage)");
  predict::PredictRunOptions o;
  o.run_dir = c.run_dir;
  std::error_code ec;
  if (fs::is_directory(images, ec)) {
    o.images.dir = images;
  } else {
    o.images.list = images;
  }
  o.out = c.run_dir + "/predictions.h5";
  o.rdm = cfg.run.predict_rdm;
  o.loader_threads = int(meg ? cfg.train_meg.loader_threads : cfg.train_behavior.loader_threads);
  o.config_hash = c.config_hash;
  o.config_yaml = config::DumpConfig(cfg);
  const predict::PredictRunResult r = predict::PredictRun(o, *c.comm);
  UnitOutcome out;
  out.metric_name = "n_images";
  out.metric = double(r.n_images);
  out.metrics["models"] = double(r.models.size());
  if (c.comm->is_root())
    LOG_INFO("predictions of {} model(s) for {} images: {}", r.models.size(), r.n_images, o.out);
  return out;
}

// /manifest: one row per unit record (string columns, numbers, and the full JSON records so that
// the manifest can be read back exactly).
void WriteManifest(io::ResultsStore* store, const std::vector<UnitRecord>& records) {
  std::vector<std::string> unit, stage, participant, state, checkpoint, hash, start, end, json;
  std::vector<double> wall, metric;
  std::vector<int64_t> attempts, group_size;
  for (const auto& r : records) {
    unit.push_back(r.unit);
    stage.push_back(r.stage);
    participant.push_back(r.participant);
    state.push_back(UnitStateName(r.state));
    checkpoint.push_back(r.checkpoint_dir);
    hash.push_back(r.config_hash);
    start.push_back(r.start_utc);
    end.push_back(r.end_utc);
    json.push_back(RecordToJson(r));
    wall.push_back(r.wall_seconds);
    metric.push_back(r.metric);
    attempts.push_back(r.attempts);
    group_size.push_back(r.group_size);
  }
  store->WriteStrings("/manifest/unit", unit);
  store->WriteStrings("/manifest/stage", stage);
  store->WriteStrings("/manifest/participant", participant);
  store->WriteStrings("/manifest/state", state);
  store->WriteStrings("/manifest/checkpoint_dir", checkpoint);
  store->WriteStrings("/manifest/config_hash", hash);
  store->WriteStrings("/manifest/start_utc", start);
  store->WriteStrings("/manifest/end_utc", end);
  store->WriteStrings("/manifest/record_json", json);
  const int64_t n = int64_t(records.size());
  store->WriteTensor("/manifest/wall_seconds", at::tensor(wall, at::kDouble).view({n}));
  store->WriteTensor("/manifest/metric", at::tensor(metric, at::kDouble).view({n}));
  store->WriteTensor("/manifest/attempts", at::tensor(attempts, at::kLong).view({n}));
  store->WriteTensor("/manifest/group_size", at::tensor(group_size, at::kLong).view({n}));
}

// Copies the behaviour evaluation (<run>/behavior/evaluation.h5) into /behavior.
void CopyBehavior(io::ResultsStore* store, const std::string& eval_path, const UnitRecord* record) {
  io::ResultsReader in(eval_path);
  store->WriteStrings("/behavior/object_names", in.ReadStrings("/behavior/object_names"));
  for (const char* d :
       {"/behavior/predicted", "/behavior/model_rdm/correlation", "/behavior/reference_rdm"})
    store->WriteTensor(d, in.ReadTensor(d));
  store->SetAttribute("/behavior", "reference", in.ReadStringAttribute("/behavior", "reference"));
  // The evaluation is on the behaviour stage's held-out objects (train/behavior.cc): out of sample.
  const int64_t n = int64_t(in.ReadStrings("/behavior/object_names").size());
  store->SetAttribute("/behavior", "objects", std::string("heldout"));
  store->SetAttribute("/behavior", "n_objects", n);
  store->SetAttribute("/behavior", "n_pairs", n * (n - 1) / 2);
  for (const char* a : {"spearman", "pearson", "target_mse", "triplet_accuracy"})
    store->SetAttribute("/behavior", a, in.ReadDoubleAttribute("/behavior", a));
  for (const char* a : {"n_triplets", "n_triplets_tied"})
    store->SetAttribute("/behavior", a, in.ReadIntAttribute("/behavior", a));
  if (record != nullptr)
    for (const auto& [k, v] : record->metrics)
      if (std::isfinite(v)) store->SetAttribute("/behavior/training", k, v);
}

// Rank 0: the results file (atomic: written as .partial, renamed at Commit), then the report
// script. Every other rank waits; an error on rank 0 is rethrown on every rank
// (parallel::RunOnRoot).
UnitOutcome ReportStage(const StageContext& c) {
  UnitOutcome out;
  parallel::RunOnRoot(*c.comm, [&] {
    const config::Config& cfg = *c.config;
    const std::string path = ResultsPath(cfg);
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    auto manifest = ReadManifest(c.run_dir);
    std::vector<UnitRecord> records;
    for (auto& [name, r] : manifest) {
      if (name == c.unit) {  // this unit is done once the file below is in place
        r.state = UnitState::kDone;
      }
      records.push_back(r);
    }
    io::ResultsStore store = io::ResultsStore::Create(path);
    io::WriteProvenance(&store, "run", config::ConfigHash(cfg), config::DumpConfig(cfg));
    store.SetAttribute("/", "run_name", cfg.run.name);
    store.SetAttribute("/", "run_dir", c.run_dir);
    const std::string eval = c.run_dir + "/behavior/evaluation.h5";
    auto b = manifest.find("behavior");
    if (b != manifest.end() && b->second.state == UnitState::kDone && fs::exists(eval)) {
      CopyBehavior(&store, eval, &b->second);
      WriteBehaviorComparison(&store, cfg, c.run_dir);
    }
    const std::string align = c.run_dir + "/alignment/alignment.h5";
    auto a = manifest.find("alignment");
    if (a != manifest.end() && a->second.state == UnitState::kDone && fs::exists(align))
      CopyMegAlignment(&store, align);
    WriteManifest(&store, records);
    store.Commit();
    LOG_INFO("results: {}", path);
    out.metric_name = "units";
    out.metric = double(records.size());
    // The report (report.md/html with plots) when its script and Debian's python3 exist.
    const std::string py = "/usr/bin/python3";
    if (!cfg.run.report_script.empty() && fs::exists(cfg.run.report_script) &&
        ::access(py.c_str(), X_OK) == 0) {
      const std::string cmd = py + " '" + cfg.run.report_script + "' '" + path + "' '" + c.out_dir +
                              "' 1>&2";  // stdout is reserved for the summary / --json
      const int rc = std::system(cmd.c_str());
      out.metrics["report_script_rc"] = double(rc);
      if (rc != 0)
        LOG_WARN("report script failed (exit {}): {}; the results file is complete", rc, cmd);
      else
        LOG_INFO("report: {}/report.md", c.out_dir);
    } else if (cfg.run.report_script.empty()) {
      LOG_INFO("no report script configured (run.report_script): results file only");
    } else {
      LOG_INFO("report script {} not found (or no {}): results file only", cfg.run.report_script,
               py);
    }
  });
  return out;
}

}  // namespace

StageSet DefaultStages() {
  StageSet s;
  s.behavior = BehaviorStage;
  s.group = MegStage;
  s.individual = MegStage;
  s.predict = PredictStage;
  s.alignment = AlignmentStage;
  s.report = ReportStage;
  s.participants = CohortParticipants;
  s.check_meg_inputs = true;
  return s;
}

}  // namespace cliphba::pipeline
