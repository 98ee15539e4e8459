#include "fixture_cases.h"
#include "model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace cliphba::model {
namespace {

namespace fs = std::filesystem;

const std::string kModelDir = cliphba::testing::SharedDir() + "/fixtures/clip/model/";
const std::string kJit = kModelDir + "tiny_clip_vit_jit.pt";
const std::string kPlain = kModelDir + "tiny_clip_vit_state_dict.pt";
const std::string kOrdered = kModelDir + "tiny_clip_vit_state_dict_ordereddict.pt";
const std::string kSafe = kModelDir + "tiny_clip_vit.safetensors";

std::string OutPath(const std::string& name) {
  fs::create_directories(CLIPHBA_TEST_OUT_DIR);
  return std::string(CLIPHBA_TEST_OUT_DIR) + "/" + name;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Expects `fn` to throw ErrorT whose message contains the file path and every one of `needles`.
template <typename ErrorT, typename Fn>
void ExpectError(Fn fn, const std::string& path, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception for " << path;
  } catch (const ErrorT& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for " << path << ": " << e.what();
  }
}

// safetensors bytes from a header string (padded here) and a data section.
std::string Safetensors(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

// Minimal protocol-2 pickle writer for crafting torch.save archives.
class Pickle {
 public:
  Pickle() { b_ += "\x80\x02"; }
  Pickle& Op(char c) { return b_ += c, *this; }
  Pickle& Str(const std::string& s) {
    b_ += 'X';
    const uint32_t n = static_cast<uint32_t>(s.size());
    b_.append(reinterpret_cast<const char*>(&n), 4);
    return b_ += s, *this;
  }
  Pickle& Int(uint8_t v) { return b_ += 'K', b_ += static_cast<char>(v), *this; }
  Pickle& Global(const std::string& module, const std::string& name) {
    return b_ += 'c' + module + '\n' + name + '\n', *this;
  }
  // A 1-D float tensor of `n` elements backed by storage record data/<key>.
  Pickle& Tensor(const std::string& key, uint8_t n) {
    Global("torch._utils", "_rebuild_tensor_v2").Op('(');
    Op('(').Str("storage").Global("torch", "FloatStorage").Str(key).Str("cpu").Int(n).Op('t');
    Op('Q').Int(0).Int(n).Op('\x85').Int(1).Op('\x85').Op('\x89');
    Global("collections", "OrderedDict").Op(')').Op('R');
    return Op('t').Op('R');
  }
  const std::string& bytes() const { return b_; }

 private:
  std::string b_;
};

// A torch.save-style zip (archive folder, data.pkl, data/<key>, version) via libtorch's writer.
void WriteTorchZip(const std::string& path, const std::string& pkl,
                   const std::vector<std::pair<std::string, std::vector<float>>>& storages) {
  caffe2::serialize::PyTorchStreamWriter w(path);
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (const auto& [key, v] : storages)
    w.writeRecord("data/" + key, v.data(), v.size() * sizeof(float));
  w.writeEndOfFile();
}

class CheckpointFixture : public ::testing::Test {
 protected:
  // Read in SetUp: a failure there fails the test (a failing SetUpTestSuite shows as "skipped").
  void SetUp() override {
    if (!keys_.is_null()) return;
    keys_ = ReadJson(kModelDir + "state_dict_keys.json");
    summary_ = ReadJson(kModelDir + "expected_summary.json");
  }
  static nlohmann::json keys_, summary_;
};
nlohmann::json CheckpointFixture::keys_;
nlohmann::json CheckpointFixture::summary_;

TEST_F(CheckpointFixture, DetectFormatOfEveryFixture) {
  EXPECT_EQ(DetectFormat(kJit), CheckpointFormat::kTorchScript);
  EXPECT_EQ(DetectFormat(kPlain), CheckpointFormat::kTorchZip);
  EXPECT_EQ(DetectFormat(kOrdered), CheckpointFormat::kTorchZip);
  EXPECT_EQ(DetectFormat(kSafe), CheckpointFormat::kSafetensors);
}

TEST_F(CheckpointFixture, AllFormatsLoadTheSame65Tensors) {
  const StateDict ref = LoadCheckpoint(kSafe);
  ASSERT_EQ(keys_.size(), 65u);
  for (const std::string& path : {kSafe, kPlain, kOrdered, kJit}) {
    SCOPED_TRACE(path);
    const StateDict sd = LoadCheckpoint(path);
    EXPECT_EQ(sd.code_bearing, path == kJit);
    ASSERT_EQ(sd.entries.size(), 65u);
    for (size_t i = 0; i < sd.entries.size(); ++i) {
      const auto& [name, t] = sd.entries[i];
      const auto& k = keys_[i];
      ASSERT_EQ(name, k[0].get<std::string>()) << "position " << i;
      EXPECT_EQ(t.scalar_type(), k[1] == "int64" ? at::kLong : at::kFloat) << name;
      EXPECT_EQ(t.sizes().vec(), k[2].get<std::vector<int64_t>>()) << name;
      EXPECT_TRUE(t.is_contiguous()) << name;
      // Bit-equal across formats (all values are fp16-representable floats or int64).
      EXPECT_TRUE(at::equal(t, ref.entries[i].second)) << name;
    }
  }
}

TEST_F(CheckpointFixture, SpotValuesMatchExpectedSummary) {
  const auto& sanity = summary_["model"]["sanity"];
  for (const std::string& path : {kSafe, kOrdered, kJit}) {
    SCOPED_TRACE(path);
    const StateDict sd = LoadCheckpoint(path);
    const at::Tensor* conv = sd.Find("visual.conv1.weight");
    const at::Tensor* tok = sd.Find("token_embedding.weight");
    ASSERT_NE(conv, nullptr);
    ASSERT_NE(tok, nullptr);
    EXPECT_NEAR(conv->to(at::kDouble).sum().item<double>(),
                sanity["visual_conv1_weight_sum"].get<double>(), 1e-9);
    EXPECT_NEAR(tok->to(at::kDouble).sum().item<double>(),
                sanity["token_embedding_weight_sum"].get<double>(), 1e-9);
    EXPECT_EQ(sd.Find("logit_scale")->item<float>(), summary_["model"]["logit_scale"].get<float>());
    EXPECT_EQ(sd.Find("input_resolution")->item<int64_t>(), 32);
    EXPECT_EQ(sd.Find("context_length")->item<int64_t>(), 77);
    EXPECT_EQ(sd.Find("vocab_size")->item<int64_t>(), 4096);
    EXPECT_EQ(sd.Find("no.such.key"), nullptr);
  }
}

TEST_F(CheckpointFixture, SaveSafetensorsRoundTrip) {
  const StateDict src = LoadCheckpoint(kOrdered);
  const std::string path = OutPath("roundtrip.safetensors");
  SaveSafetensors(path, src, {{"format", "pt"}, {"writer", "cliphba"}});
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(DetectFormat(path), CheckpointFormat::kSafetensors);
  const StateDict back = LoadCheckpoint(path);
  ASSERT_EQ(back.entries.size(), src.entries.size());
  for (size_t i = 0; i < src.entries.size(); ++i) {
    EXPECT_EQ(back.entries[i].first, src.entries[i].first);
    EXPECT_TRUE(at::equal(back.entries[i].second, src.entries[i].second));
  }
  // Header: 8-byte aligned, metadata kept, same data size as the fixture (same tensors).
  const std::string bytes = ReadAll(path);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(hlen % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, hlen));
  EXPECT_EQ(header["__metadata__"]["writer"], "cliphba");
  EXPECT_EQ(header["input_resolution"]["dtype"], "I64");
  EXPECT_EQ(header["visual.conv1.weight"]["dtype"], "F32");
  uint64_t fixture_hlen = 0;
  const std::string fixture = ReadAll(kSafe);
  std::memcpy(&fixture_hlen, fixture.data(), 8);
  EXPECT_EQ(bytes.size() - 8 - hlen, fixture.size() - 8 - fixture_hlen);

  StateDict bad;
  bad.entries.emplace_back("h", at::zeros({2}, at::kHalf));
  ExpectError<DataError>([&] { SaveSafetensors(OutPath("bad.safetensors"), bad); },
                         OutPath("bad.safetensors"), {"'h'", "Half"});
}

TEST_F(CheckpointFixture, CheckKeysReportsEverythingAtOnce) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& k : keys_)
    expected.emplace_back(k[0].get<std::string>(), k[2].get<std::vector<int64_t>>());
  StateDict sd = LoadCheckpoint(kSafe);
  EXPECT_NO_THROW(CheckKeys(sd, expected, kSafe));

  // The 3 scalar buffers are ignored on both sides.
  StateDict no_scalars;
  for (const auto& e : sd.entries)
    if (!IsIgnoredScalarBuffer(e.first)) no_scalars.entries.push_back(e);
  EXPECT_NO_THROW(CheckKeys(no_scalars, expected, kSafe));

  sd.entries.erase(sd.entries.begin());                     // positional_embedding missing
  sd.entries.emplace_back("extra.weight", at::zeros({1}));  // unexpected
  for (auto& [name, t] : sd.entries)
    if (name == "ln_final.bias") t = at::zeros({63});  // mis-shaped
  ExpectError<DataError>([&] { CheckKeys(sd, expected, kSafe); }, kSafe,
                         {"missing: positional_embedding", "unexpected: extra.weight",
                          "ln_final.bias (expected [64], got [63])"});
}

