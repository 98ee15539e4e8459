#include "stats/bootstrap.h"

#include <gtest/gtest.h>

#include <cstdio>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "rsa/rdm.h"

namespace cliphba::stats {
namespace {

using rsa::Comparison;

const nlohmann::json& Reference() {
  static const nlohmann::json ref = [] {
    std::ifstream in(std::string(CLIPHBA_TEST_DATA_DIR) + "/stats_bootstrap_reference.json");
    return nlohmann::json::parse(in);
  }();
  return ref;
}

at::Tensor Vec(const nlohmann::json& j) {
  std::vector<double> v = j.get<std::vector<double>>();
  return at::tensor(at::ArrayRef<double>(v), at::kDouble);
}

at::Tensor Mat(const nlohmann::json& j) {
  std::vector<at::Tensor> rows;
  for (const auto& r : j) rows.push_back(Vec(r));
  return at::stack(rows);
}

at::Tensor IndexMat(const nlohmann::json& j) {
  std::vector<at::Tensor> rows;
  for (const auto& r : j) {
    std::vector<int64_t> v = r.get<std::vector<int64_t>>();
    rows.push_back(at::tensor(at::ArrayRef<int64_t>(v), at::kLong));
  }
  return at::stack(rows);
}

double Num(const nlohmann::json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

void ExpectNear(const at::Tensor& got, const nlohmann::json& want, double tol, const char* what) {
  ASSERT_EQ(got.numel(), int64_t(want.size())) << what;
  at::Tensor g = got.reshape({-1});
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = Num(want[i]), x = g[int64_t(i)].item<double>();
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(x)) << what << "[" << i << "] = " << x << ", want NaN";
    } else {
      EXPECT_NEAR(x, w, tol) << what << "[" << i << "]";
    }
  }
}

// Compares samples and CIs with one `summarize` block of the reference.
void ExpectMatches(const BootstrapSamples& s, const CurveCi& ci, const nlohmann::json& ref) {
  const double tol = 1e-12;
  ASSERT_EQ(s.size(), int64_t(ref["sample_curves"].size()));
  for (int64_t b = 0; b < s.size(); ++b)
    ExpectNear(s.curves[b], ref["sample_curves"][b], tol, "curve");
  ExpectNear(s.peak_ms, ref["sample_peak_ms"], tol, "sample peak");
  ExpectNear(s.auc, ref["sample_auc"], tol, "sample auc");
  ExpectNear(ci.estimate, ref["estimate"], tol, "estimate");
  ExpectNear(ci.lower, ref["lower"], tol, "lower");
  ExpectNear(ci.upper, ref["upper"], tol, "upper");
  EXPECT_NEAR(ci.peak_ms, ref["peak_ms"].get<double>(), tol);
  EXPECT_NEAR(ci.peak_lower, ref["peak_lower"].get<double>(), tol);
  EXPECT_NEAR(ci.peak_upper, ref["peak_upper"].get<double>(), tol);
  EXPECT_NEAR(ci.auc, ref["auc"].get<double>(), tol);
  EXPECT_NEAR(ci.auc_lower, ref["auc_lower"].get<double>(), tol);
  EXPECT_NEAR(ci.auc_upper, ref["auc_upper"].get<double>(), tol);
  EXPECT_EQ(ci.n_valid, ref["n_valid"].get<int64_t>());
  EXPECT_EQ(ci.n_boot, s.size());
}

// Synthetic participants: a Gaussian bump at 200 ms plus noise. (N, T) and (T).
struct Participants {
  at::Tensor values, times;
};
Participants MakeParticipants(int64_t N, double noise, uint64_t seed) {
  Participants p;
  p.times = at::arange(-100.0, 600.0, 10.0, at::kDouble);
  const int64_t T = p.times.numel();
  p.values = at::empty({N, T}, at::kDouble);
  CounterRng rng(seed, 0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t t = 0; t < T; ++t) {
      const double ms = p.times[t].item<double>();
      p.values[i][t] =
          0.3 * std::exp(-0.5 * std::pow((ms - 200.0) / 60.0, 2)) + noise * rng.Normal();
    }
  return p;
}

