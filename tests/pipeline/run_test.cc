// The pure parts of `cliphba run` (pipeline/run.h): unit names, per-section config hashes, the
// --force affected set, default group sizes, unit records and the manifest, locks and the claim
// order; and the orchestration itself on the serial communicator with fake stages (skip, resume,
// refuse, --force, --only, missing inputs, preemption).
#include "pipeline/run.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace cliphba::pipeline {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = std::string(CLIPHBA_TEST_OUT_DIR) + "/pipeline_run/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(RunNamesTest, UnitNamesStagesAndLabels) {
  EXPECT_EQ(UnitName(Stage::kBehavior), "behavior");
  EXPECT_EQ(UnitName(Stage::kIndividual, "sub-01"), "individual/sub-01");
  EXPECT_EQ(UnitName(Stage::kReport), "report");
  EXPECT_EQ(StageOfUnit("individual/3"), Stage::kIndividual);
  EXPECT_EQ(StageOfUnit("alignment"), Stage::kAlignment);
  EXPECT_THROW(StageOfUnit("individual"), DataError);
  EXPECT_THROW(StageOfUnit("nope"), DataError);
  EXPECT_EQ(ParseStage("group", "--only"), Stage::kGroup);
  try {
    ParseStage("grup", "--only");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--only: unknown stage 'grup'"), std::string::npos);
  }
  EXPECT_NO_THROW(CheckParticipantLabel("sub-01_a.b"));
  for (const char* bad : {"", ".", "..", "a/b", "../x", "a b"})
    EXPECT_THROW(CheckParticipantLabel(bad), ConfigError) << bad;
  config::Config c;
  c.run.name = "demo";
  EXPECT_EQ(RunDir(c), "results/demo");
  EXPECT_EQ(ResultsPath(c), "results/demo/results.h5");
  c.run.out_dir = "/tmp/x";
  c.run.results = "/tmp/r.h5";
  EXPECT_EQ(RunDir(c), "/tmp/x");
  EXPECT_EQ(ResultsPath(c), "/tmp/r.h5");
}

TEST(RunHashTest, EachUnitHashesOnlyItsSections) {
  config::Config a;
  auto all = [](const config::Config& c) {
    return std::vector<std::string>{
        UnitConfigHash(c, Stage::kBehavior), UnitConfigHash(c, Stage::kGroup),
        UnitConfigHash(c, Stage::kIndividual, "0"), UnitConfigHash(c, Stage::kAlignment),
        UnitConfigHash(c, Stage::kReport)};
  };
  const auto base = all(a);
  EXPECT_EQ(base[0].size(), 16u);
  // Every unit has its own hash; an individual's depends on the participant.
  EXPECT_EQ(std::set<std::string>(base.begin(), base.end()).size(), 5u);
  EXPECT_NE(UnitConfigHash(a, Stage::kIndividual, "0"), UnitConfigHash(a, Stage::kIndividual, "1"));

  config::Config b = a;  // a setting of stage 1: behaviour only
  b.train_behavior.lr = 1e-2;
  auto h = all(b);
  EXPECT_NE(h[0], base[0]);
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(h[i], base[i]) << i;

  config::Config c = a;  // settings that do not change results: no unit changes
  c.train_behavior.loader_threads = 7;
  c.train_behavior.progress_seconds = 1;
  c.train_behavior.out_dir = "elsewhere";
  c.train_behavior.dist_bucket_mb = 3;
  c.runtime.threads = 3;
  c.run.group_size = 4;
  c.run.name = "other";
  EXPECT_EQ(all(c), base);

  config::Config d = a;  // the run seed: the statistics of alignment and the report only
  d.run.seed = 99;
  h = all(d);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(h[i] != base[i], i >= 3) << i;

  config::Config f = a;  // the fold count: the MEG model units (their fold models) and alignment
  f.run.cv_folds = 3;
  h = all(f);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(h[i] != base[i], i >= 1 && i <= 3) << i;

  config::Config e = a;  // the results location: report only
  e.run.results = "x.h5";
  h = all(e);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(h[i] != base[i], i == 4) << i;
}