TEST(CheckpointErrors, MissingAndUnrecognizedFiles) {
  const std::string missing = OutPath("does_not_exist.pt");
  ExpectError<IoError>([&] { LoadCheckpoint(missing); }, missing, {});
  const std::string junk = OutPath("junk.bin");
  WriteAll(junk, "hello world, not a checkpoint");
  ExpectError<DataError>([&] { LoadCheckpoint(junk); }, junk, {"unrecognized"});
  const std::string legacy = OutPath("legacy.pt");
  WriteAll(legacy, std::string("\x80\x02}.", 4));
  ExpectError<DataError>([&] { LoadCheckpoint(legacy); }, legacy, {"legacy"});
}

TEST(CheckpointErrors, TruncatedZip) {
  const std::string bytes = ReadAll(kOrdered);
  const std::string path = OutPath("truncated.pt");
  WriteAll(path, bytes.substr(0, bytes.size() / 2));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"truncated"});
}

TEST(CheckpointErrors, TruncatedSafetensors) {
  const std::string bytes = ReadAll(kSafe);
  const std::string path = OutPath("truncated.safetensors");
  WriteAll(path, bytes.substr(0, bytes.size() - 100));
  // The last tensor in file order is ln_final.bias.
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"ln_final.bias", "truncated"});
}

