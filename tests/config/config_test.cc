#include "config/config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>

#include "core/error.h"

namespace cliphba::config {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = std::string(CLIPHBA_TEST_OUT_DIR) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Expects a ConfigError whose message contains every fragment.
void ExpectConfigError(const std::string& file, const std::vector<std::string>& sets,
                       const std::vector<std::string>& fragments) {
  try {
    LoadConfig(file, sets);
    FAIL() << "no error for " << file;
  } catch (const ConfigError& e) {
    for (const auto& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "'" << f << "' missing from: " << e.what();
  }
}

TEST(ConfigTest, DefaultsFileAndOverridesInOrder) {
  std::string file = WriteFile("ok.yaml",
                               "rsa:\n  behavior:\n    embedding: emb.csv\n"
                               "    metrics: [spose, cosine]\nsynth:\n  behavior:\n    seed: 7\n");
  Config c = LoadConfig(file, {"synth.behavior.seed=9", "rsa.behavior.symmetry_tolerance=1e-6",
                               "log.all_ranks=true"});
  EXPECT_EQ(c.rsa_behavior.embedding, "emb.csv");
  EXPECT_EQ(c.rsa_behavior.metrics, (std::vector<std::string>{"spose", "cosine"}));
  EXPECT_EQ(c.synth_behavior.seed, 9);
  EXPECT_DOUBLE_EQ(c.rsa_behavior.symmetry_tolerance, 1e-6);
  EXPECT_TRUE(c.log.all_ranks);
  EXPECT_EQ(c.synth_behavior.n_objects, 48);  // untouched default
}

TEST(ConfigTest, UnknownKeySuggestsTheClosestKey) {
  std::string file = WriteFile("typo.yaml", "synth:\n  behavior:\n    n_objcts: 10\n");
  ExpectConfigError(file, {},
                    {"typo.yaml:3:5", "synth.behavior.n_objcts", "unknown key",
                     "did you mean 'synth.behavior.n_objects'"});
  ExpectConfigError("", {"rsa.behavior.embeding=x"},
                    {"--set", "did you mean 'rsa.behavior.embedding'"});
}

TEST(ConfigTest, DuplicateKeysAreRefusedNamingBothLines) {
  // YAML forbids them and yaml-cpp would silently keep one: refused at every level.
  std::string file = WriteFile("dup.yaml",
                               "synth:\n  behavior:\n    seed: 7\n    n_objects: 10\n"
                               "    seed: 8\n");
  ExpectConfigError(
      file, {},
      {"dup.yaml:5:5", "synth.behavior.seed", "duplicate key", "first at", "dup.yaml:3:5"});
  // A section given twice is merged (DumpConfig writes `train:` twice); its keys stay unique.
  std::string split = WriteFile("dup_split.yaml",
                                "log:\n  level: info\nsynth:\n  behavior:\n    seed: 3\n"
                                "log:\n  all_ranks: true\n");
  Config c = LoadConfig(split, {});
  EXPECT_EQ(c.log.level, "info");
  EXPECT_TRUE(c.log.all_ranks);
  std::string top = WriteFile("dup_top.yaml", "log:\n  level: info\nlog:\n  level: warn\n");
  ExpectConfigError(top, {},
                    {"dup_top.yaml:4:3", "log.level", "duplicate key", "dup_top.yaml:2:3"});
}

TEST(ConfigTest, AQuoteThatDoesNotCloseOnItsLineIsRefused) {
  // YAML would read `prompts: "a.json` + the next line as one value and lose the key `vocab`.
  std::string file = WriteFile("quote.yaml",
                               "train:\n  behavior:\n    prompts: \"p.json\n"
                               "    vocab: v.gz\n");
  ExpectConfigError(file, {}, {"quote.yaml:3:14", "train.behavior.prompts", "double quote",
                               "does not close on this line"});
  std::string single = WriteFile("quote1.yaml", "log:\n  level: 'info\n  all_ranks: true\n");
  ExpectConfigError(single, {}, {"quote1.yaml:2:10", "log.level", "single quote"});
  // Closed quotes, escapes, '' and # inside quotes, and lists of quoted items are fine.
  std::string ok = WriteFile(
      "quote_ok.yaml",
      "log:\n  level: \"info\"  # a comment with a \" quote\n"
      "train:\n  behavior:\n    prompts: 'it''s #1.json'\n    vocab: \"a\\\"b.gz\"\n"
      "run:\n  stages: [\"behavior\", 'report']\n");
  Config c = LoadConfig(ok, {});
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.train_behavior.prompts, "it's #1.json");
  EXPECT_EQ(c.train_behavior.vocab, "a\"b.gz");
  EXPECT_EQ(c.run.stages, (std::vector<std::string>{"behavior", "report"}));
}

TEST(ConfigTest, SettingASectionSaysSoAndNamesAKey) {
  // `--set permute=5` used to answer "did you mean 'permute'?".
  ExpectConfigError("", {"permute=5"}, {"--set", "permute", "is a section", "permute."});
  ExpectConfigError("", {"train.meg=1"}, {"train.meg", "is a section", "train.meg."});
}

TEST(ConfigTest, WrongTypeNamesKeyFileLineAndExpectation) {
  std::string file =
      WriteFile("type.yaml", "log:\n  level: info\nsynth:\n  behavior:\n    n_objects: many\n");
  ExpectConfigError(
      file, {}, {"type.yaml:5:16", "synth.behavior.n_objects", "expected an integer", "'many'"});
  std::string list = WriteFile("list.yaml", "rsa:\n  behavior:\n    metrics: spose\n");
  ExpectConfigError(list, {}, {"list.yaml:3", "expected a list of strings"});
  std::string section = WriteFile("section.yaml", "rsa: 3\n");
  ExpectConfigError(section, {}, {"section.yaml:1", "rsa", "expected a mapping"});
}

TEST(ConfigTest, OutOfRangeAndChoices) {
  ExpectConfigError("", {"synth.behavior.n_objects=-5"},
                    {"synth.behavior.n_objects", "expected an integer in [3, 400]", "-5"});
  ExpectConfigError("", {"rsa.behavior.metrics=[spose, manhattan]"},
                    {"expected one of correlation, cosine, euclidean, spose", "manhattan"});
  ExpectConfigError("", {"log.level=loud"}, {"log.level", "expected one of"});
  ExpectConfigError("", {"rsa.behavior.symmetry_tolerance=nan"}, {"expected a finite number"});
  ExpectConfigError("", {"synth.behavior.n_active=20"}, {"must not exceed synth.behavior.n_dims"});
  ExpectConfigError("", {"novalue"}, {"expected key.path=value"});
}

TEST(ConfigTest, MalformedYamlAndMissingFile) {
  std::string file = WriteFile("bad.yaml", "rsa:\n  behavior: [unclosed\n");
  ExpectConfigError(file, {}, {"bad.yaml:", "malformed YAML"});
  EXPECT_THROW(LoadConfig("/nonexistent/cliphba.yaml", {}), IoError);
}

TEST(ConfigTest, DumpReadsBackToTheSameConfig) {
  Config c = LoadConfig("", {"rsa.behavior.embedding=a \"quoted\" path.csv",
                             "rsa.behavior.symmetry_tolerance=0.125", "synth.behavior.seed=3"});
  std::string file = WriteFile("dump.yaml", DumpConfig(c));
  Config back = LoadConfig(file, {});
  EXPECT_EQ(DumpConfig(back), DumpConfig(c));
  EXPECT_EQ(back.rsa_behavior.embedding, "a \"quoted\" path.csv");
  EXPECT_NE(ConfigHash(back), ConfigHash(Config{}));
}

// Collects leaf key paths of a YAML mapping.
void Leaves(const YAML::Node& node, const std::string& prefix, std::set<std::string>* out) {
  for (const auto& kv : node) {
    std::string path = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
    if (kv.second.IsMap()) {
      Leaves(kv.second, path, out);
    } else {
      out->insert(path);
    }
  }
}

// configs/reference.yaml documents every key with its default.
TEST(ConfigTest, ReferenceYamlListsEveryKeyWithItsDefault) {
  const std::string path = std::string(CLIPHBA_SOURCE_DIR) + "/configs/reference.yaml";
  Config from_file = LoadConfig(path, {});  // unknown keys would throw
  EXPECT_EQ(DumpConfig(from_file), DumpConfig(Config{}))
      << "a default in configs/reference.yaml differs from options.h";
  std::set<std::string> in_file, in_schema;
  Leaves(YAML::LoadFile(path), "", &in_file);
  for (const KeyInfo& k : ConfigKeys()) in_schema.insert(k.path);
  EXPECT_EQ(in_file, in_schema) << "configs/reference.yaml and options.h list different keys";
}

}  // namespace
}  // namespace cliphba::config

