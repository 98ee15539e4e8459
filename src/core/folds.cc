#include "core/folds.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"

namespace cliphba {

namespace {
constexpr uint64_t kFoldStream = 0x464f'4c44'5300'0000ull;  // "FOLDS"
}  // namespace

std::vector<int64_t> ObjectFolds(const std::vector<std::string>& names, int64_t k, uint64_t seed,
                                 int64_t min_per_fold, const std::string& key) {
  const int64_t n = int64_t(names.size());
  if (k < 2 || n / k < min_per_fold)
    throw ConfigError(key + ": " + std::to_string(k) + " folds of " + std::to_string(n) +
                      " objects: each fold needs at least " + std::to_string(min_per_fold) +
                      " objects, so at most " + std::to_string(n / std::max<int64_t>(1, min_per_fold)) +
                      " folds (and at least 2)");
  std::vector<std::pair<uint64_t, int64_t>> order(size_t(n), {0, 0});
  for (int64_t i = 0; i < n; ++i) {
    CounterRng rng(seed, kFoldStream ^ Fnv1a64(names[size_t(i)]));
    order[size_t(i)] = {rng.NextU64(), i};
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return names[size_t(a.second)] < names[size_t(b.second)];
  });
  std::vector<int64_t> fold(size_t(n), 0);
  for (int64_t j = 0; j < n; ++j) {
    if (j > 0 && names[size_t(order[size_t(j)].second)] == names[size_t(order[size_t(j - 1)].second)])
      throw DataError(key + ": the object name '" + names[size_t(order[size_t(j)].second)] +
                      "' appears twice");
    fold[size_t(order[size_t(j)].second)] = j % k;
  }
  return fold;
}

}  // namespace cliphba
