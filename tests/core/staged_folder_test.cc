// StagedFolder (core/staged_folder.h): a folder output appears whole at Commit(), an exception
// leaves nothing, and writing into an existing folder replaces only this run's files.
#include "core/staged_folder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace cliphba {
namespace {

namespace fs = std::filesystem;

class StagedFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(CLIPHBA_TEST_OUT_DIR) / ("staged_folder_" + std::to_string(::getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_);
  }
  void TearDown() override { fs::remove_all(base_); }
  static void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Entries of base_ (names), to see what a staging folder left.
  int Entries() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(base_)) ++n;
    return n;
  }
  fs::path base_;
};

TEST_F(StagedFolderTest, ANewFolderAppearsOnlyAtCommit) {
  const fs::path out = base_ / "out";
  StagedFolder staged(out.string(), "test");
  Write(fs::path(staged.path()) / "a.txt", "a");
  Write(fs::path(staged.path()) / "sub/b.txt", "b");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(staged.Final(staged.path() + "/sub/b.txt"), out.string() + "/sub/b.txt");
  staged.Commit();
  EXPECT_EQ(Read(out / "a.txt"), "a");
  EXPECT_EQ(Read(out / "sub/b.txt"), "b");
  EXPECT_EQ(Entries(), 1) << "the staging folder was left behind";
}

TEST_F(StagedFolderTest, AnExceptionBeforeCommitLeavesNothing) {
  const fs::path out = base_ / "out/";  // a trailing slash names the same folder
  try {
    StagedFolder staged(out.string(), "test");
    EXPECT_EQ(fs::path(staged.path()).parent_path(), base_) << staged.path();
    Write(fs::path(staged.path()) / "a.txt", "half");
    throw std::runtime_error("mid-write");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(Entries(), 0);
}

TEST_F(StagedFolderTest, AnExistingFolderKeepsWhatThisRunDidNotWrite) {
  const fs::path out = base_ / "out";
  Write(out / "mine.txt", "old");
  Write(out / "sub/mine.txt", "old");
  Write(out / "sub/user.txt", "the user's");
  Write(out / "stale.txt", "an earlier run's output");
  Write(out / "user.txt", "the user's");
  StagedFolder staged(out.string(), "test");
  Write(fs::path(staged.path()) / "mine.txt", "new");
  Write(fs::path(staged.path()) / "sub/mine.txt", "new");
  staged.Commit({"stale.txt", "mine.txt"});  // mine.txt was written again: not removed
  EXPECT_EQ(Read(out / "mine.txt"), "new");
  EXPECT_EQ(Read(out / "sub/mine.txt"), "new");
  EXPECT_EQ(Read(out / "sub/user.txt"), "the user's");
  EXPECT_EQ(Read(out / "user.txt"), "the user's");
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  EXPECT_EQ(Entries(), 1);
}

}  // namespace
}  // namespace cliphba
