#include "rsa/rdm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "rsa/triplet.h"

namespace cliphba::rsa {
namespace {

at::Tensor RandomFeatures(int64_t n, int64_t d, uint64_t seed) {
  CounterRng rng(seed, 0);
  at::Tensor x = at::empty({n, d}, at::kDouble);
  auto a = x.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) a[i][j] = rng.Normal();
  return x;
}

// Direct per-pair definitions (no GEMM) as the oracle.
double DirectDistance(const at::Tensor& x, int64_t i, int64_t j, RdmMetric metric) {
  at::Tensor u = x[i], v = x[j];
  switch (metric) {
    case RdmMetric::kCorrelation: {
      at::Tensor uc = u - u.mean(), vc = v - v.mean();
      return 1 -
             (uc * vc).sum().item<double>() / (uc.norm().item<double>() * vc.norm().item<double>());
    }
    case RdmMetric::kCosine:
      return 1 - (u * v).sum().item<double>() / (u.norm().item<double>() * v.norm().item<double>());
    case RdmMetric::kEuclidean:
      return (u - v).norm().item<double>();
    case RdmMetric::kSpose: {
      const int64_t n = x.size(0);
      double s = 0;
      double gij = (u * v).sum().item<double>();
      for (int64_t k = 0; k < n; ++k) {
        if (k == i || k == j) continue;
        double gik = (u * x[k]).sum().item<double>(), gjk = (v * x[k]).sum().item<double>();
        s += std::exp(gij) / (std::exp(gij) + std::exp(gik) + std::exp(gjk));
      }
      return 1 - s / double(n - 2);
    }
  }
  return NAN;
}

TEST(RdmTest, GemmRdmsEqualDirectDefinitions) {
  at::Tensor x = RandomFeatures(23, 9, 1);
  for (RdmMetric metric : AllMetrics()) {
    CondensedRdm rdm = ComputeRdm(x, metric);
    ASSERT_EQ(rdm.n, 23);
    ASSERT_EQ(rdm.values.numel(), NumPairs(23));
    double max_diff = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < 23; ++i)
      for (int64_t j = i + 1; j < 23; ++j, ++k)
        max_diff = std::max(
            max_diff, std::abs(rdm.values[k].item<double>() - DirectDistance(x, i, j, metric)));
    EXPECT_LT(max_diff, 1e-12) << MetricName(metric);
  }
}

TEST(RdmTest, CondenseAndExpandRoundTrip) {
  CondensedRdm rdm = ComputeRdm(RandomFeatures(10, 4, 2), RdmMetric::kEuclidean);
  at::Tensor square = ExpandSquare(rdm);
  EXPECT_TRUE(at::equal(square, square.t()));
  EXPECT_TRUE(at::equal(CondenseSquare(square, "x").values, rdm.values));
  // Row-major upper triangle: entry 0 is (0,1), entry 9 is (1,2).
  EXPECT_EQ(rdm.values[9].item<double>(), square[1][2].item<double>());
}

TEST(RdmTest, RefusesUndefinedDistances) {
  at::Tensor x = RandomFeatures(5, 4, 3);
  x[2].fill_(1.5);  // constant row: zero variance
  EXPECT_THROW(ComputeRdm(x, RdmMetric::kCorrelation), DataError);
  x[2].zero_();
  EXPECT_THROW(ComputeRdm(x, RdmMetric::kCosine), DataError);
  x[1][1] = NAN;
  EXPECT_THROW(ComputeRdm(x, RdmMetric::kEuclidean), DataError);
  EXPECT_THROW(ParseMetric("manhattan"), ConfigError);
}

TEST(TripletTest, CountsTiesAndChoices) {
  // Three objects: model says {0,1} most similar; reference says {0,1} least dissimilar.
  at::Tensor sim = at::tensor({0.0, 5.0, 1.0, 5.0, 0.0, 2.0, 1.0, 2.0, 0.0}).view({3, 3});
  at::Tensor rdm = at::tensor({0.0, 0.1, 0.9, 0.1, 0.0, 0.5, 0.9, 0.5, 0.0}).view({3, 3});
  TripletResult r = TripletAccuracyAll(sim, rdm);
  EXPECT_EQ(r.n_used, 1);
  EXPECT_EQ(r.n_correct, 1);
  at::Tensor tied = rdm.clone();
  tied[0][1] = tied[1][0] = 0.5;  // {0,1} and {1,2} tie
  EXPECT_EQ(TripletAccuracyAll(sim, tied).n_tied, 1);
  // Behavioural rows (a, b, odd).
  at::Tensor choices = at::tensor({0, 1, 2, 1, 2, 0}, at::kLong).view({2, 3});
  TripletResult c = TripletAccuracyChoices(sim, choices);
  EXPECT_EQ(c.n_used, 2);
  EXPECT_EQ(c.n_correct, 1);
  EXPECT_DOUBLE_EQ(c.accuracy, 0.5);
  EXPECT_THROW(TripletAccuracyChoices(sim, at::tensor({0, 0, 1}, at::kLong).view({1, 3})),
               DataError);
  EXPECT_THROW(TripletAccuracyChoices(sim, at::tensor({0, 1, 3}, at::kLong).view({1, 3})),
               DataError);
}

// The pairs of a subset index the full condensed RDM: equal to reading the expanded square at
// (objects[a], objects[b]) for every a < b, in any subset order; bad indices are refused.
TEST(RdmTest, SubsetPairIndicesReadTheSquare) {
  const int64_t n = 7;
  CounterRng rng(5, 1);
  std::vector<double> v(size_t(NumPairs(n)));
  for (double& x : v) x = rng.Uniform();
  const CondensedRdm full{n, at::tensor(v, at::kDouble)};
  const at::Tensor square = ExpandSquare(full);
  for (const std::vector<int64_t>& subset :
       {std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}, {1, 4, 6}, {6, 2, 5, 0}}) {
    const at::Tensor idx = SubsetPairIndices(n, subset);
    ASSERT_EQ(idx.numel(), NumPairs(int64_t(subset.size())));
    int64_t k = 0;
    for (size_t a = 0; a < subset.size(); ++a)
      for (size_t b = a + 1; b < subset.size(); ++b, ++k)
        EXPECT_EQ(full.values[idx[k].item<int64_t>()].item<double>(),
                  square[subset[a]][subset[b]].item<double>());
  }
  EXPECT_TRUE(at::equal(SubsetPairIndices(n, {0, 1, 2, 3, 4, 5, 6}), at::arange(21, at::kLong)));
  EXPECT_THROW(SubsetPairIndices(n, {0, 7}), DataError);
  EXPECT_THROW(SubsetPairIndices(n, {2, 2}), DataError);
  EXPECT_THROW(SubsetPairIndices(n, {-1, 2}), DataError);
}

}  // namespace
}  // namespace cliphba::rsa
