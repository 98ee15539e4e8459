// `cliphba synth cohort` and `cliphba synth model` end to end: exit codes and messages for bad
// settings (core/error.h: ConfigError exits 2 and names the key), the --force contracts, and small
// happy paths (the model's safetensors header read back here; the trainers load it in
// tests/pipeline/ground_truth_test.sh).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/apps/run_binary.h"

namespace {

namespace fs = std::filesystem;

#ifndef CLIPHBA_BINARY
#error "synth_cohort_cli_test needs CLIPHBA_BINARY (the cliphba target must exist)"
#endif

constexpr int kUsage = 2;

std::string ReadFile(const fs::path& path) { return cliphba::testing::ReadFileBytes(path); }

using Outcome = cliphba::testing::ProcessResult;

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
    return cliphba::testing::RunBinary(CLIPHBA_BINARY, args, base_);
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
  ExpectRefused(Synth({"--set", "synth.cohort.n_heldout=20", "--set",
                       "synth.cohort.behavior_only_objects=12"}),
                {"synth.cohort.n_heldout", "synth.cohort.behavior_only_objects"});
  ExpectRefused(Synth({"--set", "synth.cohort.n_objects=300", "--set",
                       "synth.cohort.behavior_only_objects=101"}),
                {"synth.cohort.behavior_only_objects", "at most 400"});
  ExpectRefused(Synth({"--set", "synth.cohort.dimensions=[red, mauve]"}),
                {"synth.cohort.dimensions", "mauve"});
  ExpectRefused(Synth({"--set", "synth.cohort.dimensions=[red, blue, red]"}),
                {"synth.cohort.dimensions", "\"red\" is listed twice"});
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

// The JSON header of a safetensors file (8-byte little-endian length, then JSON).
nlohmann::json SafetensorsHeader(const fs::path& path) {
  const std::string bytes = ReadFile(path);
  if (bytes.size() < 8) return {};
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | uint8_t(bytes[size_t(k)]);
  return nlohmann::json::parse(bytes.substr(8, n));
}

TEST_F(SynthCohortCliTest, ModelIsASeededRandomClipWithTheConfiguredDepth) {
  const std::string a = (base_ / "a.safetensors").string(), b = (base_ / "b.safetensors").string();
  Outcome r = Cli({"synth", "model", "--out", a, "--set", "synth.model.vision_layers=5", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("vision_layers"), 5);
  const nlohmann::json h = SafetensorsHeader(a);
  ASSERT_TRUE(h.contains("visual.transformer.resblocks.4.attn.in_proj_weight")) << h.dump();
  EXPECT_FALSE(h.contains("visual.transformer.resblocks.5.attn.in_proj_weight"));
  EXPECT_EQ(h.at("visual.proj").at("shape"), (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(h.at("token_embedding.weight").at("shape"), (std::vector<int64_t>{49408, 64}));
  EXPECT_EQ(h.at("vocab_size").at("dtype"), "I64");
  EXPECT_EQ(h.at("__metadata__").at("seed"), "1");
  // Same seed: the same bytes; another seed: other weights.
  ASSERT_EQ(Cli({"synth", "model", "--out", b, "--set", "synth.model.vision_layers=5"}).code, 0);
  EXPECT_EQ(ReadFile(a), ReadFile(b));
  ASSERT_EQ(Cli({"synth", "model", "--out", b, "--force", "--seed", "2", "--set",
                 "synth.model.vision_layers=5"})
                .code,
            0);
  EXPECT_NE(ReadFile(a), ReadFile(b));
}

TEST_F(SynthCohortCliTest, ModelRefusesAnExistingFileAndBadShapes) {
  const std::string a = (base_ / "m.safetensors").string();
  std::ofstream(a) << "precious\n";
  Outcome r = Cli({"synth", "model", "--out", a});
  EXPECT_EQ(r.code, kUsage) << r.err;  // the output policy: a refusal is exit 2
  EXPECT_NE(r.err.find(a), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(a), "precious\n");
  const std::string c = (base_ / "c.safetensors").string();
  Outcome w = Cli({"synth", "model", "--out", c, "--set", "synth.model.vision_width=100"});
  EXPECT_EQ(w.code, kUsage) << w.err;
  EXPECT_NE(w.err.find("synth.model.vision_width"), std::string::npos) << w.err;
  Outcome p = Cli({"synth", "model", "--out", c, "--set", "synth.model.image_resolution=30"});
  EXPECT_EQ(p.code, kUsage) << p.err;
  EXPECT_NE(p.err.find("synth.model.vision_patch_size"), std::string::npos) << p.err;
  // Pre-training tokenises captions: it needs the BPE file and the real vocabulary size.
  Outcome v = Cli({"synth", "model", "--out", c, "--set", "synth.model.pretrain_steps=5"});
  EXPECT_EQ(v.code, kUsage) << v.err;
  EXPECT_NE(v.err.find("synth.model.vocab"), std::string::npos) << v.err;
  Outcome z = Cli({"synth", "model", "--out", c, "--set", "synth.model.pretrain_steps=5", "--set",
                   "synth.model.vocab=x.txt.gz", "--set", "synth.model.vocab_size=4096"});
  EXPECT_EQ(z.code, kUsage) << z.err;
  EXPECT_NE(z.err.find("synth.model.vocab_size"), std::string::npos) << z.err;
  Outcome m = Cli({"synth", "model", "--out", c, "--set", "synth.model.pretrain_steps=5", "--set",
                   "synth.model.vocab=" + (base_ / "missing.txt.gz").string()});
  EXPECT_NE(m.code, 0) << m.err;
  EXPECT_NE(m.err.find("missing.txt.gz"), std::string::npos) << m.err;
  EXPECT_FALSE(fs::exists(c));
}

}  // namespace
