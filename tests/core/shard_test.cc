#include "core/shard.h"

#include <gtest/gtest.h>

namespace cliphba {
namespace {

TEST(ShardRangeTest, CoversItemsOnceWithBalancedSizes) {
  for (int64_t n : {0, 1, 2, 7, 10, 281}) {
    for (int64_t shards : {1, 2, 3, 4, 16}) {
      int64_t next = 0, min_size = n, max_size = 0;
      for (int64_t s = 0; s < shards; ++s) {
        Range r = ShardRange(n, shards, s);
        EXPECT_EQ(r.begin, next) << "n=" << n << " shards=" << shards << " s=" << s;
        next = r.end;
        min_size = std::min(min_size, r.size());
        max_size = std::max(max_size, r.size());
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(max_size - min_size, 1);
    }
  }
}

TEST(ShardRangeTest, ExtraItemsGoToTheFirstShards) {
  EXPECT_EQ(ShardRange(7, 3, 0).size(), 3);
  EXPECT_EQ(ShardRange(7, 3, 1).size(), 2);
  EXPECT_EQ(ShardRange(7, 3, 2).begin, 5);
}

}  // namespace
}  // namespace cliphba