// Synthetic objects: a condensed model RDM of n objects and T neural RDMs = gain_t model + noise.
struct Objects {
  at::Tensor model, neural, times;  // (m), (T, m), (T)
};
Objects MakeObjects(int64_t n, uint64_t seed) {
  Objects o;
  const int64_t m = rsa::NumPairs(n), T = 8;
  o.times = at::arange(-100.0, 300.0, 50.0, at::kDouble);
  CounterRng rng(seed, 1);
  o.model = at::empty({m}, at::kDouble);
  for (int64_t k = 0; k < m; ++k) o.model[k] = rng.Uniform();
  o.neural = at::empty({T, m}, at::kDouble);
  for (int64_t t = 0; t < T; ++t) {
    const double gain = t >= 3 && t <= 5 ? 1.0 : 0.1;
    for (int64_t k = 0; k < m; ++k)
      o.neural[t][k] = gain * o.model[k].item<double>() + 0.2 * rng.Normal();
  }
  return o;
}

// ---- helpers ---------------------------------------------------------------------------------

TEST(PercentileTest, EqualsNumpyLinear) {
  const auto& ref = Reference()["percentile"];
  at::Tensor samples = Mat(ref["samples"]);
  for (size_t i = 0; i < ref["q"].size(); ++i) {
    const double q = ref["q"][i];
    ExpectNear(Percentile(samples, q), ref["values"][i], 1e-14, "percentile");
  }
  at::Tensor single = Percentile(Vec(ref["single"]["samples"]), 97.5);
  EXPECT_EQ(single.dim(), 0);
  EXPECT_EQ(single.item<double>(), ref["single"]["value"].get<double>());
}

