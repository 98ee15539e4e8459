// Shard arithmetic: which contiguous block of items a rank owns. Pure functions of
// (n_items, n_shards, shard) so that one process can test every rank's share.
#pragma once

#include <cstdint>

namespace cliphba {

struct Range {
  int64_t begin = 0;  // first item
  int64_t end = 0;    // one past the last item
  int64_t size() const { return end - begin; }
};

// Items [0, n) split into n_shards contiguous blocks whose sizes differ by at most one; the first
// n % n_shards shards get the extra item. REQUIRES: n >= 0, n_shards >= 1, 0 <= shard < n_shards.
inline Range ShardRange(int64_t n, int64_t n_shards, int64_t shard) {
  int64_t base = n / n_shards, extra = n % n_shards;
  int64_t begin = shard * base + (shard < extra ? shard : extra);
  return {begin, begin + base + (shard < extra ? 1 : 0)};
}

}  // namespace cliphba
