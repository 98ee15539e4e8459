#include "stats/fdr.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace cliphba::stats {
namespace {

nlohmann::json Reference() {
  std::ifstream in(std::string(CLIPHBA_TEST_DATA_DIR) + "/stats_bootstrap_reference.json");
  return nlohmann::json::parse(in);
}

at::Tensor ToTensor(const std::vector<double>& v) {
  return at::tensor(at::ArrayRef<double>(v), at::kDouble);
}

// The reference's two cases (14 hand-picked p-values with ties and 0/1, 120 rounded random ones):
// the explicit formula in numpy and statsmodels' step-up reject.
TEST(FdrBhTest, EqualsNumpyReference) {
  auto ref = Reference()["fdr"];
  const double alpha = ref["alpha"];
  ASSERT_EQ(ref["cases"].size(), 2u);
  for (const auto& c : ref["cases"]) {
    at::Tensor p = ToTensor(c["p"].get<std::vector<double>>());
    std::vector<double> want = c["q"];
    std::vector<bool> want_reject = c["reject"];
    at::Tensor q = FdrBh(p);
    at::Tensor reject = FdrReject(p, alpha);
    ASSERT_EQ(q.scalar_type(), at::kDouble);
    ASSERT_EQ(reject.scalar_type(), at::kBool);
    ASSERT_EQ(q.numel(), int64_t(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(q[i].item<double>(), want[i], 1e-15) << "i = " << i;
      EXPECT_EQ(reject[i].item<bool>(), bool(want_reject[i])) << "i = " << i;
    }
  }
}

// Hand-computed: sorted p = 0.01, 0.02, 0.03, 0.04 (m = 4) -> p m / j = 0.04 each.
TEST(FdrBhTest, HandExample) {
  at::Tensor q = FdrBh(at::tensor({0.04, 0.01, 0.03, 0.02}, at::kDouble));
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(q[i].item<double>(), 0.04, 1e-17);
  // 0.01, 0.5, 0.6 -> 0.03, 0.6 (min of 0.75 and 0.6), 0.6
  q = FdrBh(at::tensor({0.6, 0.01, 0.5}, at::kDouble));
  EXPECT_DOUBLE_EQ(q[0].item<double>(), 0.6);
  EXPECT_DOUBLE_EQ(q[1].item<double>(), 0.03);
  EXPECT_DOUBLE_EQ(q[2].item<double>(), 0.6);
}

TEST(FdrBhTest, TiesGetEqualValuesAndCapAtOne) {
  at::Tensor q = FdrBh(at::tensor({0.9, 0.02, 0.02, 1.0, 0.02}, at::kDouble));
  EXPECT_DOUBLE_EQ(q[1].item<double>(), q[2].item<double>());
  EXPECT_DOUBLE_EQ(q[1].item<double>(), q[4].item<double>());
  EXPECT_DOUBLE_EQ(q[1].item<double>(), 0.02 * 5 / 3);
  EXPECT_DOUBLE_EQ(q[3].item<double>(), 1.0);
}

TEST(FdrBhTest, MonotoneAndNotBelowP) {
  CounterRng rng(11, 0);
  std::vector<double> v(500);
  for (auto& x : v) x = rng.Uniform() * rng.Uniform();
  at::Tensor p = ToTensor(v);
  at::Tensor q = FdrBh(p);
  EXPECT_TRUE((q >= p).all().item<bool>());
  EXPECT_TRUE((q <= 1.0).all().item<bool>());
  at::Tensor order = std::get<1>(p.sort());
  at::Tensor qs = q.index_select(0, order);
  EXPECT_TRUE((qs.slice(0, 1) >= qs.slice(0, 0, -1)).all().item<bool>());
  // Reject agrees with q <= alpha here (no value on the rounding edge).
  EXPECT_TRUE(at::equal(FdrReject(p, 0.1), q <= 0.1));
}

TEST(FdrBhTest, KeepsShapeAndPromotesFloat32) {
  at::Tensor p = at::tensor({0.01f, 0.2f, 0.03f, 0.5f, 0.04f, 0.9f}, at::kFloat).reshape({2, 3});
  at::Tensor q = FdrBh(p);
  EXPECT_EQ(q.sizes(), p.sizes());
  EXPECT_EQ(q.scalar_type(), at::kDouble);
  at::Tensor flat = FdrBh(p.reshape({-1}).to(at::kDouble));
  EXPECT_TRUE(at::equal(q.reshape({-1}), flat));
  EXPECT_EQ(FdrReject(p, 0.05).sizes(), p.sizes());
}

TEST(FdrBhTest, EmptyInput) {
  EXPECT_EQ(FdrBh(at::empty({0}, at::kDouble)).numel(), 0);
  EXPECT_EQ(FdrReject(at::empty({0}, at::kDouble), 0.05).numel(), 0);
}

TEST(FdrBhTest, RejectsBadInput) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(FdrBh(at::tensor({0.1, nan}, at::kDouble)), DataError);
  EXPECT_THROW(FdrBh(at::tensor({0.1, -0.01}, at::kDouble)), DataError);
  EXPECT_THROW(FdrBh(at::tensor({0.1, 1.5}, at::kDouble)), DataError);
  EXPECT_THROW(FdrBh(at::tensor({0, 1}, at::kLong)), DataError);
  EXPECT_THROW(FdrReject(at::tensor({0.1, nan}, at::kDouble), 0.05), DataError);
  EXPECT_THROW(FdrReject(at::tensor({0.1}, at::kDouble), 0.0), ConfigError);
  EXPECT_THROW(FdrReject(at::tensor({0.1}, at::kDouble), 1.5), ConfigError);
  try {
    FdrBh(at::tensor({0.1, 0.2, 2.0}, at::kDouble));
    FAIL() << "no throw";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("index 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cliphba::stats
