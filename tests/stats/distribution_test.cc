// The random draws behind every p-value and CI are uniform where they must be: Pearson's
// chi-square goodness of fit of the permutations (core RandomPermutation, used by Mantel and the
// own-vs-other test), the random sign flips (stats::DrawSignFlips, the sign-flip and cluster tests)
// and the bootstrap resampling indices (stats::ResampleIndices), each over tens of thousands of
// draws from fixed seeds (deterministic). The bound is the chi-square quantile at 1 - 1e-6
// (scipy.stats.chi2.ppf), so a correct generator fails with probability 1e-6 per seed; a biased
// one (e.g. Sattolo's cyclic shuffle, a modulo bias, a stuck bit) exceeds it by orders of
// magnitude. Each test also prints its statistic.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <vector>

#include "core/rng.h"
#include "stats/bootstrap.h"
#include "stats/signflip.h"

namespace cliphba::stats {
namespace {

// sum (observed - expected)^2 / expected over cells with equal expected counts.
double ChiSquare(const std::vector<int64_t>& counts, double expected) {
  double x = 0;
  for (int64_t c : counts) x += (double(c) - expected) * (double(c) - expected) / expected;
  return x;
}

TEST(DrawDistributionTest, PermutationsOfFourAreUniform) {
  // All 24 permutations of 4 items, 48,000 draws (2,000 expected each): df 23.
  std::map<std::vector<int64_t>, int64_t> seen;
  const int64_t draws = 48000;
  for (int64_t k = 0; k < draws; ++k) {
    std::vector<int64_t> p(4);
    RandomPermutation(11, uint64_t(k), 4, p.data());
    ++seen[p];
  }
  ASSERT_EQ(seen.size(), 24u) << "some permutations never occur (a cyclic shuffle gives 6)";
  std::vector<int64_t> counts;
  for (const auto& [p, c] : seen) counts.push_back(c);
  const double x = ChiSquare(counts, double(draws) / 24);
  std::printf("permutations of 4: chi-square %.2f (df 23, bound 70.55)\n", x);
  EXPECT_LT(x, 70.54955713680532);
}

TEST(DrawDistributionTest, EveryValueIsEquallyLikelyAtEveryPosition) {
  // n = 10, 20,000 permutations: the (position, value) table has 2,000 expected per cell; each
  // position's row is a df-9 test, the whole table df 81 (rows and columns sum to the draws).
  const int64_t n = 10, draws = 20000;
  std::vector<int64_t> table(size_t(n * n), 0);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t k = 0; k < draws; ++k) {
    RandomPermutation(5, uint64_t(k), n, p.data());
    for (int64_t i = 0; i < n; ++i) ++table[size_t(i * n + p[size_t(i)])];
  }
  const double x = ChiSquare(table, double(draws) / double(n));
  std::printf("position x value, n 10: chi-square %.2f (df 81, bound 156.45)\n", x);
  EXPECT_LT(x, 156.45221877690756);
}

TEST(DrawDistributionTest, SignFlipPatternsAreUniform) {
  // 5 participants: 32 sign patterns, 64,000 rows (2,000 expected each): df 31.
  const at::Tensor flips = DrawSignFlips(64000, 5, 23);
  std::vector<int64_t> counts(32, 0);
  auto a = flips.accessor<int8_t, 2>();
  for (int64_t r = 0; r < flips.size(0); ++r) {
    int code = 0;
    for (int64_t j = 0; j < 5; ++j) code = code * 2 + (a[r][j] > 0 ? 1 : 0);
    ++counts[size_t(code)];
  }
  const double x = ChiSquare(counts, 2000);
  std::printf("sign patterns of 5: chi-square %.2f (df 31, bound 83.64)\n", x);
  EXPECT_LT(x, 83.64251584691797);
}

TEST(DrawDistributionTest, BootstrapIndicesAreUniform) {
  // 10,000 resamples of n = 7: 70,000 indices (10,000 expected per value): df 6.
  const at::Tensor idx = ResampleIndices(31, kBootstrapObjectsStream, 0, 10000, 7);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{10000, 7}));
  std::vector<int64_t> counts(7, 0);
  auto a = idx.accessor<int64_t, 2>();
  for (int64_t r = 0; r < idx.size(0); ++r)
    for (int64_t j = 0; j < 7; ++j) ++counts[size_t(a[r][j])];
  const double x = ChiSquare(counts, 10000);
  std::printf("bootstrap indices of 7: chi-square %.2f (df 6, bound 38.26)\n", x);
  EXPECT_LT(x, 38.25833637714585);
}

}  // namespace
}  // namespace cliphba::stats
