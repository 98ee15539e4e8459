// K-fold cross-validation over named items (objects): a pure function of a seed and the set of
// names, like the shard arithmetic of core/shard.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba {

// fold[i] in [0, k) for names[i]. Each name gets a 64-bit key drawn from CounterRng(seed, stream
// "FOLDS" ^ Fnv1a64(name)); the names sorted by (key, name) are dealt to folds 0, 1, ..., k - 1,
// 0, 1, ... So the folds depend only on the seed and the SET of names (not on their order or on
// the rank count), and fold sizes differ by at most 1.
// Throws ConfigError naming `key` when k < 2 or a fold would get fewer than min_per_fold names;
// DataError for a repeated name.
std::vector<int64_t> ObjectFolds(const std::vector<std::string>& names, int64_t k, uint64_t seed,
                                 int64_t min_per_fold, const std::string& key);

}  // namespace cliphba
