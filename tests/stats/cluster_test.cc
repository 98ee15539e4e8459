// Cluster permutation test (src/stats/cluster) and Student t distribution (src/stats/tdist)
// against MNE-Python 1.3's permutation_cluster_1samp_test and scipy.stats.t
// (scripts/reference/stats_reference.py -> tests/data_files/stats_reference/), plus unit tests.
#include "stats/cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/npy.h"
#include "reference_fixture.h"
#include "stats/signflip.h"
#include "stats/tdist.h"

namespace cliphba::stats {
namespace {

using reference::CaseNames;
using reference::ExpectClose;
using reference::kRefDir;
using reference::ReadJson;

at::Tensor T(std::vector<double> v) { return at::tensor(v, at::kDouble); }

struct Span {
  int64_t start, stop;
  double mass;
};
void ExpectSpans(const std::vector<Cluster>& got, const std::vector<Span>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].start, want[i].start) << "cluster " << i;
    EXPECT_EQ(got[i].stop, want[i].stop) << "cluster " << i;
    EXPECT_NEAR(got[i].mass, want[i].mass, 1e-12) << "cluster " << i;
    EXPECT_TRUE(std::isnan(got[i].p));
  }
}

// ---- FindClusters ----

TEST(FindClustersTest, ClustersTouchingBothEnds) {
  ExpectSpans(FindClusters(T({3, 4, 0, 1, 5, 6}), 2.0, Tail::kUpper), {{0, 2, 7}, {4, 6, 11}});
  ExpectSpans(FindClusters(T({3, 4, 5}), 2.0, Tail::kUpper), {{0, 3, 12}});  // the whole series
}

TEST(FindClustersTest, SinglePointClusters) {
  ExpectSpans(FindClusters(T({0, 3, 0, 0, 2.5, 0}), 2.0, Tail::kUpper), {{1, 2, 3}, {4, 5, 2.5}});
  ExpectSpans(FindClusters(T({9}), 2.0, Tail::kUpper), {{0, 1, 9}});
}

TEST(FindClustersTest, ValuesExactlyAtTheThresholdAreOutside) {
  // MNE uses strict comparisons: t > thr, t < -thr (tail 0), t < thr (tail -1).
  ExpectSpans(FindClusters(T({2, 3, 2, 2.0000001}), 2.0, Tail::kUpper),
              {{1, 2, 3}, {3, 4, 2.0000001}});
  ExpectSpans(FindClusters(T({-2, 2, -3, 2}), 2.0, Tail::kTwo), {{2, 3, -3}});
  ExpectSpans(FindClusters(T({-2, -2.5, -2}), -2.0, Tail::kLower), {{1, 2, -2.5}});
  // Threshold 0: zeros are in no cluster.
  ExpectSpans(FindClusters(T({0, 1, 0, -1}), 0.0, Tail::kTwo), {{1, 2, 1}, {3, 4, -1}});
}

TEST(FindClustersTest, LowerTailUsesTheSignedThreshold) {
  std::vector<double> t = {-3, -4, 1, 5, -2.5, 0};
  ExpectSpans(FindClusters(T(t), -2.0, Tail::kLower), {{0, 2, -7}, {4, 5, -2.5}});
  EXPECT_THROW(FindClusters(T(t), 2.0, Tail::kLower), ConfigError);
  EXPECT_THROW(FindClusters(T(t), -2.0, Tail::kUpper), ConfigError);
  EXPECT_THROW(FindClusters(T(t), -2.0, Tail::kTwo), ConfigError);
  EXPECT_THROW(FindClusters(T(t), std::nan(""), Tail::kTwo), ConfigError);
}

TEST(FindClustersTest, TwoTailedListsPositiveClustersFirstThenNegative) {
  // Signs do not merge: a positive run next to a negative one forms two clusters.
  ExpectSpans(FindClusters(T({-3, 3, 3, -4, 0, 5, -3}), 2.0, Tail::kTwo),
              {{1, 3, 6}, {5, 6, 5}, {0, 1, -3}, {3, 4, -4}, {6, 7, -3}});
}

