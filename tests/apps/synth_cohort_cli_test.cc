// `cliphba synth cohort` end to end: exit codes and messages for bad settings (core/error.h:
// ConfigError exits 2 and names the key), the --force contract, and a small happy path.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

#ifndef CLIPHBA_BINARY
#error "synth_cohort_cli_test needs CLIPHBA_BINARY (the cliphba target must exist)"
#endif

constexpr int kUsage = 2;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

class SynthCohortCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(CLIPHBA_TEST_OUT_DIR) / "synth_cohort_cli" /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base_);
    fs::create_directories(base_);
    out_dir_ = (base_ / "cohort").string();
  }

  // Runs the binary; stdout/stderr through files (a chatty child never blocks on a pipe).
  Outcome Cli(const std::vector<std::string>& args) {
    const std::string out_path = (base_ / "stdout.txt").string();
    const std::string err_path = (base_ / "stderr.txt").string();
    std::vector<std::string> storage = {CLIPHBA_BINARY};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, CLIPHBA_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    Outcome r;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << CLIPHBA_BINARY << ": " << std::strerror(rc);
      return r;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(out_path);
    r.err = ReadFile(err_path);
    return r;
  }

  // `synth cohort --out-dir out_dir_` with a small cohort, plus `extra`.
  Outcome Synth(std::vector<std::string> extra) {
    std::vector<std::string> args = {"synth",     "cohort",
                                     "--out-dir", out_dir_,
                                     "--set",     "synth.cohort.n_objects=8",
                                     "--set",     "synth.cohort.n_heldout=2",
                                     "--set",     "synth.cohort.n_participants=2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  }

  // Exit 2, stderr naming every needle, and no cohort written.
  void ExpectRefused(const Outcome& r, const std::vector<std::string>& needles) {
    EXPECT_EQ(r.code, kUsage) << "stderr: " << r.err;
    for (const auto& n : needles)
      EXPECT_NE(r.err.find(n), std::string::npos) << "stderr lacks '" << n << "':\n" << r.err;
    EXPECT_FALSE(fs::exists(fs::path(out_dir_) / "cohort.json"));
  }

  fs::path base_;
  std::string out_dir_;
};

TEST_F(SynthCohortCliTest, WritesASmallCohortAndReportsItsFiles) {
  Outcome r = Synth({"--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_objects"].get<int64_t>(), 8);
  EXPECT_EQ(j["n_participants"].get<int64_t>(), 2);
  EXPECT_EQ(j["files"].back().get<std::string>(), "cohort.json");
  for (const auto& f : j["files"])
    EXPECT_TRUE(fs::exists(fs::path(out_dir_) / f.get<std::string>())) << f;
  EXPECT_TRUE(fs::exists(fs::path(out_dir_) / "meg/sub-02_epochs.h5"));
  // Again with the same settings: accepted (deterministic regeneration).
  EXPECT_EQ(Synth({}).code, 0);
}

TEST_F(SynthCohortCliTest, TooFewParticipantsExitsTwoNamingTheKey) {
  ExpectRefused(Synth({"--set", "synth.cohort.n_participants=0"}),
                {"synth.cohort.n_participants", "expected an integer in [1,"});
}

TEST_F(SynthCohortCliTest, BadSizesExitTwoNamingTheKey) {
  ExpectRefused(Synth({"--set", "synth.cohort.n_objects=3"}), {"synth.cohort.n_objects"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_dims=17"}), {"synth.cohort.n_dims", "[1, 16]"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_trials=0"}), {"synth.cohort.n_trials"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_sensors=0"}), {"synth.cohort.n_sensors"});
  ExpectRefused(Synth({"--set", "synth.cohort.sfreq=0"}), {"synth.cohort.sfreq"});
  ExpectRefused(Synth({"--set", "synth.cohort.noise=-1"}), {"synth.cohort.noise"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_exemplars=0"}), {"synth.cohort.n_exemplars"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_heldout=8"}),
                {"synth.cohort.n_heldout", "synth.cohort.n_objects"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_exemplar=2"}),
                {"unknown key", "synth.cohort.n_exemplars"});
}

TEST_F(SynthCohortCliTest, AForeignOutDirNeedsForce) {
  fs::create_directories(out_dir_);
  std::ofstream(fs::path(out_dir_) / "mine.txt") << "not a cohort\n";
  ExpectRefused(Synth({}), {out_dir_, "--force"});
  Outcome forced = Synth({"--force"});
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_TRUE(fs::exists(fs::path(out_dir_) / "cohort.json"));
  EXPECT_TRUE(fs::exists(fs::path(out_dir_) / "mine.txt"));
  // A cohort of other settings is refused as well.
  Outcome other = Synth({"--seed", "9"});
  EXPECT_EQ(other.code, kUsage) << other.err;
  EXPECT_NE(other.err.find("other settings"), std::string::npos) << other.err;
}

}  // namespace
