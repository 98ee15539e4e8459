// meg::ComputeCurves and GaussianFilter1d against scripts/reference/meg_reference.py
// (np.mean / np.corrcoef / min-max / scipy.ndimage.gaussian_filter1d).
#include "meg/curves.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/npy.h"
#include "tests/meg/common.h"

namespace cliphba::meg {
namespace {

using testing::FromJson;
using testing::MaxAbsDiff;
using testing::ReadJson;
using testing::RefPath;

// The reference selection of every participant: P tensors (T, k, k) of the float64 stack.
std::vector<at::Tensor> Stacks(const nlohmann::json& j) {
  at::Tensor all = io::ReadNpy(RefPath("stack.npy"));
  at::Tensor idx = at::tensor(j["idx"].get<std::vector<int64_t>>(), at::kLong);
  std::vector<at::Tensor> out;
  for (int64_t p = 0; p < all.size(0); ++p)
    out.push_back(all[p].index_select(1, idx).index_select(2, idx));
  return out;
}

TimeAxis Axis(const nlohmann::json& j) {
  return TimeAxis{j["time_start_ms"].get<double>(), j["time_step_ms"].get<double>(),
                  j["timepoints"].get<int64_t>()};
}

TEST(CurvesTest, MatchReferenceRichnessBetaNoise) {
  const nlohmann::json j = ReadJson(RefPath("curves.json"));
  Curves c = ComputeCurves(Stacks(j), Axis(j), j["noise_scale"].get<double>(),
                           j["sigma"].get<double>());
  ASSERT_EQ(c.richness.sizes(), (std::vector<int64_t>{40}));
  EXPECT_EQ(c.richness.scalar_type(), at::kFloat);
  // Outputs are float32 (computed in float64): tolerance 1e-6.
  const double dr = MaxAbsDiff(c.richness, FromJson(j["richness"]));
  const double db = MaxAbsDiff(c.beta, FromJson(j["beta"]));
  const double dn = MaxAbsDiff(c.noise, FromJson(j["noise"]));
  EXPECT_LT(dr, 1e-6) << "richness max|diff| " << dr;
  EXPECT_LT(db, 1e-6) << "beta max|diff| " << db;
  EXPECT_LT(dn, 1e-6) << "noise max|diff| " << dn;
  std::printf("curves max|diff|: richness %.3g beta %.3g noise %.3g\n", dr, db, dn);
}

TEST(CurvesTest, ZeroedBeforeZeroMsPositionIncludingZeroMs) {
  const nlohmann::json j = ReadJson(RefPath("curves.json"));
  const TimeAxis axis = Axis(j);
  ASSERT_EQ(axis.ZeroMsPosition(), j["zero_ms_position"].get<int64_t>());
  Curves c = ComputeCurves(Stacks(j), axis, 1.0);
  const int64_t z = axis.ZeroMsPosition();  // 5: -20, -15, -10, -5 and 0 ms
  EXPECT_EQ(c.richness.narrow(0, 0, z).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(c.beta.narrow(0, 0, z).abs().max().item<float>(), 0.0f);
  EXPECT_GT(c.richness.narrow(0, z, 40 - z).max().item<float>(), 0.0f);
  EXPECT_NEAR(c.noise.max().item<float>(), 1.0, 1e-6);  // min-max times noise_scale 1
  EXPECT_NEAR(c.noise.min().item<float>(), 0.0, 1e-6);
}

TEST(CurvesTest, GaussianFilterEqualsScipyReflectMode) {
  const nlohmann::json g = ReadJson(RefPath("curves.json"))["gaussian"];
  const double d1 =
      MaxAbsDiff(GaussianFilter1d(FromJson(g["x"]), g["sigma"].get<double>()), FromJson(g["y"]));
  // Radius 12 > length 5: the reflection repeats (period 2n), as scipy's.
  const double d2 = MaxAbsDiff(GaussianFilter1d(FromJson(g["short_x"]), g["short_sigma"].get<double>()),
                               FromJson(g["short_y"]));
  EXPECT_LT(d1, 1e-12) << d1;
  EXPECT_LT(d2, 1e-12) << d2;
}

TEST(CurvesTest, ConstantInputsAreDataErrors) {
  TimeAxis axis{0, 5, 4};
  // Constant RDMs over time: the richness curve cannot be min-maxed.
  at::Tensor flat = at::rand({1, 4, 4}, at::kDouble);
  flat = (flat + flat.transpose(1, 2)).expand({4, 4, 4}).clone();
  flat.diagonal(0, 1, 2).zero_();
  EXPECT_THROW(ComputeCurves({flat}, axis, 1.0), DataError);
  // A timepoint whose upper triangle is constant: correlation undefined.
  at::Tensor s = at::rand({4, 4, 4}, at::kDouble);
  s = s + s.transpose(1, 2);
  s[2].fill_(1.0);
  s.diagonal(0, 1, 2).zero_();
  EXPECT_THROW(ComputeCurves({s}, axis, 1.0), DataError);
  // Axis and stacks disagree.
  EXPECT_THROW(ComputeCurves({s}, TimeAxis{0, 5, 3}, 1.0), ConfigError);
}

}  // namespace
}  // namespace cliphba::meg
