// SHA-256 of files (OpenSSL) against published test vectors, and the check of known OpenAI
// checkpoint names: a mismatch warns, or refuses under strict; other names are not hashed.
#include "model/known_checkpoints.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/hash.h"

namespace cliphba::model {
namespace {

std::string Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

const std::string kDir = std::string(CLIPHBA_TEST_OUT_DIR) + "/known_checkpoints_test";

TEST(Sha256Test, EqualsTheFips180TestVectors) {
  EXPECT_EQ(Sha256HexOfFile(Write(kDir, "abc.bin", "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256HexOfFile(Write(kDir, "empty.bin", "")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Longer than one read block (1 MiB): one million 'a' (FIPS 180-2, appendix B.3).
  EXPECT_EQ(Sha256HexOfFile(Write(kDir, "million.bin", std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_THROW(Sha256HexOfFile(kDir + "/missing.bin"), IoError);
}

TEST(KnownCheckpointTest, AKnownNameWithOtherBytesWarnsOrIsRefused) {
  const std::string fake = Write(kDir, "ViT-B-32.pt", "not the OpenAI file");
  EXPECT_EQ(KnownCheckpointSha256(fake),
            "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af");
  std::string actual;
  EXPECT_EQ(CheckKnownCheckpoint(fake, /*strict=*/false, &actual), KnownCheck::kMismatch);
  EXPECT_EQ(actual, Sha256HexOfFile(fake));
  EXPECT_THROW(CheckKnownCheckpoint(fake, /*strict=*/true), DataError);
  const std::string other = Write(kDir, "my_clip.pt", "anything");
  EXPECT_EQ(KnownCheckpointSha256(other), "");
  EXPECT_EQ(CheckKnownCheckpoint(other, /*strict=*/true, &actual), KnownCheck::kUnknownName);
  EXPECT_EQ(actual, "");
}

}  // namespace
}  // namespace cliphba::model
