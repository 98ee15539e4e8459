// The run plan of `cliphba run` (pipeline/run.h, run_plan.h): stage and unit names, the per-unit
// config hashes and stage dependencies, participant group sizes, the plan of one invocation (stage
// and participant selection) and the checks made before work starts (inputs, upstream units done).
#include "pipeline/run_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "config/config.h"
#include "config/identity.h"
#include "core/error.h"
#include "core/hash.h"
#include "meg/rdm_stack.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

namespace {

bool Has(const std::vector<Stage>& v, Stage s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool IsAvailable(const StageSet& s, Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return bool(s.behavior);
    case Stage::kGroup:
      return bool(s.group);
    case Stage::kIndividual:
      return bool(s.individual);
    case Stage::kPredict:
      return bool(s.predict);
    case Stage::kAlignment:
      return bool(s.alignment);
    case Stage::kReport:
      return bool(s.report);
  }
  return false;
}

// Units of `stage`'s upstream stages that must be done before it runs: upstream stages that are
// configured (an unconfigured stage simply contributes nothing to the results).
std::vector<std::string> RequiredUnits(const Plan& plan, Stage stage, bool unplanned_only) {
  std::vector<std::string> out;
  for (Stage up : Upstream(stage)) {
    if (!Has(plan.configured, up) || (unplanned_only && Has(plan.stages, up))) continue;
    if (up == Stage::kIndividual) {
      for (const auto& l : plan.participants) out.push_back(UnitName(up, l));
    } else {
      out.push_back(UnitName(up));
    }
  }
  return out;
}

}  // namespace

// ---- names -------------------------------------------------------------------------------------

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> names = {"behavior", "group",     "individual",
                                                 "predict",  "alignment", "report"};
  return names;
}

std::string StageName(Stage stage) { return StageNames()[size_t(stage)]; }

Stage ParseStage(const std::string& name, const std::string& what) {
  const auto& names = StageNames();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return Stage(i);
  throw ConfigError(what + ": unknown stage '" + name +
                    "'; expected one of behavior, group, individual, predict, alignment, report");
}

std::string UnitName(Stage stage, const std::string& participant) {
  if (stage == Stage::kIndividual) return "individual/" + participant;
  return StageName(stage);
}

void CheckParticipantLabel(const std::string& label) {
  const bool ok =
      !label.empty() && label != "." && label != ".." &&
      std::all_of(label.begin(), label.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok)
    throw ConfigError("participant label '" + label +
                      "': expected letters, digits, '.', '_' or '-' (it names the unit's folder)");
}

std::string RunDir(const config::Config& config) {
  return config.run.out_dir.empty() ? "results/" + config.run.name : config.run.out_dir;
}

std::string ResultsPath(const config::Config& config) {
  return config.run.results.empty() ? RunDir(config) + "/results.h5" : config.run.results;
}

Stage StageOfUnit(const std::string& unit) {
  if (unit.rfind("individual/", 0) == 0) return Stage::kIndividual;
  for (size_t i = 0; i < StageNames().size(); ++i)
    if (StageNames()[i] == unit && Stage(i) != Stage::kIndividual) return Stage(i);
  throw DataError("unknown unit name '" + unit + "'");
}

// ---- hashes and dependencies -------------------------------------------------------------------

std::string UnitConfigHash(const config::Config& cfg, Stage stage, const std::string& participant) {
  config::ResultKind kind = config::ResultKind::kReport;
  switch (stage) {
    case Stage::kBehavior:
      kind = config::ResultKind::kBehaviorModel;
      break;
    case Stage::kGroup:
      kind = config::ResultKind::kGroupModel;
      break;
    case Stage::kIndividual:
      kind = config::ResultKind::kIndividualModel;
      break;
    case Stage::kPredict:
      kind = config::ResultKind::kPredictions;
      break;
    case Stage::kAlignment:
      kind = config::ResultKind::kAlignment;
      break;
    case Stage::kReport:
      break;
  }
  return config::RunUnitHash(cfg, kind, stage == Stage::kIndividual ? participant : "");
}

