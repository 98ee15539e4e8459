// End-to-end tests of the real `cliphba` binary: happy paths against the scipy reference, and bad
// inputs, each checked for its documented exit code (core/error.h), a message that names the
// offending file or key and says what was expected, and that no results or ".partial" file is left.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/npy.h"
#include "tests/apps/run_binary.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#ifndef CLIPHBA_BINARY
#error "cli_test needs CLIPHBA_BINARY (the cliphba target must exist)"
#endif

constexpr int kUsage = 2, kIo = 3, kData = 4;

std::string Things(const std::string& file) {
  return std::string(CLIPHBA_SHARED_DIR) + "/data/things/" + file;
}
const std::string kEmbedding = Things("spose_embedding66d_rescaled.csv");
const std::string kRdm = Things("RDM48_triplet.npy");
const std::string kRdmNames = Things("RDM48_image_names.txt");

std::string ReadFile(const fs::path& path) { return cliphba::testing::ReadFileBytes(path); }

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string f; std::getline(in, f, ',');) out.push_back(f);
  return out;
}

std::string JoinComma(const std::vector<std::string>& fields) {
  std::string s;
  for (size_t i = 0; i < fields.size(); ++i) s += (i ? "," : "") + fields[i];
  return s;
}

// An NPY 1.0 file with a hand-written header dict (padded to 64 bytes) and raw data bytes.
std::string RawNpy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  const size_t prefix = 10;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  return out + header + data;
}

// The real THINGS RDM48 (a Fortran-order file) as a C-order (48 x 48) float64 tensor.
at::Tensor Rdm48() {
  cliphba::io::NpyReadOptions o;
  o.allow_fortran_order = true;
  return cliphba::io::ReadNpy(kRdm, o).to(at::kDouble).contiguous().clone();
}

using Result = cliphba::testing::ProcessResult;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(CLIPHBA_TEST_OUT_DIR) / "cli" /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base_);
    work_ = base_ / "work";
    fs::create_directories(work_);
    results_ = (work_ / "results.h5").string();
  }

  // Runs the binary with `args`; stdout and stderr are captured separately (through files, so a
  // chatty child can never block on a full pipe).
  Result Run(const std::vector<std::string>& args) {
    return cliphba::testing::RunBinary(CLIPHBA_BINARY, args, base_);
  }

  // `rsa behavior` on the given inputs, with --out results_, --json and --force (the tests rerun
  // into one results file; the refusal without --force: RsaBehaviorRefusesToReplaceItsResult),
  // plus `extra`.
  Result RunRsa(const std::string& embedding, const std::string& rdm, const std::string& names,
                std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"rsa",   "behavior", "--embedding", embedding,
                                     "--rdm", rdm,        "--rdm-names", names,
                                     "--out", results_,   "--json",      "--force"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  }

  // The failure contract: exit code, stderr naming every `needle`, nothing left behind.
  void ExpectFailure(const Result& r, int code, const std::vector<std::string>& needles) {
    EXPECT_EQ(r.code, code) << "stderr: " << r.err;
    for (const auto& n : needles)
      EXPECT_NE(r.err.find(n), std::string::npos) << "stderr lacks '" << n << "':\n" << r.err;
    EXPECT_TRUE(r.out.empty() || r.out.find('{') == std::string::npos)
        << "a failed run printed results: " << r.out;
    EXPECT_FALSE(fs::exists(results_)) << results_ << " was written by a failed run";
    ExpectNoPartial();
  }

  void ExpectNoPartial() {
    for (const auto& e : fs::recursive_directory_iterator(work_)) {
      const std::string p = e.path().string();
      EXPECT_FALSE(p.size() >= 8 && p.compare(p.size() - 8, 8, ".partial") == 0)
          << "left behind: " << p;
    }
  }

  std::string Work(const std::string& name) const { return (work_ / name).string(); }

  // Writes `t` (modified RDM48) as NPY and runs RSA on it with the real embedding and names.
  Result RunWithRdm(const at::Tensor& t, const std::string& file) {
    cliphba::io::WriteNpy(Work(file), t);
    return RunRsa(kEmbedding, Work(file), kRdmNames);
  }

  // The header and first 5 rows of the real embedding CSV (lines[3] is the 3rd data row).
  std::vector<std::string> SmallCsv() {
    std::vector<std::string> lines = ReadLines(kEmbedding);
    lines.resize(6);
    return lines;
  }

  fs::path base_, work_;
  std::string results_;
};