TEST(PercentileTest, OneDimensionalAndErrors) {
  at::Tensor x = at::tensor({4.0, 1.0, 3.0, 2.0}, at::kDouble);
  EXPECT_DOUBLE_EQ(Percentile(x, 50).item<double>(), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(x, 0).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(x, 100).item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(Percentile(x, 25).item<double>(), 1.75);
  EXPECT_THROW(Percentile(x, 101), ConfigError);
  EXPECT_THROW(Percentile(at::empty({0}, at::kDouble), 50), DataError);
  EXPECT_THROW(Percentile(at::tensor({1.0, std::nan("")}, at::kDouble), 50), DataError);
}

TEST(CurveStatsTest, PeakLatencyTakesFirstMaximum) {
  at::Tensor t = at::tensor({-50.0, 0.0, 50.0, 100.0, 150.0}, at::kDouble);
  EXPECT_EQ(PeakLatency(at::tensor({0.1, 0.5, 0.2, 0.5, 0.0}, at::kDouble), t), 0.0);
  EXPECT_EQ(PeakLatency(at::tensor({0.1, 0.2, 0.3, 0.4, 0.5}, at::kDouble), t), 150.0);
  EXPECT_THROW(PeakLatency(at::tensor({0.1, 0.2}, at::kDouble), t), DataError);
  EXPECT_THROW(PeakLatency(at::tensor({0.1, 0.2, std::nan(""), 0.0, 0.0}, at::kDouble), t),
               DataError);
}

// Area in value x seconds over t >= 0 only: y = 1 on [0, 500] ms is 0.5; y = t / 1000 s is
// 0.125 over [0, 500] ms (trapezoid exact for linear).
TEST(CurveStatsTest, AreaFromZeroInValueSeconds) {
  at::Tensor t = at::arange(-200.0, 501.0, 100.0, at::kDouble);  // -200 .. 500
  EXPECT_NEAR(AreaFromZero(at::ones({8}, at::kDouble), t), 0.5, 1e-15);
  EXPECT_NEAR(AreaFromZero(t / 1000.0, t), 0.125, 1e-15);
  // Without a sample at exactly 0 ms the area starts at the first non-negative time.
  at::Tensor t2 = at::tensor({-30.0, 20.0, 120.0}, at::kDouble);
  EXPECT_NEAR(AreaFromZero(at::tensor({5.0, 1.0, 3.0}, at::kDouble), t2), 0.2, 1e-15);
  EXPECT_EQ(AreaFromZero(at::tensor({5.0, 1.0}, at::kDouble), at::tensor({-20.0, 0.0})), 0.0);
  EXPECT_THROW(AreaFromZero(at::ones({3}), at::tensor({0.0, 10.0, 10.0})), DataError);
}

// ---- participants ----------------------------------------------------------------------------

TEST(BootstrapParticipantsTest, EqualsNumpyReferenceWithGivenIndices) {
  const auto& ref = Reference()["participants"];
  at::Tensor values = Mat(ref["values"]), times = Vec(ref["times_ms"]);
  at::Tensor idx = IndexMat(ref["indices"]);
  const double level = ref["level"];
  BootstrapSamples s = BootstrapParticipantsBlock(values, times, idx);
  CurveCi ci = BootstrapParticipants(values, times, idx, level);
  ExpectMatches(s, ci, ref);
  ExpectNear(ParticipantsEstimate(values, times), ref["estimate"], 1e-12, "estimate");
}

TEST(BootstrapParticipantsTest, BlockIsPureFunctionOfSeedAndIndex) {
  Participants p = MakeParticipants(12, 0.1, 5);
  BootstrapSamples all = BootstrapParticipantsBlock(p.values, p.times, 77, 0, 30);
  BootstrapSamples mid = BootstrapParticipantsBlock(p.values, p.times, 77, 10, 10);
  EXPECT_EQ(mid.first, 10);
  EXPECT_TRUE(at::equal(mid.curves, all.curves.slice(0, 10, 20)));
  EXPECT_TRUE(at::equal(mid.peak_ms, all.peak_ms.slice(0, 10, 20)));
  EXPECT_TRUE(at::equal(mid.auc, all.auc.slice(0, 10, 20)));
  // Indices: row r is stream (seed, family | (first + r)).
  at::Tensor idx = ResampleIndices(77, kBootstrapParticipantsStream, 0, 30, 12);
  EXPECT_TRUE(at::equal(idx.slice(0, 10, 20),
                        ResampleIndices(77, kBootstrapParticipantsStream, 10, 10, 12)));
  EXPECT_TRUE(at::equal(BootstrapParticipantsBlock(p.values, p.times, idx).curves, all.curves));
  // Another seed gives other samples.
  EXPECT_FALSE(
      at::equal(BootstrapParticipantsBlock(p.values, p.times, 78, 0, 30).curves, all.curves));
}

TEST(BootstrapParticipantsTest, MergedBlocksEqualOneRun) {
  Participants p = MakeParticipants(10, 0.1, 6);
  CurveCi whole = BootstrapParticipants(p.values, p.times, 50, 3, 0.95);
  // Blocks as three ranks would compute them, merged in scrambled order.
  std::vector<BootstrapSamples> blocks = {BootstrapParticipantsBlock(p.values, p.times, 3, 34, 16),
                                          BootstrapParticipantsBlock(p.values, p.times, 3, 0, 17),
                                          BootstrapParticipantsBlock(p.values, p.times, 3, 17, 17)};
  BootstrapSamples merged = MergeBootstrapSamples(blocks);
  EXPECT_EQ(merged.first, 0);
  EXPECT_EQ(merged.size(), 50);
  CurveCi ci = SummarizeBootstrap(ParticipantsEstimate(p.values, p.times), p.times, merged, 0.95);
  EXPECT_TRUE(at::equal(ci.lower, whole.lower));
  EXPECT_TRUE(at::equal(ci.upper, whole.upper));
  EXPECT_EQ(ci.peak_lower, whole.peak_lower);
  EXPECT_EQ(ci.peak_upper, whole.peak_upper);
  EXPECT_EQ(ci.auc_lower, whole.auc_lower);
  EXPECT_EQ(ci.auc_upper, whole.auc_upper);
  // Gaps and overlaps are refused.
  EXPECT_THROW(MergeBootstrapSamples({blocks[0], blocks[1]}), DataError);
  EXPECT_THROW(MergeBootstrapSamples({blocks[1], blocks[1]}), DataError);
}

TEST(BootstrapParticipantsTest, CiContainsEstimateForCleanSignal) {
  Participants p = MakeParticipants(20, 0.05, 7);
  CurveCi ci = BootstrapParticipants(p.values, p.times, 400, 11, 0.95);
  EXPECT_EQ(ci.n_boot, 400);
  EXPECT_EQ(ci.n_valid, 400);
  EXPECT_TRUE((ci.lower <= ci.estimate).all().item<bool>());
  EXPECT_TRUE((ci.estimate <= ci.upper).all().item<bool>());
  EXPECT_LE(ci.peak_lower, ci.peak_ms);
  EXPECT_GE(ci.peak_upper, ci.peak_ms);
  EXPECT_NEAR(ci.peak_ms, 200.0, 30.0);
  EXPECT_LE(ci.auc_lower, ci.auc);
  EXPECT_GE(ci.auc_upper, ci.auc);
  // Area of 0.3 exp(-((t - 200) / 60)^2 / 2) over [0, 600] ms ~ 0.3 * 60 sqrt(2 pi) / 1000 s.
  EXPECT_NEAR(ci.auc, 0.3 * 0.06 * std::sqrt(2 * M_PI), 0.005);
  // Percentile CIs of the mean shrink with the noise: width ~ 2 * 1.96 * 0.05 / sqrt(20) = 0.044.
  const double width = (ci.upper - ci.lower).mean().item<double>();
  EXPECT_GT(width, 0.02);
  EXPECT_LT(width, 0.07);
}

// Coverage: over 400 simulated data sets the 90% percentile CI of the mean covers the true mean
// (0.3 at the peak timepoint) in 85-95% of them. The band is ~4 binomial sd wide on each side of
// 90%, and a miscalibrated CI fails it: the same procedure at an 80% or a 97% level covers
// 318 / 385 of 400 here (printed below; a wrong percentile or a biased resampler shifts it too).
int Covered(double level, int reps) {
  int covered = 0;
  for (int r = 0; r < reps; ++r) {
    Participants p = MakeParticipants(25, 0.2, 100 + r);
    at::Tensor peak_col = p.values.slice(1, 30, 31);  // t = 200 ms, true mean 0.3
    CurveCi ci = BootstrapParticipants(peak_col, p.times.slice(0, 30, 31), 300, r, level);
    covered += ci.lower[0].item<double>() <= 0.3 && 0.3 <= ci.upper[0].item<double>();
  }
  return covered;
}

TEST(BootstrapParticipantsTest, CoverageOf400DataSetsIsNominal) {
  const int reps = 400;
  const int covered = Covered(0.9, reps);
  std::printf("[ coverage ] 90%% CI: %d / %d; at 80%%: %d; at 97%%: %d\n", covered, reps,
              Covered(0.8, reps), Covered(0.97, reps));
  EXPECT_GE(covered, 340);  // 85%
  EXPECT_LE(covered, 380);  // 95%
}

TEST(BootstrapParticipantsTest, RejectsBadInput) {
  Participants p = MakeParticipants(5, 0.1, 1);
  at::Tensor bad = p.values.clone();
  bad[2][3] = std::nan("");
  EXPECT_THROW(BootstrapParticipants(bad, p.times, 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times.flip(0), 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times.slice(0, 1), 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapParticipants(p.values[0], p.times, 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times, 0, 1, 0.95), ConfigError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times, 10, 1, 1.0), ConfigError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times, at::full({3, 5}, 5, at::kLong), 0.95),
               DataError);
  EXPECT_THROW(BootstrapParticipants(p.values, p.times, at::zeros({3, 4}, at::kLong), 0.95),
               DataError);
  EXPECT_THROW(BootstrapParticipantsBlock(p.values, p.times, 1, -1, 3), ConfigError);
}