std::vector<Stage> Upstream(Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return {};
    case Stage::kGroup:
    case Stage::kIndividual:
      return {Stage::kBehavior};
    case Stage::kPredict:
      return {Stage::kBehavior, Stage::kGroup, Stage::kIndividual};
    case Stage::kAlignment:  // the MEG models, and the behaviour model as a baseline
      return {Stage::kBehavior, Stage::kGroup, Stage::kIndividual};
    case Stage::kReport:
      return {Stage::kBehavior, Stage::kAlignment};
  }
  return {};
}

std::vector<std::string> AffectedUnits(const std::vector<std::string>& changed,
                                       const std::vector<std::string>& all_units) {
  std::set<std::string> affected(changed.begin(), changed.end());
  std::set<Stage> stages;
  for (const auto& u : changed) stages.insert(StageOfUnit(u));
  // Propagate stage by stage in pipeline order: a changed stage makes all units of the stages
  // that read it affected (an individual unit affects the one alignment unit, not its siblings).
  for (size_t i = 0; i < StageNames().size(); ++i) {
    const Stage s = Stage(i);
    for (Stage up : Upstream(s))
      if (stages.count(up)) stages.insert(s);
  }
  std::vector<std::string> out;
  for (const auto& u : all_units) {
    bool hit = affected.count(u) > 0;
    for (Stage up : Upstream(StageOfUnit(u))) hit |= stages.count(up) > 0;
    if (hit) out.push_back(u);
  }
  return out;
}

int GroupSize(int64_t configured, int world_size, int64_t n_participants) {
  if (configured > 0) return int(std::min<int64_t>(configured, world_size));
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>(world_size, n_participants));
  return std::max(1, int(world_size / groups));
}

// ---- the plan ----------------------------------------------------------------------------------

Plan MakePlan(const config::Config& cfg, const RunArgs& args, const StageSet& impl) {
  Plan p;
  for (const auto& name : cfg.run.stages) {
    const Stage s = ParseStage(name, "run.stages");
    if (!Has(p.configured, s)) p.configured.push_back(s);
  }
  std::sort(p.configured.begin(), p.configured.end());
  p.whole = args.only.empty();
  for (Stage s : p.configured) {
    bool wanted = args.only.empty();
    for (const auto& o : args.only) wanted |= ParseStage(o, "--only") == s;
    if (wanted) p.stages.push_back(s);
  }
  for (const auto& o : args.only)
    if (!Has(p.configured, ParseStage(o, "--only")))
      throw ConfigError("--only " + o + ": the stage is not in run.stages of this configuration");
  for (Stage s : p.stages)
    if (!IsAvailable(impl, s))
      throw ConfigError("stage '" + StageName(s) + "' is not available in this build" +
                        impl.missing_note + "; remove it from run.stages");
  const bool needs_people = Has(p.configured, Stage::kGroup) ||
                            Has(p.configured, Stage::kIndividual) ||
                            Has(p.configured, Stage::kAlignment);
  if (needs_people) {
    p.participants = impl.participants ? impl.participants(cfg) : cfg.run.participants;
    for (const auto& l : p.participants) CheckParticipantLabel(l);
    if (p.participants.empty())
      throw ConfigError(
          "the stages group, individual and alignment need participants: set meg.rdm.path (the "
          "MEG RDM stacks name them) or run.participants");
  }
  if (args.participants.empty()) {
    p.selected = p.participants;
  } else {
    if (!Has(p.stages, Stage::kIndividual))
      throw ConfigError(
          "--participants selects participants of the individual stage, which "
          "this invocation does not run");
    for (const auto& want : args.participants) {
      std::string label;
      if (std::find(p.participants.begin(), p.participants.end(), want) != p.participants.end()) {
        label = want;
      } else {
        char* end = nullptr;
        const long idx = std::strtol(want.c_str(), &end, 10);
        if (want.empty() || *end != '\0' || idx < 0 || idx >= long(p.participants.size()))
          throw ConfigError("--participants: '" + want +
                            "' is neither a participant label nor an index in [0, " +
                            std::to_string(p.participants.size()) + ")");
        label = p.participants[size_t(idx)];
      }
      if (std::find(p.selected.begin(), p.selected.end(), label) == p.selected.end())
        p.selected.push_back(label);
    }
  }
  for (Stage s : p.configured) {
    if (s == Stage::kIndividual) {
      for (const auto& l : p.participants) p.all_units.push_back(UnitName(s, l));
    } else {
      p.all_units.push_back(UnitName(s));
    }
  }
  return p;
}

