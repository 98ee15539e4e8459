#include "core/memory.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace cliphba {
namespace {

// Bytes glibc holds in mmapped blocks now.
std::size_t MappedBytes() { return mallinfo2().hblkhd; }

// An 8 MiB block (far above glibc's initial 128 KiB mmap threshold) is mmapped by default; under
// the policy it comes from the heap, and after free its memory stays with the process.
TEST(ReuseFreedMemory, LargeBlocksComeFromTheHeapAndStay) {
  constexpr std::size_t kBlock = std::size_t(8) << 20;
  ASSERT_EQ(unsetenv("CLIPHBA_GLIBC_MALLOC_DEFAULTS"), 0);
  const HeapPolicy p = ReuseFreedMemory();
  ASSERT_TRUE(p.applied);
  EXPECT_EQ(p.mmap_threshold, std::size_t(32) << 20);
  EXPECT_EQ(p.trim_threshold, std::size_t(1) << 30);

  const std::size_t mapped_before = MappedBytes();
  char* a = static_cast<char*>(std::malloc(kBlock));
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, kBlock);
  EXPECT_EQ(MappedBytes(), mapped_before) << "the 8 MiB block was mmapped";
  std::free(a);
  EXPECT_GE(mallinfo2().fordblks, kBlock) << "the freed block was returned to the kernel";
  // A block above the threshold is still mmapped (and unmapped on free).
  char* big = static_cast<char*>(std::malloc(std::size_t(64) << 20));
  ASSERT_NE(big, nullptr);
  EXPECT_GE(MappedBytes(), mapped_before + (std::size_t(64) << 20));
  std::free(big);
}

TEST(ReuseFreedMemory, OptOutLeavesTheDefaults) {
  ASSERT_EQ(setenv("CLIPHBA_GLIBC_MALLOC_DEFAULTS", "1", 1), 0);
  const HeapPolicy p = ReuseFreedMemory();
  EXPECT_FALSE(p.applied);
  EXPECT_EQ(p.mmap_threshold, 0u);
  ASSERT_EQ(unsetenv("CLIPHBA_GLIBC_MALLOC_DEFAULTS"), 0);
}

}  // namespace
}  // namespace cliphba