// `cliphba config --get` (used by jobs/submit_pipeline.sh): scalars, lists and sections of the
// resolved configuration, and a ConfigError naming the missing part of an unknown key.
namespace cliphba::config {
namespace {

TEST(ConfigGetTest, ScalarsListsAndSectionsOfTheResolvedConfig) {
  Config c = LoadConfig("", {"permute.mantel.n=321", "permute.out=x/y.h5"});
  EXPECT_EQ(GetConfigValue(c, "permute.mantel.n"), "321\n");
  EXPECT_EQ(GetConfigValue(c, "permute.out"), "x/y.h5\n");
  std::string metrics;
  for (const auto& m : c.rsa_behavior.metrics) metrics += m + "\n";
  ASSERT_FALSE(c.rsa_behavior.metrics.empty());
  EXPECT_EQ(GetConfigValue(c, "rsa.behavior.metrics"), metrics);
  // A section comes back as YAML that holds its keys.
  YAML::Node mantel = YAML::Load(GetConfigValue(c, "permute.mantel"));
  EXPECT_EQ(mantel["n"].as<int>(), 321);
}

TEST(ConfigGetTest, UnknownKeyNamesTheMissingPart) {
  Config c = LoadConfig("", {});
  try {
    GetConfigValue(c, "permute.nope.n");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'permute.nope'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GetConfigValue(c, ""), ConfigError);
  EXPECT_THROW(GetConfigValue(c, "permute.mantel.n.deeper"), ConfigError);
}

}  // namespace
}  // namespace cliphba::config
