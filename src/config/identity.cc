#include "config/identity.h"

#include "config/config.h"
#include "core/error.h"
#include "core/hash.h"

namespace cliphba::config {

const char* UnitKindName(ResultKind kind) {
  switch (kind) {
    case ResultKind::kBehaviorModel:
      return "behavior";
    case ResultKind::kGroupModel:
      return "group";
    case ResultKind::kIndividualModel:
      return "individual";
    case ResultKind::kPredictions:
      return "predict";
    case ResultKind::kAlignment:
      return "alignment";
    case ResultKind::kReport:
      return "report";
  }
  return "?";
}

namespace {

// Defaults everywhere but the keys a result of `kind` depends on (the shared rule of identity.h).
Config IdentityConfig(const Config& cfg, ResultKind kind) {
  Config c;
  switch (kind) {
    case ResultKind::kBehaviorModel:
      c.train_behavior = cfg.train_behavior;
      ResetNonResultKeys(&c.train_behavior);
      break;
    case ResultKind::kGroupModel:
    case ResultKind::kIndividualModel:
      c.meg_rdm = cfg.meg_rdm;
      c.train_meg = cfg.train_meg;
      ResetNonResultKeys(&c.train_meg);
      c.run.cv_folds = cfg.run.cv_folds;  // the unit's fold models
      break;
    case ResultKind::kPredictions:  // the models' own identities reach it as upstream units
      c.run.predict_images = cfg.run.predict_images;
      c.run.predict_rdm = cfg.run.predict_rdm;
      c.train_meg.image_dir = cfg.train_meg.image_dir;
      c.train_behavior.image_dir = cfg.train_behavior.image_dir;
      break;
    case ResultKind::kAlignment:
      c.run.seed = cfg.run.seed;
      c.run.participants = cfg.run.participants;
      c.run.own_vs_other_n = cfg.run.own_vs_other_n;
      c.run.cluster_n = cfg.run.cluster_n;
      c.run.cluster_p = cfg.run.cluster_p;
      c.run.cv_folds = cfg.run.cv_folds;
      c.run.compare_bootstrap_n = cfg.run.compare_bootstrap_n;
      c.run.participant_ci_n = cfg.run.participant_ci_n;
      c.meg_rdm = cfg.meg_rdm;
      // The human behaviour RDM of the dynamic behavioural validation.
      c.train_behavior.reference_rdm = cfg.train_behavior.reference_rdm;
      c.train_behavior.reference_rdm_names = cfg.train_behavior.reference_rdm_names;
      c.train_behavior.targets_csv = cfg.train_behavior.targets_csv;
      // The plain-CLIP baseline of the comparisons: the MEG stages' base model and prompts.
      c.train_meg.checkpoint = cfg.train_meg.checkpoint;
      c.train_meg.vocab = cfg.train_meg.vocab;
      c.train_meg.vocab_remap = cfg.train_meg.vocab_remap;
      c.train_meg.prompts = cfg.train_meg.prompts;
      c.train_meg.labels = cfg.train_meg.labels;
      c.train_meg.image_dir = cfg.train_meg.image_dir;
      c.train_meg.normalization = cfg.train_meg.normalization;
      break;
    case ResultKind::kReport:
      c.run.results = cfg.run.results;
      c.run.report_script = cfg.run.report_script;
      // The behaviour comparison (plain CLIP on the held-out objects, its statistics).
      c.run.seed = cfg.run.seed;
      c.run.compare_bootstrap_n = cfg.run.compare_bootstrap_n;
      c.train_behavior.checkpoint = cfg.train_behavior.checkpoint;
      c.train_behavior.vocab = cfg.train_behavior.vocab;
      c.train_behavior.vocab_remap = cfg.train_behavior.vocab_remap;
      c.train_behavior.prompts = cfg.train_behavior.prompts;
      c.train_behavior.labels = cfg.train_behavior.labels;
      c.train_behavior.image_dir = cfg.train_behavior.image_dir;
      c.train_behavior.normalization = cfg.train_behavior.normalization;
      break;
  }
  return c;
}

}  // namespace

std::string TrainResumeHash(const Config& cfg, ResultKind kind) {
  Config c = IdentityConfig(cfg, kind);
  switch (kind) {
    case ResultKind::kBehaviorModel:  // out_dir kept (copied with the section)
      c.train_behavior.epochs = TrainBehaviorOptions().epochs;
      break;
    case ResultKind::kGroupModel:
    case ResultKind::kIndividualModel:
      c.train_meg.epochs = TrainMegOptions().epochs;
      c.run.cv_folds = RunOptions().cv_folds;  // a run's fold count, not `train meg`'s
      break;
    default:
      throw Error(ExitCode::kInternal, "TrainResumeHash: not a training result");
  }
  return ConfigHash(c);
}

std::string RunUnitHash(const Config& cfg, ResultKind kind, const std::string& participant) {
  Config c = IdentityConfig(cfg, kind);
  std::string extra;
  switch (kind) {
    case ResultKind::kBehaviorModel:
      c.train_behavior.out_dir = TrainBehaviorOptions().out_dir;  // <run>/behavior
      break;
    case ResultKind::kGroupModel:
      c.run.participants = cfg.run.participants;
      c.train_meg.out_dir = TrainMegOptions().out_dir;  // <run>/group
      break;
    case ResultKind::kIndividualModel:
      extra = "participant=" + participant + "\n";
      c.train_meg.out_dir = TrainMegOptions().out_dir;  // <run>/individual/<p>
      break;
    default:
      break;
  }
  return HashHex("unit=" + std::string(UnitKindName(kind)) + "\n" + extra + DumpConfig(c));
}

}  // namespace cliphba::config
