// core/folds.h: the K-fold assignment of cross-validation over objects.
#include "core/folds.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace cliphba {
namespace {

std::vector<std::string> Names(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("obj" + std::to_string(100 + i));
  return v;
}

// K-fold assignment: balanced, a pure function of (seed, the set of names), independent of the
// names' order, every fold used; folds of different seeds differ; too many folds are a ConfigError
// naming the key.
TEST(ObjectFoldsTest, BalancedOrderFreeAndSeeded) {
  const std::vector<std::string> names = Names(34);
  const std::vector<int64_t> f = ObjectFolds(names, 4, 7, 3, "run.cv_folds");
  ASSERT_EQ(f.size(), names.size());
  std::vector<int64_t> size(4, 0);
  for (int64_t k : f) {
    ASSERT_TRUE(k >= 0 && k < 4) << k;
    ++size[size_t(k)];
  }
  EXPECT_EQ(size, (std::vector<int64_t>{9, 9, 8, 8}));  // dealt round-robin: 34 = 9 + 9 + 8 + 8
  // Reversed input order: the same fold for every name.
  std::vector<std::string> rev(names.rbegin(), names.rend());
  const std::vector<int64_t> g = ObjectFolds(rev, 4, 7, 3, "run.cv_folds");
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(g[names.size() - 1 - i], f[i]) << names[i];
  EXPECT_EQ(ObjectFolds(names, 4, 7, 3, "k"), f);
  EXPECT_NE(ObjectFolds(names, 4, 8, 3, "k"), f);
  // Not the names' order dealt round-robin: the folds are shuffled by the seed.
  std::vector<int64_t> by_order(names.size());
  for (size_t i = 0; i < names.size(); ++i) by_order[i] = int64_t(i % 4);
  EXPECT_NE(f, by_order);
  // Over 200 seeds every name lands in every fold (no name is stuck in one).
  std::vector<std::vector<int>> seen(names.size(), std::vector<int>(4, 0));
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const std::vector<int64_t> h = ObjectFolds(names, 4, seed, 3, "k");
    for (size_t i = 0; i < names.size(); ++i) seen[i][size_t(h[i])] = 1;
  }
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(seen[i], (std::vector<int>{1, 1, 1, 1})) << names[i];
}

TEST(ObjectFoldsTest, TooManyFoldsAndRepeatedNamesAreRefused) {
  const std::vector<std::string> names = Names(11);
  EXPECT_NO_THROW(ObjectFolds(names, 3, 1, 3, "run.cv_folds"));  // 4 + 4 + 3
  try {
    ObjectFolds(names, 4, 1, 3, "run.cv_folds");  // 3 + 3 + 3 + 2
    FAIL() << "a fold of 2 objects was accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("run.cv_folds"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most 3 folds"), std::string::npos) << msg;
  }
  EXPECT_THROW(ObjectFolds(names, 1, 1, 3, "run.cv_folds"), ConfigError);
  std::vector<std::string> twice = names;
  twice.push_back(names[4]);
  EXPECT_THROW(ObjectFolds(twice, 2, 1, 3, "run.cv_folds"), DataError);
}

}  // namespace
}  // namespace cliphba
