// The synthetic cohort's participant weights (data/synth_weights.h), and that the cohort records
// them: the ranked design's shared profile and distinct first dimensions, the cohort-wide MEG
// profile, and no individual differences at weight_spread 0 (the benchmarks' null cohorts).
#include "data/synth_weights.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/synth_cohort.h"
#include "tests/data/common.h"

namespace cliphba::data {
namespace {

constexpr uint64_t kSeed = 5;
constexpr uint64_t kStream = 0x14ull << 56;  // any participant stream

config::SynthCohortOptions Options(config::WeightDesign design, double spread, double cohort) {
  config::SynthCohortOptions o;
  o.weight_design = design;
  o.weight_spread = spread;
  o.cohort_weight_spread = cohort;
  return o;
}

std::vector<double> Weights(const config::SynthCohortOptions& o, int64_t p, int64_t d = 6) {
  CounterRng rng(kSeed, kStream | uint64_t(p));
  const at::Tensor w = ParticipantWeights(o, kSeed, p, d, &rng);
  EXPECT_EQ(w.sizes().vec(), std::vector<int64_t>{d});
  EXPECT_NEAR(w.mean().item<double>(), 1.0, 1e-12) << "participant " << p;
  return std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + d);
}

size_t Top(const std::vector<double>& w) {
  return size_t(std::max_element(w.begin(), w.end()) - w.begin());
}

// lognormal (the default): exp(spread N(0, 1)) from the participant's own generator, mean 1.
TEST(SynthWeightsTest, LognormalDrawsDNormalsFromTheParticipantsGenerator) {
  const auto o = Options(config::WeightDesign::kLognormal, 0.6, 0.0);
  CounterRng rng(kSeed, kStream | 3u), copy(kSeed, kStream | 3u);
  const at::Tensor w = ParticipantWeights(o, kSeed, 3, 4, &rng);
  std::vector<double> want(4);
  double mean = 0;
  for (double& v : want) mean += (v = std::exp(0.6 * copy.Normal())) / 4;
  for (int64_t k = 0; k < 4; ++k) EXPECT_DOUBLE_EQ(w[k].item<double>(), want[size_t(k)] / mean);
  EXPECT_EQ(rng.Normal(), copy.Normal()) << "not exactly 4 draws";
}

// ranked: one profile exp(-spread r) for everyone, a distinct first dimension for each of the
// first d participants (participant d repeats participant 0's), the rest in orders of their own.
TEST(SynthWeightsTest, RankedSharesOneProfileWithDistinctFirstDimensions) {
  const auto o = Options(config::WeightDesign::kRanked, 0.85, 0.0);
  std::vector<double> profile(6);
  double mean = 0;
  for (int r = 0; r < 6; ++r) mean += (profile[size_t(r)] = std::exp(-0.85 * r)) / 6;
  std::set<size_t> tops;
  std::set<std::vector<double>> orders;
  for (int64_t p = 0; p < 6; ++p) {
    std::vector<double> w = Weights(o, p);
    tops.insert(Top(w));
    orders.insert(w);
    std::sort(w.begin(), w.end(), std::greater<double>());
    for (size_t r = 0; r < 6; ++r) EXPECT_NEAR(w[r], profile[r] / mean, 1e-12) << p << ", " << r;
  }
  EXPECT_EQ(tops.size(), 6u) << "two of the first 6 participants share their first dimension";
  EXPECT_EQ(orders.size(), 6u);
  EXPECT_EQ(Top(Weights(o, 6)), Top(Weights(o, 0)));
  EXPECT_NE(Weights(o, 6), Weights(o, 0)) << "the order after the first is drawn per participant";
  for (double v : Weights(Options(config::WeightDesign::kRanked, 0.85, 0.0), 0, 1))
    EXPECT_EQ(v, 1.0) << "one dimension";
}

// The cohort profile multiplies every participant's weights; ranked keeps each participant's own
// first dimension (the swap back after the multiply).
TEST(SynthWeightsTest, CohortProfileMultipliesAndRankedKeepsItsFirstDimension) {
  const auto plain = Options(config::WeightDesign::kRanked, 0.7, 0.0);
  const auto with = Options(config::WeightDesign::kRanked, 0.7, 0.5);
  const at::Tensor ct = CohortWeightProfile(with, kSeed, 6);
  const std::vector<double> c(ct.data_ptr<double>(), ct.data_ptr<double>() + 6);
  std::vector<double> sorted = c;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  for (size_t r = 0; r < 6; ++r) EXPECT_NEAR(sorted[r], std::exp(-0.5 * double(r)), 1e-12) << r;
  EXPECT_TRUE(at::equal(CohortWeightProfile(plain, kSeed, 6), at::ones({6}, at::kDouble)));
  int swapped = 0;
  for (int64_t p = 0; p < 6; ++p) {
    const std::vector<double> w0 = Weights(plain, p), w1 = Weights(with, p);
    std::vector<double> want(6);
    double mean = 0;
    for (size_t j = 0; j < 6; ++j) mean += w0[j] * c[j] / 6;
    for (size_t j = 0; j < 6; ++j) want[j] = w0[j] * c[j] / mean;
    swapped += Top(want) != Top(w0);
    std::swap(want[Top(w0)], want[Top(want)]);
    for (size_t j = 0; j < 6; ++j) EXPECT_NEAR(w1[j], want[j], 1e-12) << p << ", " << j;
    EXPECT_EQ(Top(w1), Top(w0)) << "participant " << p << " lost its own first dimension";
  }
  EXPECT_GT(swapped, 0) << "seed 5 must exercise the swap";
  // lognormal: the plain product, no swap.
  const auto ln = Options(config::WeightDesign::kLognormal, 0.6, 0.5);
  CounterRng r0(kSeed, kStream), r1(kSeed, kStream);
  const at::Tensor a =
      ParticipantWeights(Options(config::WeightDesign::kLognormal, 0.6, 0.0), kSeed, 0, 6, &r0);
  const at::Tensor b = ParticipantWeights(ln, kSeed, 0, 6, &r1);
  EXPECT_TRUE(at::allclose(b, a * ct / (a * ct).mean(), 0, 1e-12));
}

// weight_spread 0 plants no individual differences in any design, with or without a cohort
// profile (the null cohorts of scripts/bench_ground_truth.sh run the quickstart's cohort profile).
TEST(SynthWeightsTest, NoSpreadGivesEveryParticipantTheSameWeights) {
  for (auto design : {config::WeightDesign::kLognormal, config::WeightDesign::kRanked})
    for (double cohort : {0.0, 0.5}) {
      const auto o = Options(design, 0.0, cohort);
      const std::vector<double> first = Weights(o, 0);
      for (int64_t p = 1; p < 7; ++p)
        EXPECT_EQ(Weights(o, p), first) << config::Name(design) << ", cohort " << cohort;
    }
}

// The cohort records what it planted: the profile in ground_truth.json, the non-default options
// in its config (the defaults are not recorded, so older cohorts still match their options).
TEST(SynthWeightsTest, TheCohortRecordsTheProfileAndOnlyNonDefaultKeys) {
  namespace fs = std::filesystem;
  auto make = [](const std::string& name, const config::SynthCohortOptions& weights) {
    const fs::path dir = testing::TestDir("synth_weights", name);
    config::SynthCohortOptions o = weights;
    o.out_dir = dir.string();
    o.seed = kSeed;
    o.n_objects = 8;
    o.n_heldout = 2;
    o.n_dims = 6;
    o.n_participants = 3;
    o.n_times = 8;
    o.n_trials = 2;
    GenerateSynthCohort(o, false);
    return testing::ReadJson(dir / "ground_truth.json");
  };
  const auto with = Options(config::WeightDesign::kRanked, 0.7, 0.5);
  const nlohmann::json a = make("defaults", Options(config::WeightDesign::kLognormal, 0.6, 0.0));
  const nlohmann::json b = make("ranked_cohort", with);
  EXPECT_FALSE(a.contains("cohort_semantic_weights"));
  EXPECT_FALSE(a["config"].contains("weight_design"));
  EXPECT_FALSE(a["config"].contains("cohort_weight_spread"));
  const at::Tensor c = CohortWeightProfile(with, kSeed, 6);
  EXPECT_EQ(b["cohort_semantic_weights"].get<std::vector<double>>(),
            std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + 6));
  EXPECT_EQ(b["config"]["weight_design"], "ranked");
  EXPECT_EQ(b["config"]["cohort_weight_spread"], 0.5);
  for (int64_t p = 0; p < 3; ++p)
    EXPECT_EQ(b["participants"][size_t(p)]["semantic_weights"].get<std::vector<double>>(),
              Weights(with, p));
}

}  // namespace
}  // namespace cliphba::data