TEST(RunForceTest, AffectedSetIsTheChangedUnitsAndEverythingDownstream) {
  const std::vector<std::string> units = {"behavior",     "group",     "individual/0",
                                          "individual/1", "alignment", "report"};
  using V = std::vector<std::string>;
  EXPECT_EQ(AffectedUnits({"behavior"}, units), units);
  EXPECT_EQ(AffectedUnits({"individual/1"}, units), (V{"individual/1", "alignment", "report"}));
  EXPECT_EQ(AffectedUnits({"group"}, units), (V{"group", "alignment", "report"}));
  EXPECT_EQ(AffectedUnits({"alignment"}, units), (V{"alignment", "report"}));
  EXPECT_EQ(AffectedUnits({"report"}, units), (V{"report"}));
  EXPECT_EQ(AffectedUnits({}, units), V{});
  // Without MEG stages, behaviour feeds the report directly.
  EXPECT_EQ(AffectedUnits({"behavior"}, V{"behavior", "report"}), (V{"behavior", "report"}));
}

TEST(RunGroupsTest, DefaultGroupSizes) {
  // world / min(world, participants), at least 1; a configured size is capped at the world.
  EXPECT_EQ(GroupSize(0, 1, 5), 1);
  EXPECT_EQ(GroupSize(0, 2, 5), 1);
  EXPECT_EQ(GroupSize(0, 3, 1), 3);
  EXPECT_EQ(GroupSize(0, 4, 2), 2);
  EXPECT_EQ(GroupSize(0, 3, 2), 1);
  EXPECT_EQ(GroupSize(0, 8, 3), 2);
  EXPECT_EQ(GroupSize(0, 2, 0), 2);
  EXPECT_EQ(GroupSize(2, 1, 5), 1);
  EXPECT_EQ(GroupSize(2, 6, 5), 2);
}