TEST(CheckpointErrors, HeaderLengthLargerThanFile) {
  const std::string path = OutPath("hugeheader.safetensors");
  uint64_t n = 1u << 20;
  WriteAll(path, std::string(reinterpret_cast<const char*>(&n), 8) + "{\"a\": 1}");
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"header length 1048576"});
}

TEST(CheckpointErrors, BadJsonHeader) {
  const std::string path = OutPath("badjson.safetensors");
  WriteAll(path, Safetensors("{\"a\": {\"dtype\": \"F32\",", ""));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"not valid JSON"});
  WriteAll(path, Safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", ""));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"'a'", "data_offsets"});
}

TEST(CheckpointErrors, UnknownDtype) {
  const std::string path = OutPath("f64.safetensors");
  WriteAll(path, Safetensors(R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})",
                             std::string(8, '\0')));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"'w'", "F64"});
}

TEST(CheckpointErrors, OverlappingAndInconsistentOffsets) {
  const std::string path = OutPath("overlap.safetensors");
  WriteAll(path, Safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                             std::string(12, '\0')));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"'b'", "overlaps", "'a'"});
  WriteAll(path, Safetensors(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
                             std::string(8, '\0')));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"'a'", "need 12"});
  WriteAll(path, Safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                             std::string(8, '\0')));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"gap", "'a'"});
  WriteAll(path, Safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                             std::string(8, '\0')));
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"trailing"});
}

