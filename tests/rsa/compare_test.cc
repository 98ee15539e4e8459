#include "rsa/compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"

namespace cliphba::rsa {
namespace {

nlohmann::json Reference() {
  std::ifstream in(std::string(CLIPHBA_TEST_DATA_DIR) + "/rsa_things_reference.json");
  return nlohmann::json::parse(in);
}

// The scipy reference's many-ties case: a[i] = i % 7, b[i] = (3 i) % 11.
TEST(CompareTest, TiesCaseEqualsScipy) {
  auto ref = Reference()["ties_case"];
  const int64_t n = ref["n"];
  at::Tensor a = at::empty({n}, at::kDouble), b = at::empty({n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i) a[i] = double(i % 7), b[i] = double((i * 3) % 11);
  EXPECT_NEAR(Spearman(a, b), ref["spearman"].get<double>(), 1e-12);
  EXPECT_NEAR(Pearson(a, b), ref["pearson"].get<double>(), 1e-12);
  EXPECT_NEAR(KendallTauA(a, b), ref["kendall_tau_a"].get<double>(), 1e-12);
}

// The tensor-free Spearman equals scipy's on the ties case and Spearman on tensors exactly.
TEST(SpearmanTest, RawEqualsTensorSpearman) {
  auto ref = Reference()["ties_case"];
  const int64_t n = ref["n"];
  std::vector<double> a(n), b(n), scratch(2 * n);
  for (int64_t i = 0; i < n; ++i) a[i] = double(i % 7), b[i] = double((i * 3) % 11);
  EXPECT_NEAR(SpearmanRaw(a.data(), b.data(), n, scratch.data()), ref["spearman"].get<double>(),
              1e-12);
  CounterRng r(3, 1);
  for (int64_t m : {2, 3, 28, 500}) {
    std::vector<double> x(m), y(m), s(2 * m);
    for (int64_t i = 0; i < m; ++i) x[i] = std::round(4 * r.Normal()), y[i] = r.Normal();
    x[0] = 1.0, x[m - 1] = -1.0;  // never constant
    const double want = Spearman(at::tensor(at::ArrayRef<double>(x), at::kDouble),
                                 at::tensor(at::ArrayRef<double>(y), at::kDouble));
    EXPECT_EQ(SpearmanRaw(x.data(), y.data(), m, s.data()), want) << m;
  }
}

TEST(SpearmanTest, AverageRanksForTies) {
  at::Tensor x = at::tensor({3.0, 1.0, 3.0, 2.0, -0.0, 0.0});
  at::Tensor r = RankAverage(x);
  std::vector<double> want = {5.5, 3.0, 5.5, 4.0, 1.5, 1.5};
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(r[i].item<double>(), want[i]);
}

TEST(RadixArgsortTest, EqualsStableSortOnRandomDataWithNegativesAndTies) {
  CounterRng rng(3, 0);
  const int64_t m = 5000;
  std::vector<double> x(m);
  for (auto& v : x) v = std::round(rng.Normal() * 50) / 4;  // many ties, both signs
  x[10] = -1e300, x[11] = 1e300, x[12] = -0.0, x[13] = 0.0;
  std::vector<int64_t> order(m), want(m);
  RadixArgsort(x.data(), m, order.data());
  std::iota(want.begin(), want.end(), 0);
  std::stable_sort(want.begin(), want.end(),
                   [&](int64_t i, int64_t j) { return x[i] + 0.0 < x[j] + 0.0; });
  EXPECT_EQ(order, want);
}

// Brute-force O(m^2) tau-a as the definition.
double BruteTauA(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  const size_t m = a.size();
  for (size_t i = 0; i < m; ++i)
    for (size_t j = i + 1; j < m; ++j) {
      double da = a[i] - a[j], db = b[i] - b[j];
      s += (da > 0) - (da < 0) == 0 || (db > 0) - (db < 0) == 0
               ? 0
               : double(((da > 0) - (da < 0)) * ((db > 0) - (db < 0)));
    }
  return s / (double(m) * (m - 1) / 2);
}

TEST(KendallTauATest, EqualsBruteForceOnRandomTiedData) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    CounterRng rng(seed, 11);
    const int64_t m = 701;
    std::vector<double> a(m), b(m);
    for (int64_t i = 0; i < m; ++i) {
      a[i] = double(rng.Below(20));
      b[i] = double(rng.Below(15)) + 0.1 * a[i];
    }
    double got = KendallTauA(at::tensor(a), at::tensor(b));
    EXPECT_NEAR(got, BruteTauA(a, b), 1e-14) << "seed " << seed;
  }
}

TEST(KendallTauATest, PerfectAndReversedOrders) {
  at::Tensor x = at::arange(100, at::kDouble);
  EXPECT_DOUBLE_EQ(KendallTauA(x, x), 1.0);
  EXPECT_DOUBLE_EQ(KendallTauA(x, -x), -1.0);
}

TEST(CompareTest, CosineIsUncentred) {
  at::Tensor a = at::tensor({1.0, 2.0, 3.0}), b = at::tensor({2.0, 4.0, 6.5});
  EXPECT_NEAR(CosineSimilarity(a, b),
              (2 + 8 + 19.5) / (std::sqrt(14.0) * std::sqrt(4 + 16 + 42.25)), 1e-15);
}

TEST(CompareTest, RefusesBadInput) {
  at::Tensor a = at::tensor({1.0, 2.0, 3.0});
  EXPECT_THROW(Pearson(a, at::tensor({1.0, 2.0})), DataError);
  EXPECT_THROW(Pearson(a, at::tensor({1.0, NAN, 2.0})), DataError);
  EXPECT_THROW(Spearman(a, at::tensor({1.0, 1.0, 1.0})), DataError);  // constant: undefined
  EXPECT_THROW(KendallTauA(a, at::tensor({INFINITY, 1.0, 2.0})), DataError);
  EXPECT_THROW(CosineSimilarity(a, at::zeros({3}, at::kDouble)), DataError);
  EXPECT_THROW(ParseComparison("kendall"), ConfigError);
}

}  // namespace
}  // namespace cliphba::rsa