TEST(RunRecordTest, RecordsAndManifestRoundTrip) {
  const std::string dir = FreshDir("manifest");
  UnitRecord a;
  a.unit = "behavior";
  a.stage = "behavior";
  a.state = UnitState::kDone;
  a.checkpoint_dir = dir + "/behavior";
  a.config_hash = "0123456789abcdef";
  a.start_utc = "2026-01-01T00:00:00Z";
  a.end_utc = "2026-01-01T00:01:00Z";
  a.wall_seconds = 60.5;
  a.attempts = 2;
  a.world_size = 3;
  a.group_size = 3;
  a.ranks = {0, 1, 2};
  a.host = "h";
  a.pid = 42;
  a.metric_name = "heldout_spearman";
  a.metric = 0.25;
  a.metrics = {{"best_epoch", 3}, {"nan", std::nan("")}};
  UnitRecord b;
  b.unit = "individual/sub-2";
  b.stage = "individual";
  b.participant = "sub-2";
  b.state = UnitState::kRunning;
  b.config_hash = "fedcba9876543210";
  WriteRecord(dir, a);
  WriteRecord(dir, b);
  EXPECT_TRUE(fs::exists(dir + "/units/individual/sub-2.json"));
  const auto m = ReadManifest(dir);
  ASSERT_EQ(m.size(), 2u);
  const UnitRecord& ra = m.at("behavior");
  EXPECT_EQ(RecordToJson(ra), RecordToJson(a));
  EXPECT_EQ(ra.ranks, a.ranks);
  EXPECT_DOUBLE_EQ(ra.metric, 0.25);
  EXPECT_TRUE(std::isnan(ra.metrics.at("nan")));
  EXPECT_EQ(m.at("individual/sub-2").participant, "sub-2");
  EXPECT_TRUE(std::isnan(m.at("individual/sub-2").metric));
  // No temporary files left behind by the atomic writes.
  for (const auto& e : fs::recursive_directory_iterator(dir + "/units"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_THROW(RecordFromJson("{", "x.json"), DataError);
  std::string bad = RecordToJson(a);
  bad.replace(bad.find("\"done\""), 6, "\"weird\"");
  EXPECT_THROW(RecordFromJson(bad, "x.json"), DataError);
  EXPECT_TRUE(ReadManifest(dir + "/none").empty());
}

TEST(RunLockTest, FlockExclusiveSharedAndClaimOrder) {
  const std::string dir = FreshDir("claim");
  FileLock x, y, z;
  ASSERT_TRUE(x.TryAcquire(dir + "/run.lock", false));
  ASSERT_TRUE(y.TryAcquire(dir + "/run.lock", false));  // shared + shared: array tasks
  EXPECT_FALSE(z.TryAcquire(dir + "/run.lock", true));  // a whole run waits for none of them
  x.Release();
  y.Release();
  EXPECT_TRUE(z.TryAcquire(dir + "/run.lock", true));
  EXPECT_FALSE(x.TryAcquire(dir + "/run.lock", false));
  z.Release();

  // The claim queue: in order, skipping done units and units whose lock another group holds.
  const std::vector<std::string> order = {"a", "b", "c"};
  UnitRecord done;
  done.unit = "individual/a";
  done.stage = "individual";
  done.participant = "a";
  done.state = UnitState::kDone;
  done.config_hash = "h";
  WriteRecord(dir, done);
  FileLock g1, g2, g3;
  EXPECT_EQ(ClaimNext(dir, order, &g1), "b");
  EXPECT_EQ(ClaimNext(dir, order, &g2), "c");
  EXPECT_EQ(ClaimNext(dir, order, &g3), "");
  EXPECT_FALSE(g3.held());
  // b finishes: its lock is free again but the record says done, so it is not claimed twice.
  done.unit = "individual/b";
  done.participant = "b";
  WriteRecord(dir, done);
  g1.Release();
  EXPECT_EQ(ClaimNext(dir, order, &g3), "");
  // c's group dies (lock released, record still running): the next claim resumes c.
  g2.Release();
  EXPECT_EQ(ClaimNext(dir, order, &g3), "c");
}

// ---- the orchestration with fake stages on the serial communicator ----

struct Calls {
  std::vector<std::string> units;  // in call order, "+resume" appended for resumed units
  std::string stop_unit;           // this unit reports "preempted" once
};

StageSet FakeStages(Calls* calls) {
  StageSet s;
  auto fn = [calls](const StageContext& c) {
    EXPECT_TRUE(fs::is_directory(c.out_dir)) << c.out_dir;
    EXPECT_EQ(c.comm->size(), 1);
    calls->units.push_back(c.unit + (c.resume ? "+resume" : ""));
    UnitOutcome out;
    if (c.unit == calls->stop_unit) {
      calls->stop_unit.clear();
      out.stopped = true;
      return out;
    }
    out.metric_name = "m";
    out.metric = double(calls->units.size());
    return out;
  };
  s.behavior = s.group = s.individual = s.alignment = s.report = fn;
  return s;
}

config::Config FakeConfig(const std::string& dir) {
  config::Config c;
  c.run.out_dir = dir;
  c.run.participants = {"p0", "p1", "p2"};
  c.train_behavior.checkpoint = c.train_behavior.vocab = c.train_behavior.prompts =
      c.train_behavior.targets_csv = c.train_behavior.image_dir = dir;  // exist
  return c;
}

using V = std::vector<std::string>;

TEST(RunPipelineTest, RunsOnceSkipsRefusesAndForcesOnlyAffected) {
  const std::string dir = FreshDir("pipeline");
  config::Config cfg = FakeConfig(dir);
  Calls calls;
  const parallel::Comm serial = parallel::Comm::Serial();
  RunSummary s = RunPipeline(cfg, {}, serial, FakeStages(&calls));
  EXPECT_EQ(calls.units, (V{"behavior", "group", "individual/p0", "individual/p1", "individual/p2",
                            "alignment", "report"}));
  ASSERT_EQ(s.rows.size(), 7u);
  for (const auto& r : s.rows) EXPECT_EQ(r.state, "done") << r.unit;
  for (const auto& [u, r] : ReadManifest(dir)) {
    EXPECT_EQ(r.state, UnitState::kDone) << u;
    EXPECT_EQ(r.attempts, 1);
    EXPECT_FALSE(r.end_utc.empty());
  }
  EXPECT_NE(FormatSummary(s).find("individual/p1"), std::string::npos);

  calls.units.clear();  // rerun: everything is done
  s = RunPipeline(cfg, {}, serial, FakeStages(&calls));
  EXPECT_TRUE(calls.units.empty());
  for (const auto& r : s.rows) EXPECT_EQ(r.state, "skipped (done)") << r.unit;

  config::Config changed = cfg;  // the results location: only the report is affected
  changed.run.results = dir + "/elsewhere.h5";
  try {
    RunPipeline(changed, {}, serial, FakeStages(&calls));
    FAIL() << "a changed config was not refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(": report (their recorded"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(calls.units.empty());
  RunArgs force;
  force.force = true;
  RunPipeline(changed, force, serial, FakeStages(&calls));
  EXPECT_EQ(calls.units, V{"report"});

  calls.units.clear();  // a behaviour setting: everything downstream is redone
  changed.train_behavior.lr = 0.5;
  RunPipeline(changed, force, serial, FakeStages(&calls));
  EXPECT_EQ(calls.units.size(), 7u);
  EXPECT_EQ(ReadManifest(dir).at("behavior").attempts, 1);  // reset, not resumed
}

TEST(RunPipelineTest, PreemptionLeavesTheUnitRunningAndTheRerunResumesIt) {
  const std::string dir = FreshDir("preempt");
  config::Config cfg = FakeConfig(dir);
  Calls calls;
  calls.stop_unit = "individual/p1";
  const parallel::Comm serial = parallel::Comm::Serial();
  try {
    RunPipeline(cfg, {}, serial, FakeStages(&calls));
    FAIL() << "no preemption";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kPreempted);
  }
  EXPECT_EQ(calls.units, (V{"behavior", "group", "individual/p0", "individual/p1"}));
  auto m = ReadManifest(dir);
  EXPECT_EQ(m.at("individual/p1").state, UnitState::kRunning);
  EXPECT_EQ(m.at("individual/p0").state, UnitState::kDone);
  calls.units.clear();
  RunPipeline(cfg, {}, serial, FakeStages(&calls));
  // Nothing finished is redone; the preempted unit resumes.
  EXPECT_EQ(calls.units, (V{"individual/p1+resume", "individual/p2", "alignment", "report"}));
  EXPECT_EQ(ReadManifest(dir).at("individual/p1").attempts, 2);
}

TEST(RunPipelineTest, OnlyParticipantsAndMissingInputs) {
  const std::string dir = FreshDir("only");
  config::Config cfg = FakeConfig(dir);
  Calls calls;
  const parallel::Comm serial = parallel::Comm::Serial();
  RunArgs only;
  only.only = {"individual"};
  only.participants = {"2", "p0"};  // an index and a label
  // The individual stage needs the behaviour unit first.
  EXPECT_THROW(RunPipeline(cfg, only, serial, FakeStages(&calls)), ConfigError);
  EXPECT_TRUE(calls.units.empty());
  RunArgs b;
  b.only = {"behavior"};
  RunPipeline(cfg, b, serial, FakeStages(&calls));
  RunPipeline(cfg, only, serial, FakeStages(&calls));
  EXPECT_EQ(calls.units, (V{"behavior", "individual/p2", "individual/p0"}));
  // The alignment stage needs every individual unit.
  RunArgs al;
  al.only = {"alignment"};
  try {
    RunPipeline(cfg, al, serial, FakeStages(&calls));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("individual/p1 (never run)"), std::string::npos);
  }
  // Bad selections and unavailable or unconfigured stages are refused before any work.
  RunArgs bad = only;
  bad.participants = {"7"};
  EXPECT_THROW(RunPipeline(cfg, bad, serial, FakeStages(&calls)), ConfigError);
  StageSet no_meg = FakeStages(&calls);
  no_meg.group = nullptr;
  EXPECT_THROW(RunPipeline(cfg, {}, serial, no_meg), ConfigError);
  config::Config two = cfg;
  two.run.stages = {"behavior", "report"};
  EXPECT_THROW(RunPipeline(two, al, serial, FakeStages(&calls)), ConfigError);
  // A missing input file of stage behaviour: IoError naming the key, nothing run.
  const std::string dir2 = FreshDir("missing");
  config::Config miss = FakeConfig(dir2);
  miss.train_behavior.targets_csv = dir2 + "/nope.csv";
  calls.units.clear();
  try {
    RunPipeline(miss, {}, serial, FakeStages(&calls));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("train.behavior.targets_csv"), std::string::npos);
  }
  EXPECT_TRUE(calls.units.empty());
}

TEST(RunPipelineTest, LockedRunFolderIsRefused) {
  const std::string dir = FreshDir("locked");
  config::Config cfg = FakeConfig(dir);
  Calls calls;
  FileLock other;
  ASSERT_TRUE(other.TryAcquire(dir + "/run.lock", true));
  try {
    RunPipeline(cfg, {}, parallel::Comm::Serial(), FakeStages(&calls));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("locked by another run"), std::string::npos);
  }
  EXPECT_TRUE(calls.units.empty());
}

}  // namespace
}  // namespace cliphba::pipeline
