// `cliphba encode` and `cliphba tokenize` end to end on the reference fixtures
// (../shared/fixtures/clip): the real binary, every checkpoint format, fixture tolerances
// (atol 1e-5, rtol 1e-4), and bad inputs.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/npy.h"

namespace {

const std::string kFix = std::string(CLIPHBA_SHARED_DIR) + "/fixtures/clip/";
const std::string kVocab =
    std::string(CLIPHBA_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";

// Runs a shell command line; returns the exit code; stdout+stderr go to `log`.
int RunCli(const std::string& cmd, const std::string& log) {
  int status = std::system((cmd + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Out(const std::string& name) {
  std::string dir = std::string(CLIPHBA_TEST_OUT_DIR) + "/encode/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void ExpectClose(const std::string& got_path, const std::string& want_path) {
  at::Tensor got = cliphba::io::ReadNpy(got_path), want = cliphba::io::ReadNpy(want_path);
  ASSERT_EQ(got.sizes(), want.sizes()) << got_path;
  double max_diff = (got - want).abs().max().item<double>();
  std::printf("[ %s ] max|diff| = %.3g\n", std::filesystem::path(got_path).filename().c_str(),
              max_diff);
  EXPECT_TRUE(at::allclose(got, want, /*rtol=*/1e-4, /*atol=*/1e-5)) << got_path;
}

TEST(EncodeCliTest, EveryCheckpointFormatReproducesTheReferenceFeatures) {
  for (const char* file :
       {"tiny_clip_vit.safetensors", "tiny_clip_vit_jit.pt", "tiny_clip_vit_state_dict.pt",
        "tiny_clip_vit_state_dict_ordereddict.pt"}) {
    SCOPED_TRACE(file);
    const std::string out = Out(file);
    int rc = RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix + "model/" + file +
                        " --images-npy " + kFix + "model/images.npy --prompts " + kFix +
                        "prompts66.json --vocab " + kVocab + " --vocab-remap tiny --out " + out,
                    out + "/log");
    ASSERT_EQ(rc, 0) << Slurp(out + "/log");
    ExpectClose(out + "/image_features.npy", kFix + "model/image_features.npy");
    ExpectClose(out + "/text_features.npy", kFix + "model/text_features.npy");
    ExpectClose(out + "/hba_logits.npy", kFix + "model/hba_logits.npy");
    ExpectClose(out + "/block_cls_proj.npy", kFix + "model/layer_cls_proj.npy");
  }
}

// A new --out folder appears by one rename of a complete staging folder; nothing else is left.
TEST(EncodeCliTest, ANewOutputFolderAppearsComplete) {
  const std::string parent = Out("staged");
  const std::string out = parent + "/features";
  int rc = RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                      "model/tiny_clip_vit.safetensors --images-npy " + kFix +
                      "model/images.npy --out " + out,
                  parent + "/log");
  ASSERT_EQ(rc, 0) << Slurp(parent + "/log");
  EXPECT_TRUE(std::filesystem::exists(out + "/image_features.npy"));
  EXPECT_TRUE(std::filesystem::exists(out + "/block_cls_proj.npy"));
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::directory_iterator(parent))
    entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"features", "log"})) << "a staging folder was left";
}

TEST(EncodeCliTest, ImageFolderAndBadInputs) {
  const std::string out = Out("folder");
  const std::string images = std::string(CLIPHBA_TEST_DATA_DIR) + "/image_reference";
  ASSERT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images " + images + " --out " + out,
                   out + "/log"),
            0)
      << Slurp(out + "/log");
  EXPECT_EQ(cliphba::io::ReadNpy(out + "/image_features.npy").size(0), 2);  // photo.jpg, photo.png
  EXPECT_EQ(Slurp(out + "/image_names.txt"), "photo.jpg\nphoto.png\n");
  // A second encode into the same folder: refused without --force (files kept); with --force an
  // --images-npy run replaces the files and removes the stale image_names.txt of the first run.
  const std::string before = Slurp(out + "/image_features.npy");
  EXPECT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images " + images + " --out " + out,
                   out + "/log_again"),
            2);
  EXPECT_NE(Slurp(out + "/log_again").find("holds an earlier encode"), std::string::npos);
  EXPECT_EQ(Slurp(out + "/image_features.npy"), before);
  ASSERT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images-npy " + kFix +
                       "model/images.npy --out " + out + " --force",
                   out + "/log_forced"),
            0)
      << Slurp(out + "/log_forced");
  EXPECT_FALSE(std::filesystem::exists(out + "/image_names.txt")) << "a stale file was left";
  EXPECT_NE(Slurp(out + "/image_features.npy"), before);
  // Prompts without --vocab-remap on the 4096-token fixture: a clear error, exit 4.
  EXPECT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images-npy " + kFix +
                       "model/images.npy --prompts " + kFix + "prompts66.json --vocab " + kVocab +
                       " --out " + out + "/x",
                   out + "/log2"),
            4);
  EXPECT_NE(Slurp(out + "/log2").find("--vocab-remap tiny"), std::string::npos);
  // Images of the wrong size for the checkpoint; a missing checkpoint.
  EXPECT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images-npy " + kFix +
                       "model/text_input_ids.npy --out " + out + "/y",
                   out + "/log3"),
            4);
  EXPECT_EQ(RunCli(std::string(CLIPHBA_BINARY) +
                       " encode --checkpoint /nonexistent.safetensors "
                       "--images " +
                       images + " --out " + out + "/z",
                   out + "/log4"),
            3);
  EXPECT_NE(Slurp(out + "/log4").find("/nonexistent.safetensors"), std::string::npos);
  // NaN pixels: refused (exit 4) naming the file and the first bad image; nothing written.
  at::Tensor fine = cliphba::io::ReadNpy(kFix + "model/images.npy").clone();
  fine[1][0][2][3] = std::nan("");
  const std::string nan_npy = out + "/nan_images.npy";
  cliphba::io::WriteNpy(nan_npy, fine);
  EXPECT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                       "model/tiny_clip_vit.safetensors --images-npy " + nan_npy + " --out " + out +
                       "/nan",
                   out + "/log5"),
            4);
  EXPECT_NE(Slurp(out + "/log5").find(nan_npy + ": image 1 "), std::string::npos)
      << Slurp(out + "/log5");
  EXPECT_FALSE(std::filesystem::exists(out + "/nan/image_features.npy"));
  // --out naming a file: a usage error before any work (it was exit 1, "internal error").
  std::ofstream(out + "/a_file") << "x";
  EXPECT_EQ(
      RunCli(std::string(CLIPHBA_BINARY) + " encode --checkpoint " + kFix +
                 "model/tiny_clip_vit.safetensors --images " + images + " --out " + out + "/a_file",
             out + "/log6"),
      2);
  EXPECT_NE(Slurp(out + "/log6").find(out + "/a_file is a file"), std::string::npos)
      << Slurp(out + "/log6");
}

TEST(TokenizeCliTest, JsonIdsEqualTheReference) {
  const std::string out = Out("tokenize");
  nlohmann::json ref = nlohmann::json::parse(Slurp(kFix + "tokenizer_reference.json"));
  std::ofstream(out + "/texts.txt") << "metallic; artificial\n";
  ASSERT_EQ(RunCli(std::string(CLIPHBA_BINARY) + " tokenize --json --vocab " + kVocab + " < " +
                       out + "/texts.txt",
                   out + "/ids.json"),
            0);
  nlohmann::json got = nlohmann::json::parse(Slurp(out + "/ids.json"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], ref["metallic; artificial"]);
}

}  // namespace
