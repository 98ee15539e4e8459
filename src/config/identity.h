// What identifies a result: the one place that decides which configuration keys a result depends
// on, and so the hashes that resume records (`train ... --resume`), unit records and results files
// (`cliphba run`) carry. Two configurations with equal identities give the same result; a changed
// identity is refused (exit 2) unless the user asks (--force), so a result is never silently
// replaced by one of another configuration.
//
// Shared rule: a result depends on the sections its stage reads, minus the keys that cannot change
// it (ResetNonResultKeys: loader threads, progress interval, all-reduce transport and bucket).
// Two scopes differ on purpose:
//   - a training command's resume identity drops `epochs` (a finished run may be extended with
//     --resume) and keeps `out_dir` (the folder is the user's choice and the checkpoint's home);
//   - a `cliphba run` unit's identity keeps `epochs` (a unit asked to train longer is a different
//     result: redone only with --force, which resumes it from its checkpoint) and drops `out_dir`
//     (the run decides it: <run>/<unit>).
#pragma once

#include <string>

#include "config/options.h"

namespace cliphba::config {

// The kinds of result cliphba makes: the stage-1 behaviour model, group and individual MEG models,
// the alignment statistics and the report.
enum class ResultKind {
  kBehaviorModel,
  kGroupModel,
  kIndividualModel,
  kPredictions,
  kAlignment,
  kReport
};

// The unit name of a kind in `cliphba run` ("behavior", "group", "individual", "alignment",
// "report").
const char* UnitKindName(ResultKind kind);

// The resume identity of `train behavior` (kind kBehaviorModel) or `train meg` (kGroupModel or
// kIndividualModel: train.meg and meg.rdm). 16 hex digits. REQUIRES: one of those kinds.
std::string TrainResumeHash(const Config& cfg, ResultKind kind);

// The identity of a `cliphba run` unit of `kind` (participant: the individual unit's participant,
// else ""). 16 hex digits.
std::string RunUnitHash(const Config& cfg, ResultKind kind, const std::string& participant = "");

}  // namespace cliphba::config