TEST(FindClustersTest, EmptyAndNaN) {
  EXPECT_TRUE(FindClusters(T({0.1, -0.5, 1.9}), 2.0, Tail::kTwo).empty());
  EXPECT_TRUE(FindClusters(at::empty({0}, at::kDouble), 2.0, Tail::kTwo).empty());
  const double nan = std::nan("");
  ExpectSpans(FindClusters(T({3, nan, 3}), 2.0, Tail::kUpper), {{0, 1, 3}, {2, 3, 3}});
  EXPECT_THROW(FindClusters(at::ones({2, 2}, at::kDouble), 2.0, Tail::kTwo), DataError);
}

// ---- small end-to-end pieces ----

TEST(ClusterTestTest, ObservedStatisticAndPValuesPerTail) {
  std::vector<Cluster> cs = {{0, 1, 4.0, 0}, {2, 3, 9.0, 0}, {5, 6, -12.0, 0}};
  EXPECT_EQ(ObservedClusterStat(cs, Tail::kTwo), 12.0);
  EXPECT_EQ(ObservedClusterStat(cs, Tail::kUpper), 9.0);
  EXPECT_EQ(ObservedClusterStat(cs, Tail::kLower), -12.0);
  EXPECT_THROW(ObservedClusterStat({}, Tail::kTwo), DataError);
  at::Tensor h0 = T({12.0, -10.0, 4.0, 0.0, -13.0});
  SetClusterPValues(h0, Tail::kTwo, &cs);  // |h0| >= |m|
  EXPECT_EQ(cs[0].p, 4.0 / 5);
  EXPECT_EQ(cs[1].p, 3.0 / 5);
  EXPECT_EQ(cs[2].p, 2.0 / 5);
  SetClusterPValues(h0, Tail::kUpper, &cs);  // h0 >= m
  EXPECT_EQ(cs[0].p, 2.0 / 5);
  EXPECT_EQ(cs[1].p, 1.0 / 5);
  SetClusterPValues(h0, Tail::kLower, &cs);  // h0 <= m
  EXPECT_EQ(cs[2].p, 1.0 / 5);
  EXPECT_EQ(cs[0].p, 4.0 / 5);
}

TEST(ClusterTestTest, BlocksConcatenateToTheWhole) {
  at::Tensor x = at::randn({10, 40}, at::kDouble);
  x.slice(1, 10, 20).add_(1.0);
  at::Tensor flips = DrawSignFlips(90, 10, 21);
  ClusterTestResult whole = ClusterTest(x, 1.0, Tail::kTwo, flips);
  ASSERT_FALSE(whole.clusters.empty());
  std::vector<double> h0(90);
  AccumulateMaxClusterStat(x, DrawSignFlips(45, 10, 21, 0), 1.0, Tail::kTwo, h0.data());
  AccumulateMaxClusterStat(x, DrawSignFlips(45, 10, 21, 45), 1.0, Tail::kTwo, h0.data() + 45);
  for (int k = 0; k < 90; ++k) EXPECT_EQ(h0[k], whole.h0[k + 1].item<double>()) << k;
  // Each null entry is the signed cluster mass of largest |mass| of that flip (0 if none).
  at::Tensor ft = FlippedT(x, flips);
  for (int k = 0; k < 90; ++k) {
    double best = 0;
    for (const Cluster& c : FindClusters(ft[k], 1.0, Tail::kTwo))
      if (std::fabs(c.mass) > std::fabs(best)) best = c.mass;
    EXPECT_NEAR(h0[k], best, 1e-12) << k;
  }
}

TEST(ClusterTestTest, NoObservedClusterGivesEmptyResults) {
  at::Tensor x = at::randn({8, 20}, at::kDouble);
  ClusterTestResult r = ClusterTest(x, 1e6, Tail::kTwo, DrawSignFlips(10, 8, 1));
  EXPECT_TRUE(r.clusters.empty());
  EXPECT_EQ(r.h0.numel(), 0);
  EXPECT_EQ(r.t_obs.numel(), 20);
  EXPECT_THROW(ClusterTest(x, -1.0, Tail::kTwo, DrawSignFlips(10, 8, 1)), ConfigError);
  EXPECT_THROW(ClusterTest(x, 1.0, Tail::kTwo, DrawSignFlips(10, 7, 1)), DataError);
}