// ---- objects ---------------------------------------------------------------------------------

TEST(BootstrapObjectsTest, EqualsScipyReferenceWithGivenIndices) {
  const auto& ref = Reference()["objects"];
  at::Tensor model = Vec(ref["model"]), neural = Mat(ref["neural"]), times = Vec(ref["times_ms"]);
  at::Tensor idx = IndexMat(ref["indices"]);
  const double level = ref["level"];
  for (auto [name, cmp] :
       {std::pair{"spearman", Comparison::kSpearman}, std::pair{"pearson", Comparison::kPearson}}) {
    SCOPED_TRACE(name);
    BootstrapSamples s = BootstrapObjectsBlock(model, neural, times, cmp, idx);
    CurveCi ci = BootstrapObjects(model, neural, times, idx, level, cmp);
    ExpectMatches(s, ci, ref[name]);
    // Samples 0 (one object) and 1 (one distinct pair: constant model) are undefined.
    EXPECT_TRUE(at::isnan(s.curves[0]).all().item<bool>());
    EXPECT_TRUE(at::isnan(s.curves[1]).all().item<bool>());
    EXPECT_EQ(ci.n_valid, 38);
  }
}

TEST(BootstrapObjectsTest, SquareInputsEqualCondensed) {
  Objects o = MakeObjects(10, 2);
  rsa::CondensedRdm c{10, o.model};
  at::Tensor square_model = rsa::ExpandSquare(c);
  std::vector<at::Tensor> layers;
  for (int64_t t = 0; t < o.neural.size(0); ++t)
    layers.push_back(rsa::ExpandSquare(rsa::CondensedRdm{10, o.neural[t].contiguous()}));
  at::Tensor square_neural = at::stack(layers);
  BootstrapSamples a =
      BootstrapObjectsBlock(o.model, o.neural, o.times, Comparison::kSpearman, 9, 0, 12);
  BootstrapSamples b =
      BootstrapObjectsBlock(square_model, square_neural, o.times, Comparison::kSpearman, 9, 0, 12);
  EXPECT_TRUE(at::allclose(a.curves, b.curves, 0, 1e-15, /*equal_nan=*/true));
  EXPECT_TRUE(
      at::allclose(ObjectsEstimate(square_model, square_neural, o.times, Comparison::kPearson),
                   ObjectsEstimate(o.model, o.neural, o.times, Comparison::kPearson), 0, 1e-15));
}