json ParseOneJson(const std::string& out) {
  // Exactly one JSON object (parse() refuses trailing garbage), on one line.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  return json::parse(out);
}

// ---------------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, VersionPrintsTextAndJson) {
  Result text = Run({"version"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("cliphba"), std::string::npos);
  EXPECT_NE(text.out.find("HDF5"), std::string::npos);

  Result r = Run({"version", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = ParseOneJson(r.out);
  for (const char* key : {"cliphba", "libtorch", "mpi", "hdf5"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_string()) << key;
    EXPECT_FALSE(j[key].get<std::string>().empty()) << key;
  }
  EXPECT_EQ(j["hdf5_parallel"], true);
  ASSERT_TRUE(j["blas"].is_array());
  EXPECT_FALSE(j["blas"].empty());
}

TEST_F(CliTest, RsaBehaviorThingsMatchesScipyReference) {
  // RDM48_triplet.npy is Fortran-order: RDM inputs deliberately accept that.
  ASSERT_TRUE(cliphba::io::ReadNpyHeader(kRdm, true).fortran_order);
  Result r = RunRsa(kEmbedding, kRdm, kRdmNames);
  ASSERT_EQ(r.code, 0) << r.err;
  json j = ParseOneJson(r.out);
  std::ifstream ref_in(std::string(CLIPHBA_TEST_DATA_DIR) + "/rsa_things_reference.json");
  json ref = json::parse(ref_in);

  EXPECT_EQ(j["n_objects"], 48);
  for (const char* metric : {"correlation", "cosine", "euclidean", "spose"}) {
    for (const char* cmp : {"pearson", "spearman", "kendall_tau_a", "cosine"}) {
      ASSERT_TRUE(j["rdm"][metric].contains(cmp)) << metric << "." << cmp;
      EXPECT_NEAR(j["rdm"][metric][cmp].get<double>(), ref["rdm"][metric][cmp].get<double>(), 1e-9)
          << metric << "." << cmp;
    }
  }
  EXPECT_NEAR(j["triplet_accuracy"].get<double>(), ref["triplet_accuracy"].get<double>(), 1e-9);
  EXPECT_EQ(j["n_triplets_tied"], ref["n_triplets_tied"]);
  EXPECT_EQ(j["n_triplets"], ref["n_triplets"]);
  EXPECT_EQ(j["out"], results_);
  EXPECT_TRUE(fs::is_regular_file(results_));
  EXPECT_GT(fs::file_size(results_), 0u);
  EXPECT_FALSE(fs::exists(results_ + ".partial"));
  ExpectNoPartial();
}

TEST_F(CliTest, RsaBehaviorSameResultFromFlagsConfigAndSet) {
  Result flags = RunRsa(kEmbedding, kRdm, kRdmNames);
  ASSERT_EQ(flags.code, 0) << flags.err;

  const std::string yaml = Work("rsa.yaml");
  WriteFile(yaml, "rsa:\n  behavior:\n    embedding: \"" + kEmbedding + "\"\n    rdm: \"" + kRdm +
                      "\"\n    rdm_names: \"" + kRdmNames + "\"\n    out: \"" + results_ + "\"\n");
  Result config = Run({"rsa", "behavior", "--config", yaml, "--json", "--force"});
  ASSERT_EQ(config.code, 0) << config.err;

  Result set = Run({"rsa", "behavior", "--set", "rsa.behavior.embedding=" + kEmbedding, "--set",
                    "rsa.behavior.rdm=" + kRdm, "--set", "rsa.behavior.rdm_names=" + kRdmNames,
                    "--set", "rsa.behavior.out=" + results_, "--json", "--force"});
  ASSERT_EQ(set.code, 0) << set.err;

  // Same resolved configuration, so the very same JSON (config_hash and out included).
  EXPECT_EQ(json::parse(flags.out), json::parse(config.out));
  EXPECT_EQ(json::parse(flags.out), json::parse(set.out));
  ExpectNoPartial();
}

TEST_F(CliTest, SynthThenRsaGivesPositiveSpearman) {
  const std::string dir = Work("synth");
  Result s = Run({"synth", "behavior", "--out-dir", dir, "--json"});
  ASSERT_EQ(s.code, 0) << s.err;
  json sj = ParseOneJson(s.out);
  EXPECT_EQ(sj["n_objects"], 48);
  for (const char* f :
       {"embedding.csv", "model_embedding.csv", "rdm.npy", "rdm_names.txt", "triplets.npy"})
    ASSERT_TRUE(fs::is_regular_file(fs::path(dir) / f)) << f;

  Result r = RunRsa(dir + "/model_embedding.csv", dir + "/rdm.npy", dir + "/rdm_names.txt",
                    {"--triplets", dir + "/triplets.npy"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = ParseOneJson(r.out);
  EXPECT_EQ(j["n_objects"], 48);
  for (const char* metric : {"correlation", "cosine", "euclidean", "spose"})
    EXPECT_GT(j["rdm"][metric]["spearman"].get<double>(), 0.0) << metric;
  ASSERT_TRUE(j.contains("listed_triplets"));
  EXPECT_GT(j["listed_triplets"]["n_triplets"].get<int64_t>(), 0);
  EXPECT_TRUE(fs::is_regular_file(results_));
  ExpectNoPartial();
}

TEST_F(CliTest, SynthIsDeterministicInItsSeed) {
  const std::string a = Work("a"), b = Work("b"), c = Work("c");
  ASSERT_EQ(Run({"synth", "behavior", "--out-dir", a, "--seed", "7"}).code, 0);
  ASSERT_EQ(Run({"synth", "behavior", "--out-dir", b, "--seed", "7"}).code, 0);
  ASSERT_EQ(Run({"synth", "behavior", "--out-dir", c, "--seed", "8"}).code, 0);
  int n_files = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    const fs::path name = e.path().filename();
    ++n_files;
    ASSERT_TRUE(fs::exists(fs::path(b) / name)) << name;
    EXPECT_EQ(ReadFile(e.path()), ReadFile(fs::path(b) / name)) << name << " differs, same seed";
  }
  EXPECT_GE(n_files, 5);
  for (const char* f : {"embedding.csv", "model_embedding.csv", "rdm.npy", "triplets.npy"})
    EXPECT_NE(ReadFile(fs::path(a) / f), ReadFile(fs::path(c) / f)) << f << " same, other seed";
}

TEST_F(CliTest, ConfigPrintsResolvedYaml) {
  Result r = Run({"config", "--set", "synth.behavior.seed=5"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("seed: 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rsa:"), std::string::npos) << r.out;
}

// ---------------------------------------------------------------------------------------------
// Configuration and command-line errors (exit 2)
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, MalformedYamlConfigIsUsageError) {
  const std::string yaml = Work("bad.yaml");
  WriteFile(yaml, "rsa:\n  behavior:\n    embedding: [unclosed\n    rdm: x\n");
  ExpectFailure(Run({"rsa", "behavior", "--config", yaml, "--out", results_}), kUsage,
                {yaml, "malformed YAML"});
}

TEST_F(CliTest, UnknownConfigKeySuggestsTheRightOne) {
  const std::string yaml = Work("typo.yaml");
  WriteFile(yaml, "rsa:\n  behavior:\n    embeding: \"" + kEmbedding + "\"\n");
  ExpectFailure(
      Run({"rsa", "behavior", "--config", yaml, "--out", results_}), kUsage,
      {yaml, "rsa.behavior.embeding", "unknown key", "did you mean", "'rsa.behavior.embedding'"});
  // The same through --set.
  ExpectFailure(RunRsa(kEmbedding, kRdm, kRdmNames, {"--set", "rsa.behavior.metrix=[cosine]"}),
                kUsage, {"--set", "rsa.behavior.metrix", "did you mean", "rsa.behavior.metrics"});
}

TEST_F(CliTest, WrongTypeInConfigIsUsageError) {
  const std::string yaml = Work("type.yaml");
  WriteFile(yaml, "runtime:\n  threads: many\n");
  ExpectFailure(RunRsa(kEmbedding, kRdm, kRdmNames, {"--config", yaml}), kUsage,
                {yaml, "runtime.threads", "expected an integer", "'many'"});
}

TEST_F(CliTest, NegativeSizeIsUsageError) {
  const std::string dir = Work("synth");
  Result r = Run({"synth", "behavior", "--out-dir", dir, "--set", "synth.behavior.n_objects=-1"});
  ExpectFailure(r, kUsage, {"synth.behavior.n_objects", "expected an integer in [3, 400]", "-1"});
  EXPECT_FALSE(fs::exists(dir)) << "a refused configuration created " << dir;
}

TEST_F(CliTest, MissingEmbeddingIsRequiredKeyError) {
  ExpectFailure(Run({"rsa", "behavior", "--rdm", kRdm, "--rdm-names", kRdmNames, "--out", results_,
                     "--json"}),
                kUsage, {"rsa.behavior.embedding", "is required", "--embedding"});
}

TEST_F(CliTest, UnknownSubcommandIsUsageError) {
  ExpectFailure(Run({"frobnicate"}), kUsage, {"frobnicate", "unknown command"});
  ExpectFailure(Run({"rsa", "brain"}), kUsage, {"brain", "unknown command"});
}

TEST_F(CliTest, UnknownFlagIsUsageError) {
  ExpectFailure(RunRsa(kEmbedding, kRdm, kRdmNames, {"--frobnicate"}), kUsage, {"--frobnicate"});
}

// ---------------------------------------------------------------------------------------------
// I/O errors (exit 3)
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, MissingEmbeddingFileIsIoError) {
  const std::string missing = Work("no_such_embedding.csv");
  ExpectFailure(RunRsa(missing, kRdm, kRdmNames), kIo, {missing, "cannot open"});
}

TEST_F(CliTest, MissingRdmFileIsIoError) {
  const std::string missing = Work("no_such_rdm.npy");
  ExpectFailure(RunRsa(kEmbedding, missing, kRdmNames), kIo, {missing, "cannot open"});
}

TEST_F(CliTest, MissingConfigFileIsRefused) {
  const std::string missing = Work("no_such.yaml");
  Result r = RunRsa(kEmbedding, kRdm, kRdmNames, {"--config", missing});
  EXPECT_EQ(r.code, kIo) << r.err;  // a missing input file is exit 3, --config included
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(results_));
  ExpectNoPartial();
}

TEST_F(CliTest, TrainRefusesAFolderWithAnEarlierRunUnlessAsked) {
  // The output policy: an earlier model or resume state is neither replaced nor dropped silently.
  for (const char* stage : {"behavior", "meg"}) {
    for (const char* file : {"best.safetensors", "last_state.json"}) {
      SCOPED_TRACE(std::string(stage) + " " + file);
      const std::string dir = Work(std::string("train_") + stage + "_" + file);
      fs::create_directories(dir);
      WriteFile(dir + "/" + file, "earlier run");
      Result r = Run({"train", stage, "--out-dir", dir});
      EXPECT_EQ(r.code, kUsage) << r.err;
      EXPECT_NE(r.err.find(dir + "/" + file + " exists"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
      std::ifstream in(dir + "/" + file);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "earlier run");
      // With --force the check passes (the run then stops at the missing inputs, exit 2 too).
      Result forced = Run({"train", stage, "--out-dir", dir, "--force"});
      EXPECT_EQ(forced.err.find(" exists ("), std::string::npos) << forced.err;
    }
  }
}

TEST_F(CliTest, OutInMissingDirectoryIsIoErrorAndWritesNothing) {
  const std::string dir = Work("no_such_dir");
  const std::string out = dir + "/results.h5";
  Result r = Run({"rsa", "behavior", "--embedding", kEmbedding, "--rdm", kRdm, "--rdm-names",
                  kRdmNames, "--out", out, "--json"});
  ExpectFailure(r, kIo, {out});
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

// ---------------------------------------------------------------------------------------------
// Malformed NPY inputs (exit 4)
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, TripletsInFortranOrderAreReadLikeCOrder) {
  // One NPY policy: a column-major file (what numpy writes for any F-contiguous array) gives the
  // same results as the same rows stored row-major.
  std::string fortran, c_order;
  for (int col = 0; col < 3; ++col)
    for (int64_t row = 0; row < 10; ++row) {
      const int64_t v = row + col;  // (row, row+1, row+2): distinct, < 48
      fortran.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
  for (int64_t row = 0; row < 10; ++row)
    for (int col = 0; col < 3; ++col) {
      const int64_t v = row + col;
      c_order.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
  const std::string tf = Work("triplets_fortran.npy"), tc = Work("triplets_c.npy");
  WriteFile(tf, RawNpy("{'descr': '<i8', 'fortran_order': True, 'shape': (10, 3), }", fortran));
  WriteFile(tc, RawNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (10, 3), }", c_order));
  Result rf = RunRsa(kEmbedding, kRdm, kRdmNames, {"--triplets", tf});
  ASSERT_EQ(rf.code, 0) << rf.err;
  fs::remove(results_);
  Result rc = RunRsa(kEmbedding, kRdm, kRdmNames, {"--triplets", tc});
  ASSERT_EQ(rc.code, 0) << rc.err;
  json jf = ParseOneJson(rf.out), jc = ParseOneJson(rc.out);
  for (const char* k : {"out", "config_hash"}) {  // both name the triplets file
    jf.erase(k);
    jc.erase(k);
  }
  EXPECT_EQ(jf.dump(), jc.dump());
}

TEST_F(CliTest, BigEndianRdmIsRefused) {
  at::Tensor rdm = Rdm48();
  std::string data(reinterpret_cast<const char*>(rdm.data_ptr<double>()), 48 * 48 * 8);
  for (size_t i = 0; i < data.size(); i += 8) std::reverse(data.begin() + i, data.begin() + i + 8);
  const std::string file = Work("rdm_big_endian.npy");
  WriteFile(file, RawNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (48, 48), }", data));
  ExpectFailure(RunRsa(kEmbedding, file, kRdmNames), kData, {file, "big-endian", "'>f8'"});
}

TEST_F(CliTest, ObjectDtypeRdmIsRefused) {
  const std::string file = Work("rdm_object.npy");
  WriteFile(file, RawNpy("{'descr': '|O', 'fortran_order': False, 'shape': (48, 48), }",
                         std::string(48 * 48 * 8, '\0')));
  ExpectFailure(RunRsa(kEmbedding, file, kRdmNames), kData, {file, "object arrays"});
}

TEST_F(CliTest, TruncatedNpyIsRefused) {
  const std::string bytes = ReadFile(kRdm);
  const std::string file = Work("rdm_truncated.npy");
  WriteFile(file, bytes.substr(0, bytes.size() - 100));
  ExpectFailure(RunRsa(kEmbedding, file, kRdmNames), kData, {file, "truncated"});
}

TEST_F(CliTest, NpyHeaderLyingAboutSizeIsRefused) {
  const std::string file = Work("rdm_trailing.npy");
  WriteFile(file, ReadFile(kRdm) + std::string(16, '\0'));
  ExpectFailure(RunRsa(kEmbedding, file, kRdmNames), kData,
                {file, "16 bytes after the data", "header lies about the size"});
}

// ---------------------------------------------------------------------------------------------
// Malformed embedding CSV (exit 4); the bad row is line 4 of the file
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, CsvRowWithMissingColumnIsRefused) {
  std::vector<std::string> lines = SmallCsv();
  std::vector<std::string> f = SplitComma(lines[3]);
  f.pop_back();
  lines[3] = JoinComma(f);
  const std::string csv = Work("missing_column.csv");
  WriteFile(csv, JoinLines(lines));
  ExpectFailure(RunRsa(csv, kRdm, kRdmNames), kData,
                {csv + ":4", "expected 68 fields", "found 67"});
}

TEST_F(CliTest, CsvNonNumericCellIsRefused) {
  std::vector<std::string> lines = SmallCsv();
  std::vector<std::string> f = SplitComma(lines[3]);
  f[5] = "abc";
  lines[3] = JoinComma(f);
  const std::string csv = Work("non_numeric.csv");
  WriteFile(csv, JoinLines(lines));
  ExpectFailure(RunRsa(csv, kRdm, kRdmNames), kData,
                {csv + ":4", "column 6", "'abc'", "expected a number"});
}

TEST_F(CliTest, CsvNanCellIsRefused) {
  std::vector<std::string> lines = SmallCsv();
  std::vector<std::string> f = SplitComma(lines[3]);
  f[10] = "nan";
  lines[3] = JoinComma(f);
  const std::string csv = Work("nan_cell.csv");
  WriteFile(csv, JoinLines(lines));
  ExpectFailure(RunRsa(csv, kRdm, kRdmNames), kData, {csv + ":4", "column 11", "non-finite"});
}

TEST_F(CliTest, CsvDuplicateImageNameIsRefused) {
  std::vector<std::string> lines = SmallCsv();
  std::vector<std::string> f2 = SplitComma(lines[2]), f4 = SplitComma(lines[4]);
  f4[1] = f2[1];
  lines[4] = JoinComma(f4);
  const std::string csv = Work("duplicate.csv");
  WriteFile(csv, JoinLines(lines));
  ExpectFailure(RunRsa(csv, kRdm, kRdmNames), kData, {csv, "duplicate image name", f2[1]});
}

// ---------------------------------------------------------------------------------------------
// RDM contract violations (exit 4)
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, NonSquareRdmIsRefused) {
  const std::string file = Work("rdm_48x47.npy");
  ExpectFailure(RunWithRdm(Rdm48().narrow(1, 0, 47).contiguous(), "rdm_48x47.npy"), kData,
                {file, "expected a square RDM", "48 x 47"});
}

TEST_F(CliTest, AsymmetricRdmIsRefused) {
  at::Tensor rdm = Rdm48();
  rdm[3][7] = rdm[3][7].item<double>() + 0.01;
  ExpectFailure(RunWithRdm(rdm, "rdm_asym.npy"), kData,
                {Work("rdm_asym.npy"), "not symmetric", "[3, 7]"});
}

TEST_F(CliTest, RdmWithNonZeroDiagonalIsRefused) {
  at::Tensor rdm = Rdm48();
  rdm[5][5] = 0.25;
  ExpectFailure(RunWithRdm(rdm, "rdm_diag.npy"), kData,
                {Work("rdm_diag.npy"), "diagonal must be zero", "[5, 5]"});
}

TEST_F(CliTest, RdmWithNanIsRefused) {
  at::Tensor rdm = Rdm48();
  rdm[2][9] = std::numeric_limits<double>::quiet_NaN();
  rdm[9][2] = std::numeric_limits<double>::quiet_NaN();
  ExpectFailure(RunWithRdm(rdm, "rdm_nan.npy"), kData,
                {Work("rdm_nan.npy"), "[2, 9]", "is NaN", "never replaces"});
}

TEST_F(CliTest, RdmWithInfIsRefused) {
  at::Tensor rdm = Rdm48();
  rdm[4][1] = std::numeric_limits<double>::infinity();
  rdm[1][4] = std::numeric_limits<double>::infinity();
  ExpectFailure(RunWithRdm(rdm, "rdm_inf.npy"), kData, {Work("rdm_inf.npy"), "[1, 4]", "is Inf"});
}

TEST_F(CliTest, RdmNamesMissingFromEmbeddingAreListed) {
  std::vector<std::string> names = ReadLines(kRdmNames);
  ASSERT_GE(names.size(), 48u);
  names[0] = "notathing_01b.jpg";
  names[7] = "notathing_02b.jpg";
  const std::string file = Work("names_missing.txt");
  WriteFile(file, JoinLines(names));
  ExpectFailure(
      RunRsa(kEmbedding, kRdm, file), kData,
      {file, kEmbedding, "2 of 48", "missing from", "'notathing_01b.jpg'", "'notathing_02b.jpg'"});
}

TEST_F(CliTest, RdmNamesCountDifferentFromRdmSizeIsRefused) {
  std::vector<std::string> names = ReadLines(kRdmNames);
  names.resize(47);
  const std::string file = Work("names_47.txt");
  WriteFile(file, JoinLines(names));
  ExpectFailure(RunRsa(kEmbedding, kRdm, file), kData,
                {kRdm, file, "one row per name", "47 x 47", "48 x 48"});
}

TEST_F(CliTest, TripletIndexOutOfRangeIsRefused) {
  at::Tensor t = at::tensor({0, 1, 2, 3, 4, 48}, at::kLong).reshape({2, 3});
  const std::string file = Work("triplets_range.npy");
  cliphba::io::WriteNpy(file, t);
  ExpectFailure(RunRsa(kEmbedding, kRdm, kRdmNames, {"--triplets", file}), kData,
                {file, "row 1", "outside [0, 48)", kRdmNames});
}

TEST_F(CliTest, TripletRepeatingAnObjectIsRefused) {
  at::Tensor t = at::tensor({0, 1, 2, 5, 6, 5}, at::kLong).reshape({2, 3});
  const std::string file = Work("triplets_repeat.npy");
  cliphba::io::WriteNpy(file, t);
  ExpectFailure(RunRsa(kEmbedding, kRdm, kRdmNames, {"--triplets", file}), kData,
                {file, "row 1", "repeats an object"});
}

// ---------------------------------------------------------------------------------------------
// A failed run never touches an existing complete results file
// ---------------------------------------------------------------------------------------------

TEST_F(CliTest, RsaBehaviorRefusesToReplaceItsResult) {
  Result ok = RunRsa(kEmbedding, kRdm, kRdmNames);
  ASSERT_EQ(ok.code, 0) << ok.err;
  const std::string before = ReadFile(results_);
  const std::vector<std::string> plain = {"rsa", "behavior",    "--embedding", kEmbedding, "--rdm",
                                          kRdm,  "--rdm-names", kRdmNames,     "--out"};
  auto run_to = [&](const std::string& out) {
    std::vector<std::string> args = plain;
    args.push_back(out);
    return Run(args);
  };
  Result again = run_to(results_);  // no --force
  EXPECT_EQ(again.code, kUsage) << again.err;
  EXPECT_NE(again.err.find(results_ + " exists"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(ReadFile(results_), before);
  // An output that is an input is refused even with --force; the input stays as it was.
  const std::string names_copy = Work("names_copy.txt");
  WriteFile(names_copy, ReadFile(kRdmNames));
  Result onto = Run({"rsa", "behavior", "--embedding", kEmbedding, "--rdm", kRdm, "--rdm-names",
                     names_copy, "--out", names_copy, "--force"});
  EXPECT_EQ(onto.code, kUsage) << onto.err;
  EXPECT_NE(onto.err.find("is the input"), std::string::npos) << onto.err;
  EXPECT_EQ(ReadFile(names_copy), ReadFile(kRdmNames));
}

TEST_F(CliTest, ExistingResultsFileSurvivesFailedRun) {
  Result ok = RunRsa(kEmbedding, kRdm, kRdmNames);
  ASSERT_EQ(ok.code, 0) << ok.err;
  const std::string before = ReadFile(results_);
  ASSERT_FALSE(before.empty());

  at::Tensor rdm = Rdm48();
  rdm[0][1] = std::numeric_limits<double>::quiet_NaN();
  cliphba::io::WriteNpy(Work("rdm_nan.npy"), rdm);
  Result bad = RunRsa(kEmbedding, Work("rdm_nan.npy"), kRdmNames);
  EXPECT_EQ(bad.code, kData) << bad.err;
  EXPECT_EQ(ReadFile(results_), before) << results_ << " changed by a failed run";

  const std::string missing_triplets = Work("no_such_triplets.npy");
  Result bad_io = RunRsa(kEmbedding, kRdm, kRdmNames, {"--triplets", missing_triplets});
  EXPECT_EQ(bad_io.code, kIo) << bad_io.err;
  EXPECT_NE(bad_io.err.find(missing_triplets), std::string::npos) << bad_io.err;
  EXPECT_EQ(ReadFile(results_), before) << results_ << " changed by a failed run";
  ExpectNoPartial();
}

}  // namespace
