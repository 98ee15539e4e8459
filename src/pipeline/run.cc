#include "pipeline/run.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "io/text_file.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string NowUtc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

void MakeDirs(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create " + what + ": " + ec.message());
}

[[noreturn]] void ThrowCode(int code, const std::string& message) {
  switch (ExitCode(code)) {
    case ExitCode::kUsage:
      throw ConfigError(message);
    case ExitCode::kIo:
      throw IoError(message);
    case ExitCode::kData:
      throw DataError(message);
    default:
      throw Error(ExitCode(code), message);
  }
}

// Runs fn on the root of comm; an error there is rethrown with its code and message on every
// rank, so that all ranks stop together with the same exit code.
template <class F>
void RootDo(const parallel::Comm& comm, F&& fn) {
  std::string failure;
  if (comm.is_root()) {
    try {
      fn();
    } catch (const Error& e) {
      failure = std::to_string(int(e.code())) + "|" + e.what();
    } catch (const std::exception& e) {
      failure = std::to_string(int(ExitCode::kInternal)) + "|" + e.what();
    }
  }
  failure = comm.Broadcast(failure);
  if (failure.empty()) return;
  const size_t bar = failure.find('|');
  ThrowCode(std::stoi(failure.substr(0, bar)), failure.substr(bar + 1));
}

std::string FormatWall(double s) {
  if (!(s > 0)) return "-";
  if (s < 60) return fmt::format("{:.1f} s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", int(s) / 60, int(s) % 60);
  return fmt::format("{}h{:02d}m", int(s) / 3600, (int(s) % 3600) / 60);
}

bool IsAvailable(const StageSet& s, Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return bool(s.behavior);
    case Stage::kGroup:
      return bool(s.group);
    case Stage::kIndividual:
      return bool(s.individual);
    case Stage::kAlignment:
      return bool(s.alignment);
    case Stage::kReport:
      return bool(s.report);
  }
  return false;
}

const StageFn& FnOf(const StageSet& s, Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return s.behavior;
    case Stage::kGroup:
      return s.group;
    case Stage::kIndividual:
      return s.individual;
    case Stage::kAlignment:
      return s.alignment;
    case Stage::kReport:
      break;
  }
  return s.report;
}

}  // namespace

void RunOnRoot(const parallel::Comm& comm, const std::function<void()>& fn) { RootDo(comm, fn); }

// ---- names -------------------------------------------------------------------------------------

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> names = {"behavior", "group", "individual", "alignment",
                                                 "report"};
  return names;
}

std::string StageName(Stage stage) { return StageNames()[size_t(stage)]; }

Stage ParseStage(const std::string& name, const std::string& what) {
  const auto& names = StageNames();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return Stage(i);
  throw ConfigError(what + ": unknown stage '" + name +
                    "'; expected one of behavior, group, individual, alignment, report");
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

// ---- records -----------------------------------------------------------------------------------

std::string RecordToJson(const UnitRecord& r) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = std::isfinite(v) ? nlohmann::json(v) : nullptr;
  nlohmann::json j = {{"unit", r.unit},
                      {"stage", r.stage},
                      {"participant", r.participant},
                      {"state", r.state},
                      {"checkpoint_dir", r.checkpoint_dir},
                      {"config_hash", r.config_hash},
                      {"start_utc", r.start_utc},
                      {"end_utc", r.end_utc},
                      {"wall_seconds", r.wall_seconds},
                      {"attempts", r.attempts},
                      {"world_size", r.world_size},
                      {"group", r.group},
                      {"group_size", r.group_size},
                      {"ranks", r.ranks},
                      {"host", r.host},
                      {"pid", r.pid},
                      {"metric_name", r.metric_name},
                      {"metric", std::isfinite(r.metric) ? nlohmann::json(r.metric) : nullptr},
                      {"metrics", metrics},
                      {"error", r.error}};
  return j.dump(1) + "\n";
}

