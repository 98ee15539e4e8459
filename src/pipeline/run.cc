// The `cliphba run` driver (pipeline/run.h): RunPipeline prepares the run folder on the root (run
// lock, inputs, config hashes), then runs each planned stage: a world unit on every rank, or the
// individual units on participant groups that claim them one by one; and the final summary table.
// The plan is in run_plan.cc, the unit records and locks in unit_records.cc.
#include "pipeline/run.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"
#include "io/text_file.h"
#include "parallel/collectives.h"
#include "pipeline/run_plan.h"
#include "pipeline/unit_records.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string FormatWall(double s) {
  if (!(s > 0)) return "-";
  if (s < 60) return fmt::format("{:.1f} s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", int(s) / 60, int(s) % 60);
  return fmt::format("{}h{:02d}m", int(s) / 3600, (int(s) % 3600) / 60);
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
      rec->state = UnitState::kFailed;
      rec->error = e.what();
      try {
        WriteRecord(run_dir, *rec);
      } catch (const Error&) {
      }
    }
    throw;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  parallel::RunOnRoot(comm, [&] { FinishUnit(run_dir, rec, out, wall); });
  return out;
}

[[noreturn]] void ThrowPreempted(const std::string& unit) {
  const std::string signal = TerminationSignalName();
  const std::string what = signal == "SIGINT"    ? "interrupted (SIGINT)"
                           : signal == "SIGTERM" ? "preempted (SIGTERM)"
                                                 : "stopped (another rank was signalled)";
  throw Error(ExitCode::kPreempted, what + " during unit " + unit +
                                        ": its resume state is saved; rerun the same command to "
                                        "continue");
}

// What every step of one RunPipeline call shares.
struct RunScope {
  const config::Config& cfg;
  const StageSet& impl;
  const Plan& plan;
  const parallel::Comm& world;
  const std::string& dir;  // the run folder
  RunSummary* summary;     // rows are added on world rank 0
};

// The context of one unit (folder <run folder>/<unit>) run on the ranks of comm.
StageContext MakeContext(const RunScope& run, const std::string& unit,
                         const std::string& participant, const std::string& hash, bool resume,
                         const parallel::Comm* comm) {
  StageContext ctx;
  ctx.config = &run.cfg;
  ctx.run_dir = run.dir;
  ctx.participant = participant;
  ctx.unit = unit;
  ctx.out_dir = run.dir + "/" + unit;
  ctx.config_hash = hash;
  ctx.resume = resume;
  ctx.comm = comm;
  ctx.participants = run.plan.participants;
  return ctx;
}