// ---- MNE fixtures ----

TEST(ClusterTestTest, EqualsMnePermutationCluster1sampTest) {
  int n_cases = 0, n_clusters = 0;
  for (const std::string& name : CaseNames()) {
    SCOPED_TRACE(name);
    nlohmann::json ref = ReadJson(kRefDir + name + ".json");
    at::Tensor data = io::ReadNpy(kRefDir + ref["data"].get<std::string>());
    at::Tensor flips = io::ReadNpy(kRefDir + ref["flips"].get<std::string>());
    ASSERT_EQ(data.size(0), ref["n_participants"].get<int64_t>());
    ASSERT_EQ(flips.size(0), ref["n_flips"].get<int64_t>());
    const Tail tail = static_cast<Tail>(ref["tail"].get<int>());
    const double threshold = ref["threshold"];
    if (ref["threshold_is_default"].get<bool>()) {
      // MNE's default threshold comes from scipy's t.ppf, itself only ~1e-10 accurate; the test
      // uses MNE's exact value below.
      ExpectClose(ClusterFormingThreshold(0.05, data.size(0), tail), threshold, 1e-9, "threshold");
    }
    ClusterTestResult r = ClusterTest(data, threshold, tail, flips);
    const auto& c = ref["cluster"];
    ASSERT_EQ(r.t_obs.size(0), static_cast<int64_t>(c["t_obs"].size()));
    for (int64_t j = 0; j < r.t_obs.size(0); ++j)
      ExpectClose(r.t_obs[j].item<double>(), c["t_obs"][j], 1e-12,
                  "t_obs[" + std::to_string(j) + "]");
    ASSERT_EQ(r.clusters.size(), c["clusters"].size());
    for (size_t i = 0; i < r.clusters.size(); ++i) {
      const auto& want = c["clusters"][i];
      EXPECT_EQ(r.clusters[i].start, want["start"].get<int64_t>()) << "cluster " << i;
      EXPECT_EQ(r.clusters[i].stop, want["stop"].get<int64_t>()) << "cluster " << i;
      ExpectClose(r.clusters[i].mass, want["mass"], 1e-10, "mass of cluster " + std::to_string(i));
      EXPECT_EQ(r.clusters[i].p, want["p"].get<double>()) << "p of cluster " << i;
      ++n_clusters;
    }
    ASSERT_EQ(r.h0.numel(), static_cast<int64_t>(c["h0"].size()));
    for (int64_t k = 0; k < r.h0.numel(); ++k)
      ExpectClose(r.h0[k].item<double>(), c["h0"][k], 1e-10, "h0[" + std::to_string(k) + "]");
    ++n_cases;
  }
  EXPECT_GE(n_cases, 4);
  EXPECT_GE(n_clusters, 10);
}

// The comparison above can fail: reversing the flip rows permutes H0 away from MNE's.
TEST(ClusterTestTest, ReorderedFlipsDoNotReproduceMne) {
  nlohmann::json ref = ReadJson(kRefDir + "two_sided_multi.json");
  at::Tensor data = io::ReadNpy(kRefDir + ref["data"].get<std::string>());
  at::Tensor flips = io::ReadNpy(kRefDir + ref["flips"].get<std::string>()).flip({0});
  ClusterTestResult r = ClusterTest(data, ref["threshold"], Tail::kTwo, flips);
  int differ = 0;
  for (int64_t k = 1; k < r.h0.numel(); ++k)
    differ += std::fabs(r.h0[k].item<double>() - ref["cluster"]["h0"][k].get<double>()) > 1e-6;
  EXPECT_GT(differ, 100);
}

// ---- Student t ----

