#include "core/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace cliphba {
namespace {

// Known-answer vectors of Random123's kat_vectors (counter[4], key[2] -> output[4]).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  struct Case {
    std::array<uint32_t, 4> ctr;
    std::array<uint32_t, 2> key;
    std::array<uint32_t, 4> want;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case& c : cases) EXPECT_EQ(Philox4x32(c.ctr, c.key), c.want);
}

TEST(CounterRngTest, StreamIsAPureFunctionOfSeedStreamAndPosition) {
  CounterRng a(42, 7), b(42, 7), other_stream(42, 8), other_seed(43, 7);
  std::vector<uint32_t> va, vb, vs, vk;
  for (int i = 0; i < 64; ++i) {
    va.push_back(a.NextU32());
    vb.push_back(b.NextU32());
    vs.push_back(other_stream.NextU32());
    vk.push_back(other_seed.NextU32());
  }
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vs);
  EXPECT_NE(va, vk);
  // Starting at block 3 skips exactly 12 words.
  CounterRng skip(42, 7, /*start_block=*/3);
  for (int i = 12; i < 64; ++i) EXPECT_EQ(skip.NextU32(), va[i]);
}

TEST(CounterRngTest, UniformAndNormalMoments) {
  CounterRng rng(1, 0);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    double u = rng.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    double z = rng.Normal();
    sn += z, sn2 += z * z;
  }
  // Standard errors: uniform mean 0.00065, normal mean 0.0022, variance ~0.0032.
  EXPECT_NEAR(su / n, 0.5, 0.004);
  EXPECT_NEAR(sn / n, 0.0, 0.012);
  EXPECT_NEAR(sn2 / n, 1.0, 0.02);
}

TEST(CounterRngTest, BelowIsUnbiasedAndInRange) {
  CounterRng rng(5, 1);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) {
    uint64_t v = rng.Below(6);
    ASSERT_LT(v, 6u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);  // ~5 sigma
}

TEST(RandomPermutationTest, IsAPermutationAndDeterministic) {
  std::vector<int64_t> p(100), q(100), r(100);
  RandomPermutation(9, 3, 100, p.data());
  RandomPermutation(9, 3, 100, q.data());
  RandomPermutation(9, 4, 100, r.data());
  EXPECT_EQ(p, q);
  EXPECT_NE(p, r);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[i], i);
}

}  // namespace
}  // namespace cliphba