UnitRecord RecordFromJson(const std::string& text, const std::string& where) {
  UnitRecord r;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    r.unit = j.at("unit").get<std::string>();
    r.stage = j.at("stage").get<std::string>();
    r.participant = j.value("participant", "");
    r.state = j.at("state").get<std::string>();
    r.checkpoint_dir = j.value("checkpoint_dir", "");
    r.config_hash = j.at("config_hash").get<std::string>();
    r.start_utc = j.value("start_utc", "");
    r.end_utc = j.value("end_utc", "");
    r.wall_seconds = j.value("wall_seconds", 0.0);
    r.attempts = j.value("attempts", int64_t(0));
    r.world_size = j.value("world_size", int64_t(1));
    r.group = j.value("group", int64_t(0));
    r.group_size = j.value("group_size", int64_t(1));
    r.ranks = j.value("ranks", std::vector<int64_t>{});
    r.host = j.value("host", "");
    r.pid = j.value("pid", int64_t(0));
    r.metric_name = j.value("metric_name", "");
    if (j.contains("metric") && j["metric"].is_number()) r.metric = j["metric"].get<double>();
    if (j.contains("metrics"))
      for (const auto& [k, v] : j["metrics"].items())
        r.metrics[k] = v.is_number() ? v.get<double>() : std::nan("");
    r.error = j.value("error", "");
  } catch (const nlohmann::json::exception& e) {
    throw DataError(where + ": malformed unit record: " + e.what());
  }
  static const std::vector<std::string> states = {"pending", "running", "done", "failed"};
  if (std::find(states.begin(), states.end(), r.state) == states.end())
    throw DataError(where + ": state '" + r.state + "': expected pending, running, done or failed");
  return r;
}

std::string RecordPath(const std::string& run_dir, const std::string& unit) {
  return run_dir + "/units/" + unit + ".json";
}

std::string LockPath(const std::string& run_dir, const std::string& unit) {
  return run_dir + "/units/" + unit + ".lock";
}

void WriteRecord(const std::string& run_dir, const UnitRecord& record) {
  const std::string path = RecordPath(run_dir, record.unit);
  MakeDirs(fs::path(path).parent_path().string(), "the unit record folder");
  io::WriteTextFileAtomically(path, RecordToJson(record));
}