// scipy.stats.t.cdf and a 40-digit mpmath evaluation agree to ~1e-15; we match both at 1e-12.
TEST(StudentTTest, CdfEqualsScipyAndMpmath) {
  nlohmann::json ref = ReadJson(kRefDir + "tdist.json");
  ASSERT_GE(ref["cdf"].size(), 40u);
  for (const auto& e : ref["cdf"]) {
    const double df = e["df"], t = e["t"], scipy = e["value"], exact = e["mpmath"];
    const double got = StudentTCdf(t, df);
    EXPECT_LE(std::fabs(got - exact), 1e-12 * std::fabs(exact)) << "cdf(" << t << ", " << df << ")";
    EXPECT_LE(std::fabs(got - scipy), 1e-12 * std::fabs(scipy)) << "cdf(" << t << ", " << df << ")";
  }
}

// scipy 1.10's t.ppf (cdflib's stdtrit) is accurate to only ~1e-10 relative (its own t.cdf of its
// result misses p by that much), so the quantile is held to 1e-12 against mpmath and to 1e-8
// against scipy.
TEST(StudentTTest, QuantileEqualsMpmathAndScipy) {
  nlohmann::json ref = ReadJson(kRefDir + "tdist.json");
  ASSERT_GE(ref["ppf"].size(), 40u);
  for (const auto& e : ref["ppf"]) {
    const double df = e["df"], p = e["p"], scipy = e["value"], exact = e["mpmath"];
    const double got = StudentTQuantile(p, df);
    EXPECT_LE(std::fabs(got - exact), 1e-12 * std::max(1.0, std::fabs(exact)))
        << "ppf(" << p << ", " << df << ")";
    EXPECT_LE(std::fabs(got - scipy), 1e-8 * std::max(1.0, std::fabs(scipy)))
        << "ppf(" << p << ", " << df << ")";
  }
}

TEST(StudentTTest, EdgeCasesAndRoundTrip) {
  EXPECT_EQ(StudentTCdf(0.0, 5), 0.5);
  EXPECT_EQ(StudentTCdf(-INFINITY, 5), 0.0);
  EXPECT_EQ(StudentTCdf(INFINITY, 5), 1.0);
  EXPECT_EQ(StudentTQuantile(0.5, 7), 0.0);
  EXPECT_EQ(StudentTQuantile(0.0, 7), -INFINITY);
  EXPECT_EQ(StudentTQuantile(1.0, 7), INFINITY);
  EXPECT_NEAR(StudentTCdf(1.0, 1), 0.75, 1e-15);              // Cauchy
  EXPECT_NEAR(StudentTQuantile(0.975, 1e6), 1.959966, 1e-5);  // -> normal
  for (double df : {1.0, 2.5, 11.0, 300.0})
    for (double p : {1e-8, 0.02, 0.3, 0.8, 0.999}) {
      const double t = StudentTQuantile(p, df);
      EXPECT_NEAR(StudentTCdf(t, df), p, 1e-13 * std::max(p, 1e-3)) << p << " " << df;
    }
  EXPECT_THROW(StudentTCdf(1.0, 0.0), DataError);
  EXPECT_THROW(StudentTCdf(std::nan(""), 3.0), DataError);
  EXPECT_THROW(StudentTQuantile(1.5, 3.0), DataError);
  EXPECT_THROW(StudentTQuantile(0.5, -1.0), DataError);
}

TEST(StudentTTest, ClusterFormingThresholdIsMnesDefault) {
  // -t.ppf(0.025, 11) = 2.2009851600916397, -t.ppf(0.05, 11) = 1.7958848187040442 (mpmath; scipy
  // gives 2.200985160082949 and 1.7958848187036696, ~1e-12 off).
  EXPECT_NEAR(ClusterFormingThreshold(0.05, 12, Tail::kTwo), 2.2009851600916397, 1e-13);
  EXPECT_NEAR(ClusterFormingThreshold(0.05, 12, Tail::kUpper), 1.7958848187040442, 1e-13);
  EXPECT_NEAR(ClusterFormingThreshold(0.05, 12, Tail::kLower), -1.7958848187040442, 1e-13);
  EXPECT_THROW(ClusterFormingThreshold(0.0, 12, Tail::kTwo), ConfigError);
  EXPECT_THROW(ClusterFormingThreshold(0.05, 1, Tail::kTwo), ConfigError);
}

}  // namespace
}  // namespace cliphba::stats