// Root: compares the recorded config hash of every started unit with the current one. Changed
// units without `force` -> ConfigError naming them; with `force`, they and every unit downstream
// of them are reset (lock taken, folder and record removed). Throws IoError for a locked unit.
void ResetChangedUnits(const RunScope& run, bool force) {
  const std::string& dir = run.dir;
  const auto manifest = ReadManifest(dir);
  std::vector<std::string> changed;
  std::string list;
  for (const auto& unit : run.plan.all_units) {
    auto it = manifest.find(unit);
    if (it == manifest.end() || it->second.state == UnitState::kPending) continue;
    const Stage s = StageOfUnit(unit);
    const std::string now = UnitConfigHash(run.cfg, s, it->second.participant);
    if (it->second.config_hash != now) {
      changed.push_back(unit);
      list += (list.empty() ? "" : ", ") + unit;
    }
  }
  if (!changed.empty() && !force)
    throw ConfigError("the configuration changed for units of run folder " + dir + ": " + list +
                      " (their recorded config hash differs); rerun with --force to redo "
                      "them and the units downstream of them, or use another run.out_dir");
  if (!changed.empty()) {
    for (const auto& unit : AffectedUnits(changed, run.plan.all_units)) {
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
}

// Root, before any work: the run folder and its lock (*run_lock: exclusive with the holder written
// into it for a whole run, shared for --only), the inputs, the config hashes of the recorded units
// (refuse or reset), then the run's first log line.
void PrepareRunFolder(const RunScope& run, bool force, FileLock* run_lock) {
  const std::string& dir = run.dir;
  const Plan& plan = run.plan;
  MakeDirs(dir + "/units", "the run folder");
  const std::string lock_path = dir + "/run.lock";
  if (!run_lock->TryAcquire(lock_path, plan.whole)) LockedByAnotherRun(lock_path);
  if (plan.whole) {
    const std::string holder = std::to_string(::getpid()) + " " + HostName() + "\n";
    if (::ftruncate(run_lock->fd(), 0) != 0 ||
        ::pwrite(run_lock->fd(), holder.data(), holder.size(), 0) != ssize_t(holder.size()))
      throw IoError(lock_path + ": cannot write the lock holder (" + std::strerror(errno) + ")");
  }
  CheckInputs(run.cfg, plan);
  if (run.impl.check_meg_inputs) CheckMegInputs(run.cfg, plan);
  ResetChangedUnits(run, force);
  LOG_INFO(
      "run {}: folder {}, stages {}, {} rank(s)", run.cfg.run.name, dir,
      [&] {
        std::string s;
        for (Stage st : plan.stages) s += (s.empty() ? "" : ", ") + StageName(st);
        return s;
      }(),
      run.world.size());
}

// Collective over the world: the one unit of a world stage (behavior, group, alignment, report),
// the `position`-th stage of the plan. Skipped if done in an earlier run; otherwise started or
// resumed under its lock, run on every rank and recorded. Throws Error(kPreempted) after SIGTERM.
void RunWorldUnit(const RunScope& run, Stage stage, size_t position) {
  const parallel::Comm& world = run.world;
  const std::string& dir = run.dir;
  std::vector<int64_t> world_ranks(size_t(world.size()));
  for (int r = 0; r < world.size(); ++r) world_ranks[size_t(r)] = r;
  const std::string unit = UnitName(stage);
  const std::string hash = UnitConfigHash(run.cfg, stage);
  FileLock lock;  // held on the root until the unit is recorded
  UnitRecord rec = FreshRecord(dir, unit, stage, "", hash);
  std::string decision;
  parallel::RunOnRoot(world, [&] {
    const std::string path = RecordPath(dir, unit);
    if (fs::exists(path)) {
      const UnitRecord old = RecordFromJson(io::ReadTextFile(path), path);
      if (old.state == UnitState::kDone) {
        decision = "skip";
        rec = old;
        return;
      }
    }
    CheckUpstreamDone(dir, run.plan, stage);
    if (!lock.TryAcquire(LockPath(dir, unit), true))
      throw IoError(LockPath(dir, unit) + ": unit " + unit +
                    " is being run by another process (its lock is held)");
    decision = StartUnit(dir, &rec, world.size(), 0, world_ranks) ? "resume" : "run";
  });
  decision = world.Broadcast(decision);
  if (decision == "skip") {
    if (world.is_root()) {
      LOG_INFO("unit {}: done in an earlier run, skipped", unit);
      run.summary->rows.push_back(
          {unit, "skipped (done)", rec.wall_seconds, rec.metric_name, rec.metric});
    }
    return;
  }
  if (world.is_root())
    LOG_INFO("stage {} ({}/{}): unit {} {} on {} rank(s)", StageName(stage), position + 1,
             run.plan.stages.size(), unit, decision == "resume" ? "resuming" : "starting",
             world.size());
  const StageContext ctx = MakeContext(run, unit, "", hash, decision == "resume", &world);
  const UnitOutcome out =
      RunRecordedUnit(world, dir, &rec, [&] { return FnOf(run.impl, stage)(ctx); });
  if (out.stopped) {
    run.summary->preempted = true;
    ThrowPreempted(unit);
  }
  if (world.is_root()) {
    const double wall = rec.wall_seconds;  // set by RunRecordedUnit on the root
    LOG_INFO(
        "unit {}: done in {}{}", unit, FormatWall(wall),
        std::isfinite(out.metric) ? fmt::format(", {} {:.4f}", out.metric_name, out.metric) : "");
    run.summary->rows.push_back({unit, "done", wall, out.metric_name, out.metric});
  }
}

// One participant group of the individual stage: its index (the MPI_Comm_split color), the number
// of groups, and the world ranks in it.
struct ParticipantGroup {
  int color = 0;
  int n_groups = 1;
  std::vector<int64_t> ranks;
};

// Collective over the group communicator gc: the leader claims the next participant (ClaimNext)
// and starts its unit, the group runs it, until the queue is empty (returns false) or a unit is
// preempted (returns true).
bool RunClaimedUnits(const RunScope& run, const parallel::Comm& gc, const ParticipantGroup& group) {
  const Stage stage = Stage::kIndividual;
  const std::string& dir = run.dir;
  while (true) {
    FileLock lock;
    UnitRecord rec;
    std::string message;  // "label|resume" or "" when the queue is empty
    parallel::RunOnRoot(gc, [&] {
      const std::string label = ClaimNext(dir, run.plan.selected, &lock);
      if (label.empty()) return;
      const std::string unit = UnitName(stage, label);
      rec = FreshRecord(dir, unit, stage, label, UnitConfigHash(run.cfg, stage, label));
      const bool resume = StartUnit(dir, &rec, run.world.size(), group.color, group.ranks);
      message = label + "|" + (resume ? "1" : "0");
    });
    message = gc.Broadcast(message);
    if (message.empty()) return false;
    const size_t bar = message.rfind('|');
    const std::string participant = message.substr(0, bar);
    const std::string unit = UnitName(stage, participant);
    const StageContext ctx =
        MakeContext(run, unit, participant, UnitConfigHash(run.cfg, stage, participant),
                    message.substr(bar + 1) == "1", &gc);
    // Every group's leader prints its unit's lines (progress, epochs), tagged with the unit;
    // the other ranks stay quiet as before.
    ScopedLogUnit log_unit(ctx.unit, gc.is_root());
    if (gc.is_root())
      LOG_INFO("unit {}: {} on group {}/{} ({} rank(s))", ctx.unit,
               ctx.resume ? "resuming" : "starting", group.color + 1, group.n_groups, gc.size());
    const UnitOutcome out =
        RunRecordedUnit(gc, dir, &rec, [&] { return run.impl.individual(ctx); });
    if (out.stopped) return true;
  }
}

// World rank 0: one summary row per selected participant, from the manifest ("skipped (done)" for
// the ones in done_before, "not done" for those without a record).
void AddParticipantRows(const RunScope& run, const std::set<std::string>& done_before) {
  const auto m = ReadManifest(run.dir);
  for (const auto& l : run.plan.selected) {
    const std::string unit = UnitName(Stage::kIndividual, l);
    SummaryRow row;
    row.unit = unit;
    row.state = "not done";
    auto it = m.find(unit);
    if (it != m.end()) {
      row.state = done_before.count(l) ? "skipped (done)" : UnitStateName(it->second.state);
      row.wall_seconds = it->second.wall_seconds;
      row.metric_name = it->second.metric_name;
      row.metric = it->second.metric;
    }
    run.summary->rows.push_back(row);
  }
}

// Collective over the world: the individual stage, the `position`-th stage of the plan. The world
// is split into participant groups that claim and run the selected participants' units; then
// every rank waits for all groups. Throws Error(kPreempted) on every rank if a unit was preempted.
void RunParticipantGroups(const RunScope& run, size_t position) {
  const Stage stage = Stage::kIndividual;
  const parallel::Comm& world = run.world;
  const Plan& plan = run.plan;
  parallel::RunOnRoot(world, [&] { CheckUpstreamDone(run.dir, plan, stage); });
  const int g = GroupSize(run.cfg.run.group_size, world.size(), int64_t(plan.selected.size()));
  ParticipantGroup group;
  group.color = world.rank() / g;
  group.n_groups = (world.size() + g - 1) / g;
  parallel::OwnedComm owned = parallel::OwnedComm::Split(world, group.color, world.rank());
  const parallel::Comm& gc = owned.comm();
  for (int r = group.color * g; r < std::min(world.size(), (group.color + 1) * g); ++r)
    group.ranks.push_back(r);
  std::set<std::string> done_before;
  if (world.is_root()) {
    const auto m = ReadManifest(run.dir);
    for (const auto& l : plan.selected) {
      auto it = m.find(UnitName(stage, l));
      if (it != m.end() && it->second.state == UnitState::kDone) done_before.insert(l);
    }
    LOG_INFO("stage individual ({}/{}): {} participant(s), {} group(s) of {} rank(s)", position + 1,
             plan.stages.size(), plan.selected.size(), group.n_groups, g);
  }
  const bool stopped = RunClaimedUnits(run, gc, group);
  if (world.AnyTrue(stopped)) {
    run.summary->preempted = true;
    ThrowPreempted("individual");
  }
  world.Barrier();
  if (world.is_root()) AddParticipantRows(run, done_before);
}

}  // namespace

RunSummary RunPipeline(const config::Config& cfg, const RunArgs& args, const parallel::Comm& world,
                       const StageSet& impl) {
  const Plan plan = MakePlan(cfg, args, impl);  // deterministic: the same on every rank
  const std::string dir = RunDir(cfg);
  RunSummary summary;
  summary.run_dir = dir;
  summary.results = ResultsPath(cfg);
  const RunScope run{cfg, impl, plan, world, dir, &summary};

  // Root: run lock, inputs, config hashes of the recorded units (refuse or reset).
  FileLock run_lock;
  parallel::RunOnRoot(world, [&] { PrepareRunFolder(run, args.force, &run_lock); });
  // Before any work: upstream stages that this invocation does not run must be done already.
  parallel::RunOnRoot(world, [&] {
    for (Stage s : plan.stages) CheckUpstreamDone(dir, plan, s, /*unplanned_only=*/true);
  });

  const auto pipeline_start = Clock::now();
  for (size_t si = 0; si < plan.stages.size(); ++si) {
    if (plan.stages[si] == Stage::kIndividual)
      RunParticipantGroups(run, si);
    else
      RunWorldUnit(run, plan.stages[si], si);
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