TEST(CheckpointErrors, SafetensorsHalfAndBFloat16BecomeFloat32) {
  const std::string path = OutPath("half.safetensors");
  // 1.5 as fp16 = 0x3E00, as bf16 = 0x3FC0; metadata is ignored.
  const std::string data("\x00\x3e\x00\x3e\xc0\x3f", 6);
  WriteAll(path, Safetensors(R"({"__metadata__": {"x": "y"},)"
                             R"( "h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},)"
                             R"( "b": {"dtype": "BF16", "shape": [], "data_offsets": [4, 6]}})",
                             data));
  const StateDict sd = LoadCheckpoint(path);
  ASSERT_EQ(sd.entries.size(), 2u);
  EXPECT_EQ(sd.entries[0].first, "h");
  EXPECT_TRUE(at::equal(sd.entries[0].second, at::full({2}, 1.5f)));
  EXPECT_EQ(sd.entries[1].second.scalar_type(), at::kFloat);
  EXPECT_EQ(sd.entries[1].second.item<float>(), 1.5f);
}

TEST(CheckpointErrors, ForbiddenGlobalIsRefusedWithoutExecution) {
  const std::string marker = OutPath("pwned_marker");
  fs::remove(marker);
  Pickle p;
  p.Global("os", "system").Op('(').Str("touch " + marker).Op('t').Op('R').Op('.');
  const std::string path = OutPath("evil.pt");
  WriteTorchZip(path, p.bytes(), {});
  EXPECT_EQ(DetectFormat(path), CheckpointFormat::kTorchZip);
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"forbidden global 'os.system'"});
  EXPECT_FALSE(fs::exists(marker));

  // A global hidden inside an otherwise valid state dict, via STACK_GLOBAL (protocol 4).
  Pickle q;
  q.Op('}').Op('(').Str("w").Tensor("0", 2).Str("x").Str("builtins").Str("eval");
  q.Op('\x93').Op('u').Op('.');
  WriteTorchZip(path, q.bytes(), {{"0", {1.f, 2.f}}});
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"'builtins.eval'"});

  // Opcodes that instantiate classes (INST, OBJ, NEWOBJ) are not understood at all.
  Pickle r;
  r.Op('}').Op('\x81').Op('.');
  WriteTorchZip(path, r.bytes(), {});
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path, {"unsupported pickle opcode 0x81"});
}

TEST(CheckpointErrors, ModulePrefixIsStripped) {
  for (bool ordered : {false, true}) {
    SCOPED_TRACE(ordered ? "OrderedDict" : "dict");
    Pickle p;
    if (ordered) {
      p.Global("collections", "OrderedDict").Op(')').Op('R');
    } else {
      p.Op('}');
    }
    p.Op('(').Str("module.b.weight").Tensor("0", 2).Str("module.a").Tensor("1", 3).Op('u');
    if (ordered) p.Op('}').Str("_metadata").Op('}').Op('s').Op('b');  // attribute state
    p.Op('.');
    const std::string path = OutPath(ordered ? "dp_ordered.pt" : "dp_plain.pt");
    WriteTorchZip(path, p.bytes(), {{"0", {1.f, 2.f}}, {"1", {3.f, 4.f, 5.f}}});
    const StateDict sd = LoadCheckpoint(path);
    EXPECT_FALSE(sd.code_bearing);
    ASSERT_EQ(sd.entries.size(), 2u);
    EXPECT_EQ(sd.entries[0].first, "b.weight");
    EXPECT_EQ(sd.entries[1].first, "a");
    EXPECT_TRUE(at::equal(sd.entries[1].second, at::tensor({3.f, 4.f, 5.f})));
    ASSERT_NE(sd.Find("b.weight"), nullptr);
  }
}

TEST(CheckpointErrors, StorageRecordOfWrongSize) {
  Pickle p;
  p.Op('}').Op('(').Str("w").Tensor("0", 4).Op('u').Op('.');
  const std::string path = OutPath("shortstorage.pt");
  WriteTorchZip(path, p.bytes(), {{"0", {1.f, 2.f}}});
  ExpectError<DataError>([&] { LoadCheckpoint(path); }, path,
                         {"data/0", "has 8 bytes", "4 Float elements needs 16"});
}

}  // namespace
}  // namespace cliphba::model
