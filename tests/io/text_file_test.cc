#include "io/text_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"

namespace cliphba::io {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test and process (parallel ctest runs this binary's tests side by side).
std::string Folder(const std::string& name) {
  const std::string dir =
      std::string(CLIPHBA_TEST_OUT_DIR) + "/text_file_" + name + "_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string MessageOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(TextFileTest, WritesAndReadsBackBytesExactly) {
  const std::string path = Folder("roundtrip") + "/a.json";
  const std::string text = std::string("{\"k\": 1}\n\0tail\r\n", 16);
  WriteTextFileAtomically(path, text);
  EXPECT_EQ(ReadTextFile(path), text);
  EXPECT_FALSE(fs::exists(path + ".partial"));
  WriteTextFileAtomically(path, "");  // replaces, also with nothing
  EXPECT_EQ(ReadTextFile(path), "");
}

TEST(TextFileTest, MissingFileNamesThePath) {
  const std::string path = Folder("missing") + "/absent.json";
  const std::string msg = MessageOf([&] { ReadTextFile(path); });
  EXPECT_NE(msg.find(path + ": cannot open for reading"), std::string::npos) << msg;
}

TEST(TextFileTest, FailedWriteLeavesTheOldFileAndNoPartial) {
  const std::string dir = Folder("fail");
  const std::string path = dir + "/record.json";
  WriteTextFileAtomically(path, "old\n");
  // The partial file cannot be renamed over a non-empty folder of the target's name.
  const std::string blocked = dir + "/blocked";
  fs::create_directories(blocked + "/inside");
  const std::string msg = MessageOf([&] { WriteTextFileAtomically(blocked, "new\n"); });
  EXPECT_NE(msg.find(blocked + ": cannot write"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(blocked + ".partial"));
  EXPECT_TRUE(fs::is_directory(blocked + "/inside"));
  // A folder that does not exist: nothing is created.
  const std::string nowhere = dir + "/no/such/folder/x.json";
  EXPECT_NE(MessageOf([&] { WriteTextFileAtomically(nowhere, "x"); }).find(nowhere),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/no"));
  EXPECT_EQ(ReadTextFile(path), "old\n");
}

}  // namespace
}  // namespace cliphba::io
