// Unit records and locks of `cliphba run` (pipeline/run.h): the record JSON, record and lock paths,
// atomic record writes, the manifest, flocks and the participant claim queue, and the lifecycle
// steps of a record (unit_records.h: fresh, start, finish).
#include "pipeline/unit_records.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/text_file.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

namespace {

std::string NowUtc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

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

// ---- records -----------------------------------------------------------------------------------

std::string UnitStateName(UnitState state) {
  switch (state) {
    case UnitState::kPending:
      return "pending";
    case UnitState::kRunning:
      return "running";
    case UnitState::kDone:
      return "done";
    case UnitState::kFailed:
      return "failed";
  }
  return "pending";
}

UnitState ParseUnitState(const std::string& name, const std::string& where) {
  for (UnitState s :
       {UnitState::kPending, UnitState::kRunning, UnitState::kDone, UnitState::kFailed})
    if (name == UnitStateName(s)) return s;
  throw DataError(where + ": state '" + name + "': expected pending, running, done or failed");
}

std::string RecordToJson(const UnitRecord& r) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = std::isfinite(v) ? nlohmann::json(v) : nullptr;
  nlohmann::json j = {{"unit", r.unit},
                      {"stage", r.stage},
                      {"participant", r.participant},
                      {"state", UnitStateName(r.state)},
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
  std::string state;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    r.unit = j.at("unit").get<std::string>();
    r.stage = j.at("stage").get<std::string>();
    r.participant = j.value("participant", "");
    state = j.at("state").get<std::string>();
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
  r.state = ParseUnitState(state, where);
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
      return fs::exists(record) &&
             RecordFromJson(io::ReadTextFile(record), record).state == UnitState::kDone;
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

// ---- record lifecycle --------------------------------------------------------------------------

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

bool StartUnit(const std::string& run_dir, UnitRecord* rec, int world_size, int64_t group,
               const std::vector<int64_t>& ranks) {
  const std::string path = RecordPath(run_dir, rec->unit);
  bool resume = false;
  if (fs::exists(path)) {
    const UnitRecord old = RecordFromJson(io::ReadTextFile(path), path);
    resume = old.state == UnitState::kRunning || old.state == UnitState::kFailed;
    rec->attempts = old.attempts;
  }
  if (!resume) {
    std::error_code ec;
    fs::remove_all(rec->checkpoint_dir, ec);
  }
  MakeDirs(rec->checkpoint_dir, "the unit folder");
  rec->state = UnitState::kRunning;
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
  rec->state = out.stopped ? UnitState::kRunning : UnitState::kDone;
  if (!out.stopped) rec->end_utc = NowUtc();
  rec->metric_name = out.metric_name;
  rec->metric = out.metric;
  rec->metrics = out.metrics;
  WriteRecord(run_dir, *rec);
}

}  // namespace cliphba::pipeline
