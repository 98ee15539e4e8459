// The held-out split of behaviour evaluation (data::SplitBehavior): the held-out objects are
// exactly the listed ones, and train / validation / held-out are disjoint and cover every object
// once.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/behavior_dataset.h"

namespace cliphba::data {
namespace {

std::vector<std::string> Names(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("obj" + std::to_string(100 + i));
  return out;
}

TEST(SplitBehaviorTest, HeldOutAreExactlyTheListedObjectsAndDisjointFromTraining) {
  const std::vector<std::string> names = Names(40);
  const std::vector<std::string> heldout = {"obj133", "obj105", "obj117"};  // not sorted
  const BehaviorSplit s = SplitBehavior(names, heldout, 0.2, 7);
  ASSERT_EQ(s.heldout.size(), heldout.size());
  for (size_t k = 0; k < heldout.size(); ++k) EXPECT_EQ(names[size_t(s.heldout[k])], heldout[k]);
  std::vector<int64_t> all;
  for (const auto* part : {&s.train, &s.val, &s.heldout})
    all.insert(all.end(), part->begin(), part->end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> every(40);
  for (int i = 0; i < 40; ++i) every[size_t(i)] = i;
  EXPECT_EQ(all, every) << "train, validation and held-out must cover every object exactly once";
  const std::set<int64_t> held(s.heldout.begin(), s.heldout.end());
  for (int64_t i : s.train)
    EXPECT_EQ(held.count(i), 0u) << names[size_t(i)] << " leaked into train";
  for (int64_t i : s.val) EXPECT_EQ(held.count(i), 0u) << names[size_t(i)] << " leaked into val";
  EXPECT_EQ(s.val.size(), 7u);  // round(0.2 * 37)
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
}

TEST(SplitBehaviorTest, APureFunctionOfItsArgumentsAndTheSeedMatters) {
  const std::vector<std::string> names = Names(60);
  const BehaviorSplit a = SplitBehavior(names, {"obj110"}, 0.25, 3);
  const BehaviorSplit b = SplitBehavior(names, {"obj110"}, 0.25, 3);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_NE(SplitBehavior(names, {"obj110"}, 0.25, 4).val, a.val);
}

TEST(SplitBehaviorTest, UnknownHeldOutNamesAndEmptyPartsAreRefused) {
  const std::vector<std::string> names = Names(10);
  try {
    SplitBehavior(names, {"obj101", "not_an_object"}, 0.2, 1, "heldout.txt");
    FAIL() << "an unknown held-out name was accepted";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("not_an_object"), std::string::npos) << msg;
    EXPECT_NE(msg.find("heldout.txt"), std::string::npos) << msg;
  }
  EXPECT_THROW(SplitBehavior(names, {}, 0.0, 1), DataError);  // empty validation
  EXPECT_THROW(SplitBehavior(names, {}, 1.0, 1), DataError);  // empty training
}

}  // namespace
}  // namespace cliphba::data