// With explicit indices containing duplicates the sample equals the correlation over the pairs
// of distinct sampled objects, each listed as often as it was drawn.
TEST(BootstrapObjectsTest, DropsPairsOfAnObjectWithItsCopy) {
  Objects o = MakeObjects(6, 3);
  at::Tensor idx = at::tensor({2, 2, 5, 0, 5, 1}, at::kLong).reshape({1, 6});
  BootstrapSamples s = BootstrapObjectsBlock(o.model, o.neural, o.times, Comparison::kPearson, idx);
  at::Tensor M = rsa::ExpandSquare({6, o.model});
  const std::vector<int64_t> sv = {2, 2, 5, 0, 5, 1};
  for (int64_t t = 0; t < o.neural.size(0); ++t) {
    at::Tensor N = rsa::ExpandSquare({6, o.neural[t].contiguous()});
    std::vector<double> mv, nv;
    for (int a = 0; a < 6; ++a)
      for (int b = a + 1; b < 6; ++b)
        if (sv[a] != sv[b]) {
          mv.push_back(M[sv[a]][sv[b]].item<double>());
          nv.push_back(N[sv[a]][sv[b]].item<double>());
        }
    ASSERT_EQ(mv.size(), 13u);  // 15 position pairs minus (2, 2) and (5, 5)
    const double want = rsa::Pearson(at::tensor(at::ArrayRef<double>(mv), at::kDouble),
                                     at::tensor(at::ArrayRef<double>(nv), at::kDouble));
    EXPECT_NEAR(s.curves[0][t].item<double>(), want, 1e-14);
  }
}

TEST(BootstrapObjectsTest, BlockIsPureFunctionOfSeedAndIndex) {
  Objects o = MakeObjects(12, 4);
  BootstrapSamples all =
      BootstrapObjectsBlock(o.model, o.neural, o.times, Comparison::kSpearman, 21, 0, 30);
  BootstrapSamples mid =
      BootstrapObjectsBlock(o.model, o.neural, o.times, Comparison::kSpearman, 21, 10, 10);
  EXPECT_TRUE(at::equal(mid.curves, all.curves.slice(0, 10, 20)));
  EXPECT_TRUE(at::equal(mid.peak_ms, all.peak_ms.slice(0, 10, 20)));
  EXPECT_TRUE(at::equal(mid.auc, all.auc.slice(0, 10, 20)));
  // The objects' streams differ from the participants'.
  EXPECT_FALSE(at::equal(ResampleIndices(21, kBootstrapObjectsStream, 0, 5, 12),
                         ResampleIndices(21, kBootstrapParticipantsStream, 0, 5, 12)));
}

TEST(BootstrapObjectsTest, CiContainsEstimateForCleanSignal) {
  Objects o = MakeObjects(20, 5);
  CurveCi ci = BootstrapObjects(o.model, o.neural, o.times, 200, 8, 0.95);
  EXPECT_EQ(ci.n_valid, 200);
  EXPECT_TRUE((ci.lower <= ci.estimate).all().item<bool>());
  EXPECT_TRUE((ci.estimate <= ci.upper).all().item<bool>());
  EXPECT_GE(ci.peak_ms, 50.0);  // gain 1 at t = 50, 100, 150 ms
  EXPECT_LE(ci.peak_ms, 150.0);
  EXPECT_GE(ci.peak_lower, 50.0);
  EXPECT_LE(ci.peak_upper, 150.0);
  EXPECT_LE(ci.auc_lower, ci.auc);
  EXPECT_GE(ci.auc_upper, ci.auc);
  EXPECT_GT(ci.lower[4].item<double>(), 0.5);  // strong model fit at the peak
}