std::map<std::string, UnitRecord> ReadManifest(const std::string& run_dir) {
  std::map<std::string, UnitRecord> out;
  const fs::path units = fs::path(run_dir) / "units";
  std::error_code ec;
  if (!fs::is_directory(units, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(units, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".json") continue;
    UnitRecord r = RecordFromJson(io::ReadTextFile(it->path().string()), it->path().string());
    out[r.unit] = r;
  }
  if (ec) throw IoError(units.string() + ": cannot list the unit records: " + ec.message());
  return out;
}

// ---- hashes and dependencies -------------------------------------------------------------------

std::string UnitConfigHash(const config::Config& cfg, Stage stage, const std::string& participant) {
  config::Config c;  // defaults everywhere but the sections that matter
  std::string extra;
  switch (stage) {
    case Stage::kBehavior: {
      c.train_behavior = cfg.train_behavior;
      c.train_behavior.out_dir = config::TrainBehaviorOptions().out_dir;  // <run>/behavior
      config::ResetNonResultKeys(&c.train_behavior);
      break;
    }
    case Stage::kGroup:
    case Stage::kIndividual: {
      if (stage == Stage::kIndividual) extra = "participant=" + participant + "\n";
      if (stage == Stage::kGroup) c.run.participants = cfg.run.participants;
      c.meg_rdm = cfg.meg_rdm;
      c.train_meg = cfg.train_meg;
      c.train_meg.out_dir = config::TrainMegOptions().out_dir;  // <run>/<unit>
      config::ResetNonResultKeys(&c.train_meg);
      break;
    }
    case Stage::kAlignment:
      c.run.seed = cfg.run.seed;
      c.run.participants = cfg.run.participants;
      c.run.own_vs_other_n = cfg.run.own_vs_other_n;
      c.meg_rdm = cfg.meg_rdm;
      break;
    case Stage::kReport:
      c.run.results = cfg.run.results;
      c.run.report_script = cfg.run.report_script;
      break;
  }
  return HashHex("unit=" + StageName(stage) + "\n" + extra + config::DumpConfig(c));
}

std::vector<Stage> Upstream(Stage stage) {
  switch (stage) {
    case Stage::kBehavior:
      return {};
    case Stage::kGroup:
    case Stage::kIndividual:
      return {Stage::kBehavior};
    case Stage::kAlignment:
      return {Stage::kGroup, Stage::kIndividual};
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

// ---- locks -------------------------------------------------------------------------------------

bool FileLock::TryAcquire(const std::string& path, bool exclusive) {
  Release();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot open the lock file (" + std::strerror(errno) + ")");
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return false;
    throw IoError(path + ": cannot lock (" + std::strerror(err) + ")");
  }
  fd_ = fd;
  return true;
}

void FileLock::Release() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
  fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

std::string ClaimNext(const std::string& run_dir, const std::vector<std::string>& order,
                      FileLock* lock) {
  for (const std::string& label : order) {
    const std::string unit = UnitName(Stage::kIndividual, label);
    const std::string record = RecordPath(run_dir, unit);
    auto is_done = [&] {
      return fs::exists(record) && RecordFromJson(io::ReadTextFile(record), record).state == "done";
    };
    if (is_done()) continue;
    MakeDirs(fs::path(LockPath(run_dir, unit)).parent_path().string(), "the unit lock folder");
    if (!lock->TryAcquire(LockPath(run_dir, unit), true)) continue;  // another group has it
    if (is_done()) {  // finished between the check and the lock
      lock->Release();
      continue;
    }
    return label;
  }
  return "";
}

// ---- the pipeline ------------------------------------------------------------------------------

namespace {

struct Plan {
  std::vector<Stage> configured;  // run.stages, pipeline order
  std::vector<Stage> stages;      // what this invocation runs (configured, filtered by --only)
  std::vector<std::string> participants;  // every participant of the cohort
  std::vector<std::string> selected;      // the ones this invocation models
  std::vector<std::string> all_units;     // every unit of the configured stages
  bool whole = true;                      // no --only: the run lock is exclusive
};

bool Has(const std::vector<Stage>& v, Stage s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

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

void CheckUpstreamDone(const std::string& run_dir, const Plan& plan, Stage stage,
                       bool unplanned_only = false) {
  const auto manifest = ReadManifest(run_dir);
  std::vector<std::string> missing;
  for (const auto& u : RequiredUnits(plan, stage, unplanned_only)) {
    auto it = manifest.find(u);
    if (it == manifest.end() || it->second.state != "done")
      missing.push_back(u + " (" + (it == manifest.end() ? "never run" : it->second.state) + ")");
  }
  if (missing.empty()) return;
  std::string list;
  for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
  throw ConfigError("stage " + StageName(stage) + " of run folder " + run_dir +
                    " needs the outputs of units that are not done: " + list +
                    "; run those stages first (or include them in this run)");
}

[[noreturn]] void LockedByAnotherRun(const std::string& lock_path) {
  std::string holder;
  std::ifstream in(lock_path);
  std::getline(in, holder);
  std::string pid = "unknown", host = "unknown";
  std::istringstream ss(holder);
  ss >> pid >> host;
  throw IoError(lock_path + ": run folder locked by another run (pid " + pid + ", host " + host +
                "); wait for it to finish or use another run.out_dir");
}

UnitRecord FreshRecord(const std::string& run_dir, const std::string& unit, Stage stage,
                       const std::string& participant, const std::string& hash) {
  UnitRecord r;
  r.unit = unit;
  r.stage = StageName(stage);
  r.participant = participant;
  r.checkpoint_dir = run_dir + "/" + unit;
  r.config_hash = hash;
  return r;
}

// Root of the unit's ranks, after taking its lock: record -> running. Returns whether the unit
// resumes (it was started before). A unit started for the first time gets an empty folder.
bool StartUnit(const std::string& run_dir, UnitRecord* rec, int world_size, int64_t group,
               const std::vector<int64_t>& ranks) {
  const std::string path = RecordPath(run_dir, rec->unit);
  bool resume = false;
  if (fs::exists(path)) {
    const UnitRecord old = RecordFromJson(io::ReadTextFile(path), path);
    resume = old.state == "running" || old.state == "failed";
    rec->attempts = old.attempts;
  }
  if (!resume) {
    std::error_code ec;
    fs::remove_all(rec->checkpoint_dir, ec);
  }
  MakeDirs(rec->checkpoint_dir, "the unit folder");
  rec->state = "running";
  rec->attempts += 1;
  rec->start_utc = NowUtc();
  rec->end_utc.clear();
  rec->error.clear();
  rec->world_size = world_size;
  rec->group = group;
  rec->group_size = int64_t(ranks.size());
  rec->ranks = ranks;
  rec->host = HostName();
  rec->pid = int64_t(::getpid());
  WriteRecord(run_dir, *rec);
  return resume;
}

void FinishUnit(const std::string& run_dir, UnitRecord* rec, const UnitOutcome& out, double wall) {
  rec->wall_seconds = wall;
  rec->state = out.stopped ? "running" : "done";
  if (!out.stopped) rec->end_utc = NowUtc();
  rec->metric_name = out.metric_name;
  rec->metric = out.metric;
  rec->metrics = out.metrics;
  WriteRecord(run_dir, *rec);
}

// Runs one unit's stage function on the ranks of comm and records the outcome: on an Error the
// root marks the record failed (best effort) and the error propagates; otherwise the root writes
// the finished (or preempted: still running) record. Collective over comm.
template <typename Fn>
UnitOutcome RunRecordedUnit(const parallel::Comm& comm, const std::string& run_dir, UnitRecord* rec,
                            Fn&& stage) {
  const auto t0 = Clock::now();
  UnitOutcome out;
  try {
    out = stage();
  } catch (const Error& e) {
    if (comm.is_root()) {
      rec->state = "failed";
      rec->error = e.what();
      try {
        WriteRecord(run_dir, *rec);
      } catch (const Error&) {
      }
    }
    throw;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  RootDo(comm, [&] { FinishUnit(run_dir, rec, out, wall); });
  return out;
}

[[noreturn]] void ThrowPreempted(const std::string& unit) {
  throw Error(ExitCode::kPreempted, "preempted (SIGTERM) during unit " + unit +
                                        ": its resume state is saved; rerun the same command to "
                                        "continue");
}

}  // namespace

RunSummary RunPipeline(const config::Config& cfg, const RunArgs& args, const parallel::Comm& world,
                       const StageSet& impl) {
  const Plan plan = MakePlan(cfg, args, impl);  // deterministic: the same on every rank
  const std::string dir = RunDir(cfg);
  RunSummary summary;
  summary.run_dir = dir;
  summary.results = ResultsPath(cfg);
  std::vector<int64_t> world_ranks(size_t(world.size()));
  for (int r = 0; r < world.size(); ++r) world_ranks[size_t(r)] = r;

  // Root: run lock, inputs, config hashes of the recorded units (refuse or reset).
  FileLock run_lock;
  RootDo(world, [&] {
    MakeDirs(dir + "/units", "the run folder");
    const std::string lock_path = dir + "/run.lock";
    if (!run_lock.TryAcquire(lock_path, plan.whole)) LockedByAnotherRun(lock_path);
    if (plan.whole) {
      const std::string holder = std::to_string(::getpid()) + " " + HostName() + "\n";
      if (::ftruncate(run_lock.fd(), 0) != 0 ||
          ::pwrite(run_lock.fd(), holder.data(), holder.size(), 0) != ssize_t(holder.size()))
        throw IoError(lock_path + ": cannot write the lock holder (" + std::strerror(errno) + ")");
    }
    CheckInputs(cfg, plan);
    if (impl.check_meg_inputs) CheckMegInputs(cfg, plan);
    const auto manifest = ReadManifest(dir);
    std::vector<std::string> changed;
    std::string list;
    for (const auto& unit : plan.all_units) {
      auto it = manifest.find(unit);
      if (it == manifest.end() || it->second.state == "pending") continue;
      const Stage s = StageOfUnit(unit);
      const std::string now = UnitConfigHash(cfg, s, it->second.participant);
      if (it->second.config_hash != now) {
        changed.push_back(unit);
        list += (list.empty() ? "" : ", ") + unit;
      }
    }
    if (!changed.empty() && !args.force)
      throw ConfigError("the configuration changed for units of run folder " + dir + ": " + list +
                        " (their recorded config hash differs); rerun with --force to redo "
                        "them and the units downstream of them, or use another run.out_dir");
    if (!changed.empty()) {
      for (const auto& unit : AffectedUnits(changed, plan.all_units)) {
        if (manifest.find(unit) == manifest.end()) continue;
        FileLock l;
        if (!l.TryAcquire(LockPath(dir, unit), true))
          throw IoError(LockPath(dir, unit) + ": unit " + unit +
                        " is being run by another process; cannot reset it for --force");
        LOG_INFO("--force: redoing unit {} (config changed upstream or here)", unit);
        std::error_code ec;
        fs::remove_all(dir + "/" + unit, ec);
        fs::remove(RecordPath(dir, unit), ec);
      }
    }
    LOG_INFO(
        "run {}: folder {}, stages {}, {} rank(s)", cfg.run.name, dir,
        [&] {
          std::string s;
          for (Stage st : plan.stages) s += (s.empty() ? "" : ", ") + StageName(st);
          return s;
        }(),
        world.size());
  });
  // Before any work: upstream stages that this invocation does not run must be done already.
  RootDo(world, [&] {
    for (Stage s : plan.stages) CheckUpstreamDone(dir, plan, s, /*unplanned_only=*/true);
  });

  const auto pipeline_start = Clock::now();
  for (size_t si = 0; si < plan.stages.size(); ++si) {
    const Stage stage = plan.stages[si];
    if (stage == Stage::kIndividual) {
      // ---- participant groups and the claim queue ----
      RootDo(world, [&] { CheckUpstreamDone(dir, plan, stage); });
      const int g = GroupSize(cfg.run.group_size, world.size(), int64_t(plan.selected.size()));
      const int color = world.rank() / g;
      const int n_groups = (world.size() + g - 1) / g;
      parallel::OwnedComm owned = parallel::OwnedComm::Split(world, color, world.rank());
      const parallel::Comm& gc = owned.comm();
      std::vector<int64_t> granks;
      for (int r = color * g; r < std::min(world.size(), (color + 1) * g); ++r) granks.push_back(r);
      std::set<std::string> done_before;
      if (world.is_root()) {
        const auto m = ReadManifest(dir);
        for (const auto& l : plan.selected) {
          auto it = m.find(UnitName(stage, l));
          if (it != m.end() && it->second.state == "done") done_before.insert(l);
        }
        LOG_INFO("stage individual ({}/{}): {} participant(s), {} group(s) of {} rank(s)", si + 1,
                 plan.stages.size(), plan.selected.size(), n_groups, g);
      }
      bool stopped = false;
      while (true) {
        FileLock lock;
        UnitRecord rec;
        std::string message;  // "label|resume" or "" when the queue is empty
        RootDo(gc, [&] {
          const std::string label = ClaimNext(dir, plan.selected, &lock);
          if (label.empty()) return;
          const std::string unit = UnitName(stage, label);
          rec = FreshRecord(dir, unit, stage, label, UnitConfigHash(cfg, stage, label));
          const bool resume = StartUnit(dir, &rec, world.size(), color, granks);
          message = label + "|" + (resume ? "1" : "0");
        });
        message = gc.Broadcast(message);
        if (message.empty()) break;
        const size_t bar = message.rfind('|');
        StageContext ctx;
        ctx.config = &cfg;
        ctx.run_dir = dir;
        ctx.participant = message.substr(0, bar);
        ctx.unit = UnitName(stage, ctx.participant);
        ctx.out_dir = dir + "/" + ctx.unit;
        ctx.config_hash = UnitConfigHash(cfg, stage, ctx.participant);
        ctx.resume = message.substr(bar + 1) == "1";
        ctx.comm = &gc;
        ctx.participants = plan.participants;
        // Every group's leader prints its unit's lines (progress, epochs), tagged with the unit;
        // the other ranks stay quiet as before.
        ScopedLogUnit log_unit(ctx.unit, gc.is_root());
        if (gc.is_root())
          LOG_INFO("unit {}: {} on group {}/{} ({} rank(s))", ctx.unit,
                   ctx.resume ? "resuming" : "starting", color + 1, n_groups, gc.size());
        const UnitOutcome out =
            RunRecordedUnit(gc, dir, &rec, [&] { return impl.individual(ctx); });
        if (out.stopped) {
          stopped = true;
          break;
        }
      }
      if (world.AnyTrue(stopped)) {
        summary.preempted = true;
        ThrowPreempted("individual");
      }
      world.Barrier();
      if (world.is_root()) {
        const auto m = ReadManifest(dir);
        for (const auto& l : plan.selected) {
          const std::string unit = UnitName(stage, l);
          SummaryRow row;
          row.unit = unit;
          row.state = "not done";
          auto it = m.find(unit);
          if (it != m.end()) {
            row.state = done_before.count(l) ? "skipped (done)" : it->second.state;
            row.wall_seconds = it->second.wall_seconds;
            row.metric_name = it->second.metric_name;
            row.metric = it->second.metric;
          }
          summary.rows.push_back(row);
        }
      }
      continue;
    }

    // ---- world units: behavior, group, alignment, report ----
    const std::string unit = UnitName(stage);
    const std::string hash = UnitConfigHash(cfg, stage);
    FileLock lock;
    UnitRecord rec = FreshRecord(dir, unit, stage, "", hash);
    std::string decision;
    RootDo(world, [&] {
      const std::string path = RecordPath(dir, unit);
      if (fs::exists(path)) {
        const UnitRecord old = RecordFromJson(io::ReadTextFile(path), path);
        if (old.state == "done") {
          decision = "skip";
          rec = old;
          return;
        }
      }
      CheckUpstreamDone(dir, plan, stage);
      if (!lock.TryAcquire(LockPath(dir, unit), true))
        throw IoError(LockPath(dir, unit) + ": unit " + unit +
                      " is being run by another process (its lock is held)");
      decision = StartUnit(dir, &rec, world.size(), 0, world_ranks) ? "resume" : "run";
    });
    decision = world.Broadcast(decision);
    if (decision == "skip") {
      if (world.is_root()) {
        LOG_INFO("unit {}: done in an earlier run, skipped", unit);
        summary.rows.push_back(
            {unit, "skipped (done)", rec.wall_seconds, rec.metric_name, rec.metric});
      }
      continue;
    }
    if (world.is_root())
      LOG_INFO("stage {} ({}/{}): unit {} {} on {} rank(s)", StageName(stage), si + 1,
               plan.stages.size(), unit, decision == "resume" ? "resuming" : "starting",
               world.size());
    StageContext ctx;
    ctx.config = &cfg;
    ctx.run_dir = dir;
    ctx.unit = unit;
    ctx.out_dir = dir + "/" + unit;
    ctx.config_hash = hash;
    ctx.resume = decision == "resume";
    ctx.comm = &world;
    ctx.participants = plan.participants;
    const UnitOutcome out =
        RunRecordedUnit(world, dir, &rec, [&] { return FnOf(impl, stage)(ctx); });
    if (out.stopped) {
      summary.preempted = true;
      ThrowPreempted(unit);
    }
    if (world.is_root()) {
      const double wall = rec.wall_seconds;  // set by RunRecordedUnit on the root
      LOG_INFO(
          "unit {}: done in {}{}", unit, FormatWall(wall),
          std::isfinite(out.metric) ? fmt::format(", {} {:.4f}", out.metric_name, out.metric) : "");
      summary.rows.push_back({unit, "done", wall, out.metric_name, out.metric});
    }
  }
  if (world.is_root())
    LOG_INFO("run {}: finished in {}", cfg.run.name,
             FormatWall(std::chrono::duration<double>(Clock::now() - pipeline_start).count()));
  return summary;
}

std::string FormatSummary(const RunSummary& s) {
  size_t w = 4;
  for (const auto& r : s.rows) w = std::max(w, r.unit.size());
  std::string out =
      fmt::format("{:<{}}  {:<15}  {:>9}  {}\n", "unit", w, "state", "wall", "metric");
  for (const auto& r : s.rows) {
    const std::string metric =
        std::isfinite(r.metric) ? fmt::format("{} {:.4f}", r.metric_name, r.metric) : "-";
    out += fmt::format("{:<{}}  {:<15}  {:>9}  {}\n", r.unit, w, r.state,
                       FormatWall(r.wall_seconds), metric);
  }
  out += "run folder: " + s.run_dir + "\n";
  if (fs::exists(s.results)) out += "results: " + s.results + "\n";
  return out;
}

}  // namespace cliphba::pipeline
