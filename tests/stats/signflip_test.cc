// Sign-flip t tests (src/stats/signflip) against MNE-Python 1.3's permutation_t_test
// (scripts/reference/stats_reference.py -> tests/data_files/stats_reference/), plus unit tests.
#include "stats/signflip.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/npy.h"
#include "reference_fixture.h"

namespace cliphba::stats {
namespace {

using reference::CaseNames;
using reference::ExpectClose;
using reference::kRefDir;
using reference::ReadJson;

at::Tensor SmallData() {
  return at::tensor({1.0, 2.0, -0.5, 0.3, 2.0, 1.5, 0.2, -1.0, 3.0, 0.7, -0.4, 1.1}, at::kDouble)
      .reshape({4, 3});
}

TEST(OneSampleTTest, EqualsTheDefinition) {
  at::Tensor x = SmallData();
  at::Tensor t = OneSampleT(x);
  ASSERT_EQ(t.dim(), 1);
  ASSERT_EQ(t.size(0), 3);
  for (int64_t j = 0; j < 3; ++j) {
    std::vector<double> col;
    for (int64_t i = 0; i < 4; ++i) col.push_back(x[i][j].item<double>());
    double m = 0;
    for (double v : col) m += v;
    m /= 4;
    double ss = 0;
    for (double v : col) ss += (v - m) * (v - m);
    ExpectClose(t[j].item<double>(), m / std::sqrt(ss / 3 / 4), 1e-14, "t");
  }
  // float32 input is accepted and computed in float64.
  EXPECT_EQ(OneSampleT(x.to(at::kFloat)).scalar_type(), at::kDouble);
}

TEST(OneSampleTTest, RefusesBadInput) {
  EXPECT_THROW(OneSampleT(at::ones({1, 5}, at::kDouble)), DataError);  // N < 2
  EXPECT_THROW(OneSampleT(at::ones({5}, at::kDouble)), DataError);     // 1-D
  EXPECT_THROW(OneSampleT(at::ones({4, 3}, at::kLong)), DataError);    // not floating
  at::Tensor x = SmallData();
  x[2][1] = std::nan("");
  EXPECT_THROW(OneSampleT(x), DataError);
  x = SmallData();
  x[0][2] = INFINITY;
  EXPECT_THROW(OneSampleT(x), DataError);
  x = SmallData();
  x.select(1, 1).fill_(0.25);  // constant column 1
  try {
    OneSampleT(x);
    FAIL() << "zero variance accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("timepoint 1 "), std::string::npos) << e.what();
  }
}

TEST(DrawSignFlipsTest, PlusMinusOneAndDeterministic) {
  at::Tensor f = DrawSignFlips(200, 12, 99);
  ASSERT_EQ(f.scalar_type(), at::kChar);
  ASSERT_EQ(f.size(0), 200);
  ASSERT_EQ(f.size(1), 12);
  EXPECT_TRUE(at::equal(f.abs(), at::ones_like(f)));
  EXPECT_TRUE(at::equal(f, DrawSignFlips(200, 12, 99)));
  EXPECT_FALSE(at::equal(f, DrawSignFlips(200, 12, 100)));
  // Fair coins: 2400 signs, mean within 4 standard errors (0.0816) of 0.
  EXPECT_LT(std::fabs(f.to(at::kDouble).mean().item<double>()), 0.0816);
  EXPECT_EQ(DrawSignFlips(0, 5, 1).size(0), 0);
}

TEST(DrawSignFlipsTest, AnyBlockOfRowsIsReproducibleAlone) {
  for (int64_t n : {12, 40, 64, 65}) {  // one, two and three 32-bit words per row
    at::Tensor all = DrawSignFlips(30, n, 7);
    at::Tensor block = DrawSignFlips(10, n, 7, /*first=*/10);
    EXPECT_TRUE(at::equal(block, all.slice(0, 10, 20))) << "n=" << n;
    EXPECT_TRUE(at::equal(DrawSignFlips(1, n, 7, 29), all.slice(0, 29, 30))) << "n=" << n;
    // A row does not depend on how many participants follow it in the same word.
    if (n == 40) {
      EXPECT_TRUE(at::equal(DrawSignFlips(30, 12, 7), all.slice(1, 0, 12)));
    }
  }
  // Three "ranks" drawing [0,11), [11,20), [20,30) reassemble the single draw.
  at::Tensor joined = at::cat(
      {DrawSignFlips(11, 9, 3, 0), DrawSignFlips(9, 9, 3, 11), DrawSignFlips(10, 9, 3, 20)});
  EXPECT_TRUE(at::equal(joined, DrawSignFlips(30, 9, 3)));
  EXPECT_THROW(DrawSignFlips(-1, 5, 1), DataError);
  EXPECT_THROW(DrawSignFlips(5, 0, 1), DataError);
  EXPECT_THROW(DrawSignFlips(5, 5, 1, -3), DataError);
}

TEST(FlippedTTest, EqualsOneSampleTOfFlippedData) {
  at::Tensor x = at::randn({15, 37}, at::kDouble) + 0.3;
  at::Tensor flips = DrawSignFlips(50, 15, 11);
  at::Tensor t = FlippedT(x, flips);
  ASSERT_EQ(t.size(0), 50);
  ASSERT_EQ(t.size(1), 37);
  for (int64_t k = 0; k < 50; ++k) {
    at::Tensor ref = OneSampleT(x * flips[k].to(at::kDouble).unsqueeze(1));
    double err = ((t[k] - ref).abs() / ref.abs().clamp_min(1.0)).max().item<double>();
    EXPECT_LE(err, 1e-12) << "flip " << k;
  }
  // Floating flips give the same values as int8 flips.
  EXPECT_TRUE(at::equal(t, FlippedT(x, flips.to(at::kFloat))));
  // The all-+1 flip reproduces the observed t.
  at::Tensor id = FlippedT(x, at::ones({1, 15}, at::kChar));
  EXPECT_LE((id[0] - OneSampleT(x)).abs().max().item<double>(), 1e-12);
}

TEST(FlippedTTest, RefusesBadFlips) {
  at::Tensor x = at::randn({6, 4}, at::kDouble);
  EXPECT_THROW(FlippedT(x, at::ones({3, 5}, at::kChar)), DataError);   // wrong N
  EXPECT_THROW(FlippedT(x, at::zeros({3, 6}, at::kChar)), DataError);  // 0 is not a sign
  EXPECT_THROW(FlippedT(x, at::full({3, 6}, 2.0, at::kDouble)), DataError);
  EXPECT_THROW(FlippedT(x, at::ones({3, 6}, at::kLong)), DataError);  // dtype
  EXPECT_EQ(FlippedT(x, at::ones({0, 6}, at::kChar)).size(0), 0);
}

TEST(ExactSignFlipsTest, MneOrderAndSetWrittenOut) {
  // MNE's bin_perm_rep(3)[1:8] with signs 2 * bit - 1, participant 0 the most significant digit:
  // 001, 010, 011, 100, 101, 110, 111 (the identity last; all -1 absent).
  const std::vector<std::vector<int>> one_sided = {{-1, -1, 1}, {-1, 1, -1}, {-1, 1, 1},
                                                   {1, -1, -1},  {1, -1, 1},  {1, 1, -1},
                                                   {1, 1, 1}};
  for (Tail tail : {Tail::kUpper, Tail::kLower}) {
    at::Tensor f = ExactSignFlips(3, tail);
    ASSERT_EQ(f.sizes(), at::IntArrayRef({7, 3}));
    for (int64_t k = 0; k < 7; ++k)
      for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(f[k][j].item<int>(), one_sided[k][j]) << k << j;
  }
  // Tail 0: bin_perm_rep(3)[1:4] = 001, 010, 011: participant 0 always -1.
  at::Tensor f = ExactSignFlips(3, Tail::kTwo);
  ASSERT_EQ(f.sizes(), at::IntArrayRef({3, 3}));
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(f[k][j].item<int>(), one_sided[k][j]) << k << j;
  EXPECT_THROW(ExactSignFlips(kMaxExactBits + 1, Tail::kUpper), DataError);
}

TEST(ExactSignFlipsTest, ChosenExactlyWhenMneWouldEnumerate) {
  // MNE: exact iff 2^(N - (tail == 0)) - 1 < n_permutations.
  EXPECT_FALSE(UseExactSignFlips(63, 6, Tail::kUpper));
  EXPECT_TRUE(UseExactSignFlips(64, 6, Tail::kUpper));
  EXPECT_FALSE(UseExactSignFlips(31, 6, Tail::kTwo));
  EXPECT_TRUE(UseExactSignFlips(32, 6, Tail::kTwo));
  EXPECT_TRUE(UseExactSignFlips(1000, 9, Tail::kTwo));   // the 9 participants, tail 0
  EXPECT_FALSE(UseExactSignFlips(1000, 12, Tail::kLower));
  EXPECT_FALSE(UseExactSignFlips(int64_t(1) << 40, 70, Tail::kUpper));  // no overflow
  EXPECT_EQ(SignFlipsFor(64, 6, Tail::kUpper, 3).size(0), 63);
  EXPECT_TRUE(at::equal(SignFlipsFor(64, 6, Tail::kUpper, 3), ExactSignFlips(6, Tail::kUpper)));
  EXPECT_TRUE(at::equal(SignFlipsFor(50, 6, Tail::kUpper, 3), DrawSignFlips(49, 6, 3)));
}

TEST(FlippedTTest, IdentityAndFullFlipAreTheObservedBitForBit) {
  // One path for the observed and the flipped statistics: the all +1 row reproduces OneSampleT to
  // the last bit and the all -1 row its exact negation (MNE's ties count as they should).
  at::Tensor x = at::randn({9, 40}, at::TensorOptions().dtype(at::kDouble)) + 0.3;
  at::Tensor t = OneSampleT(x);
  at::Tensor f = at::ones({2, 9}, at::kChar);
  f[1].fill_(-1);
  at::Tensor ft = FlippedT(x, f);
  EXPECT_TRUE(at::equal(ft[0], t));
  EXPECT_TRUE(at::equal(ft[1], -t));
}

TEST(TMaxTest, BlocksConcatenateToTheWhole) {
  at::Tensor x = at::randn({10, 25}, at::kDouble);
  at::Tensor flips = DrawSignFlips(77, 10, 5);
  TMaxResult whole = TMaxTest(x, flips, Tail::kTwo);
  std::vector<double> h0(77);
  AccumulateTMax(x, flips.slice(0, 0, 30), h0.data());
  AccumulateTMax(x, DrawSignFlips(47, 10, 5, 30), h0.data() + 30);
  ASSERT_EQ(whole.h0.size(0), 78);
  for (int k = 0; k < 77; ++k) EXPECT_EQ(h0[k], whole.h0[k + 1].item<double>()) << k;
  EXPECT_EQ(whole.h0[0].item<double>(), whole.t_obs.abs().max().item<double>());
}

TEST(TMaxTest, PValuesCountTheObservedAsMneDoes) {
  at::Tensor t_obs = at::tensor({3.0, -3.0, 0.5, -5.0}, at::kDouble);
  at::Tensor h0 = at::tensor({5.0, 1.0, 3.0, 4.0}, at::kDouble);  // any order
  auto p = [&](Tail tail) {
    at::Tensor v = TMaxPValues(t_obs, h0, tail);
    return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + 4);
  };
  EXPECT_EQ(p(Tail::kTwo), (std::vector<double>{0.75, 0.75, 1.0, 0.25}));
  EXPECT_EQ(p(Tail::kUpper), (std::vector<double>{0.75, 1.0, 1.0, 1.0}));
  EXPECT_EQ(p(Tail::kLower), (std::vector<double>{1.0, 0.75, 1.0, 0.25}));
  EXPECT_THROW(TMaxPValues(t_obs, at::empty({0}, at::kDouble), Tail::kTwo), DataError);
}

// The t-max test on MNE's fixtures: same data, the same flips MNE drew.
TEST(TMaxTest, EqualsMnePermutationTTest) {
  int n_cases = 0;
  for (const std::string& name : CaseNames()) {
    SCOPED_TRACE(name);
    nlohmann::json ref = ReadJson(kRefDir + name + ".json");
    at::Tensor data = io::ReadNpy(kRefDir + ref["data"].get<std::string>());
    at::Tensor flips = io::ReadNpy(kRefDir + ref["flips"].get<std::string>());
    ASSERT_EQ(flips.scalar_type(), at::kChar);
    ASSERT_EQ(flips.size(0), ref["n_flips"].get<int64_t>());
    const Tail tail = static_cast<Tail>(ref["tail"].get<int>());
    TMaxResult r = TMaxTest(data, flips, tail);
    const auto& tt = ref["ttest"];
    ASSERT_EQ(r.t_obs.size(0), static_cast<int64_t>(tt["t_obs"].size()));
    for (int64_t j = 0; j < r.t_obs.size(0); ++j) {
      ExpectClose(r.t_obs[j].item<double>(), tt["t_obs"][j], 1e-12,
                  "t_obs[" + std::to_string(j) + "]");
      EXPECT_EQ(r.p[j].item<double>(), tt["p_values"][j].get<double>()) << "p[" << j << "]";
    }
    at::Tensor sorted = std::get<0>(r.h0.sort());
    ASSERT_EQ(sorted.size(0), static_cast<int64_t>(tt["h0_sorted"].size()));
    for (int64_t k = 0; k < sorted.size(0); ++k)
      ExpectClose(sorted[k].item<double>(), tt["h0_sorted"][k], 1e-10,
                  "h0[" + std::to_string(k) + "]");
    ++n_cases;
  }
  EXPECT_GE(n_cases, 4);
}

// The comparison above can fail: other flips give another null distribution.
TEST(TMaxTest, OtherFlipsDoNotReproduceMne) {
  nlohmann::json ref = ReadJson(kRefDir + "upper_effect.json");
  at::Tensor data = io::ReadNpy(kRefDir + ref["data"].get<std::string>());
  at::Tensor flips = DrawSignFlips(ref["n_flips"].get<int64_t>(), data.size(0), 1);
  at::Tensor sorted = std::get<0>(TMaxTest(data, flips, Tail::kUpper).h0.sort());
  double max_diff = 0;
  for (int64_t k = 0; k < sorted.size(0); ++k)
    max_diff = std::max(
        max_diff, std::fabs(sorted[k].item<double>() - ref["ttest"]["h0_sorted"][k].get<double>()));
  EXPECT_GT(max_diff, 1e-6);
}

}  // namespace
}  // namespace cliphba::stats