// A time-resolved model: timepoint t of every sample equals the static block of model row t
// against neural row t on the same indices; the curves' peak and area follow SamplesFromCurves.
TEST(BootstrapObjectsTest, TimeResolvedModelEqualsStaticBlockPerTimepoint) {
  Objects o = MakeObjects(9, 7);
  const int64_t T = o.neural.size(0);
  // Model rows: the static model plus timepoint-specific noise, so every row differs.
  at::Tensor rows = at::empty({T, o.model.numel()}, at::kDouble);
  for (int64_t t = 0; t < T; ++t) {
    CounterRng r(5, uint64_t(t));
    for (int64_t i = 0; i < o.model.numel(); ++i)
      rows[t][i] = o.model[i].item<double>() + 0.3 * r.Normal();
  }
  const at::Tensor idx = ResampleIndices(4, kBootstrapObjectsStream, 0, 25, 9);
  const BootstrapSamples s =
      BootstrapObjectsTimeResolvedBlock(rows, o.neural, o.times, Comparison::kSpearman, idx);
  ASSERT_EQ(s.curves.sizes(), (at::IntArrayRef{25, T}));
  for (int64_t t = 0; t < T; ++t) {
    const BootstrapSamples one =
        BootstrapObjectsBlock(rows[t].contiguous(), o.neural.slice(0, t, t + 1).contiguous(),
                              o.times.slice(0, t, t + 1).contiguous(), Comparison::kSpearman, idx);
    EXPECT_TRUE(at::allclose(s.curves.select(1, t), one.curves.select(1, 0), 0, 1e-15, true))
        << t;
  }
  const BootstrapSamples again = SamplesFromCurves(s.curves, o.times);
  EXPECT_TRUE(at::allclose(again.peak_ms, s.peak_ms, 0, 0, true));
  EXPECT_TRUE(at::allclose(again.auc, s.auc, 0, 0, true));
  // Equal rows: the static model's block.
  const at::Tensor same = o.model.unsqueeze(0).expand({T, o.model.numel()}).contiguous();
  EXPECT_TRUE(at::allclose(
      BootstrapObjectsTimeResolvedBlock(same, o.neural, o.times, Comparison::kPearson, idx).curves,
      BootstrapObjectsBlock(o.model, o.neural, o.times, Comparison::kPearson, idx).curves, 0, 0,
      true));
  EXPECT_THROW(BootstrapObjectsTimeResolvedBlock(rows.slice(0, 0, T - 1), o.neural, o.times,
                                                 Comparison::kSpearman, idx),
               DataError);
  EXPECT_THROW(SamplesFromCurves(s.curves[0], o.times), DataError);
}

TEST(BootstrapObjectsTest, RejectsBadInput) {
  Objects o = MakeObjects(6, 6);
  EXPECT_THROW(BootstrapObjects(o.model.slice(0, 1), o.neural, o.times, 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapObjects(o.model, o.neural.slice(1, 1), o.times, 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapObjects(o.model, o.neural, o.times.slice(0, 1), 10, 1, 0.95), DataError);
  at::Tensor bad = o.neural.clone();
  bad[1][2] = std::nan("");
  EXPECT_THROW(BootstrapObjects(o.model, bad, o.times, 10, 1, 0.95), DataError);
  at::Tensor asym = rsa::ExpandSquare({6, o.model});
  asym[0][1] = 5.0;
  EXPECT_THROW(BootstrapObjects(asym, o.neural, o.times, 10, 1, 0.95), DataError);
  EXPECT_THROW(BootstrapObjects(o.model, o.neural, o.times, 10, 1, 0.95, Comparison::kKendallTauA),
               ConfigError);
  EXPECT_THROW(BootstrapObjects(o.model, o.neural, o.times, at::full({2, 6}, 6, at::kLong), 0.95),
               DataError);
  // Every sample undefined -> no CI.
  EXPECT_THROW(BootstrapObjects(o.model, o.neural, o.times, at::zeros({4, 6}, at::kLong), 0.95),
               DataError);
}

}  // namespace
}  // namespace cliphba::stats