const StageFn& FnOf(const StageSet& s, Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return s.behavior;
    case Stage::kGroup:
      return s.group;
    case Stage::kIndividual:
      return s.individual;
    case Stage::kPredict:
      return s.predict;
    case Stage::kAlignment:
      return s.alignment;
    case Stage::kReport:
      break;
  }
  return s.report;
}

// Inputs named by the configuration that must exist before the first unit starts.
void CheckInputs(const config::Config& cfg, const Plan& plan) {
  if (Has(plan.stages, Stage::kBehavior)) {
    const auto& b = cfg.train_behavior;
    const std::vector<std::pair<std::string, std::string>> required = {
        {"checkpoint", b.checkpoint},
        {"vocab", b.vocab},
        {"prompts", b.prompts},
        {"targets_csv", b.targets_csv},
        {"image_dir", b.image_dir}};
    for (const auto& [key, value] : required) {
      if (value.empty())
        throw ConfigError("train.behavior." + key + " is required by stage behavior");
      if (!fs::exists(value))
        throw IoError("train.behavior." + key + ": '" + value +
                      "' does not exist (an input of stage behavior)");
    }
    const std::vector<std::pair<std::string, std::string>> optional = {
        {"heldout_names", b.heldout_names},
        {"reference_rdm", b.reference_rdm},
        {"reference_rdm_names", b.reference_rdm_names}};
    for (const auto& [key, value] : optional)
      if (!value.empty() && !fs::exists(value))
        throw IoError("train.behavior." + key + ": '" + value +
                      "' does not exist (an input of stage behavior)");
  }
}

void CheckMegInputs(const config::Config& cfg, const Plan& plan) {
  const bool meg_stage = Has(plan.stages, Stage::kGroup) || Has(plan.stages, Stage::kIndividual) ||
                         Has(plan.stages, Stage::kAlignment);
  if (!meg_stage) return;
  if (cfg.meg_rdm.path.empty())
    throw ConfigError("meg.rdm.path is required by the stages group, individual and alignment");
  if (!fs::exists(cfg.meg_rdm.path))
    throw IoError("meg.rdm.path: '" + cfg.meg_rdm.path +
                  "' does not exist (an input of the MEG stages)");
  if (!(Has(plan.stages, Stage::kGroup) || Has(plan.stages, Stage::kIndividual))) return;
  const auto& t = cfg.train_meg;
  const std::vector<std::pair<std::string, std::string>> required = {{"checkpoint", t.checkpoint},
                                                                     {"vocab", t.vocab},
                                                                     {"prompts", t.prompts},
                                                                     {"image_dir", t.image_dir}};
  for (const auto& [key, value] : required) {
    if (value.empty()) throw ConfigError("train.meg." + key + " is required by the MEG stages");
    if (!fs::exists(value))
      throw IoError("train.meg." + key + ": '" + value +
                    "' does not exist (an input of the MEG stages)");
  }
  if (!t.heldout_names.empty() && !fs::exists(t.heldout_names))
    throw IoError("train.meg.heldout_names: '" + t.heldout_names +
                  "' does not exist (an input of the MEG stages)");
  // The out-of-sample design, before any training: >= 3 held-out objects of the stack, or
  // run.cv_folds folds of >= 3 objects (ConfigError naming the key).
  const meg::RdmStack stack = meg::RdmStack::Open(cfg.meg_rdm);
  if (MegHeldoutObjects(cfg, stack).empty()) MegFolds(cfg, stack);
}

void CheckUpstreamDone(const std::string& run_dir, const Plan& plan, Stage stage,
                       bool unplanned_only) {
  const auto manifest = ReadManifest(run_dir);
  std::vector<std::string> missing;
  for (const auto& u : RequiredUnits(plan, stage, unplanned_only)) {
    auto it = manifest.find(u);
    if (it == manifest.end() || it->second.state != UnitState::kDone)
      missing.push_back(
          u + " (" + (it == manifest.end() ? "never run" : UnitStateName(it->second.state)) + ")");
  }
  if (missing.empty()) return;
  std::string list;
  for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
  throw ConfigError("stage " + StageName(stage) + " of run folder " + run_dir +
                    " needs the outputs of units that are not done: " + list +
                    "; run those stages first (or include them in this run)");
}

}  // namespace cliphba::pipeline
