// PearsonMSELongLoss: values and gradients against the reference fixture
// (shared/fixtures/clip/meg_loss/case0; tolerances from its README: values 1e-5, gradients
// atol 1e-4 rtol 1e-4), plus a float64 finite-difference check of the analytic gradient.
#include "train/meg_loss.h"

#include <gtest/gtest.h>

#include <string>

#include "fixture_cases.h"
#include "io/npy.h"
#include "tests/train/meg_loss_fixture.h"

namespace cliphba::train {
namespace {

using cliphba::testing::ClipFixtureCases;
using cliphba::testing::FixtureCase;

// case0 for the property tests below (they need one realistic input, not every case).
const std::string kCase = cliphba::testing::ClipFixtureDir("meg_loss") + "/case0/";

at::Tensor Load(const std::string& name) { return io::ReadNpy(kCase + name + ".npy"); }

// case0: weights p 1, m 0.15, g 0.1; initial losses 1 (fixture summary.json).
PearsonMSELongLoss Case0Loss() {
  PearsonMSELongLoss loss;
  loss.p_weight = 1.0;
  loss.m_weight = 0.15;
  loss.g_weight = 0.1;
  return loss;
}

// One test per case folder of fixtures/clip/meg_loss; weights, normalisers and the float32
// reference values come from its summary.json entry.
class MegLossParity : public ::testing::TestWithParam<FixtureCase> {
 protected:
  at::Tensor Npy(const std::string& name) const {
    return io::ReadNpy(GetParam().dir + name + ".npy");
  }
  nlohmann::json Summary() const { return cliphba::testing::CaseSummary("meg_loss", GetParam()); }
};

TEST_P(MegLossParity, PearsonRdmAndTimeGeneralizationMatch) {
  at::Tensor rdm = PearsonRdm(Npy("pred_emb"));
  at::Tensor want = Npy("pred_rdm");
  ASSERT_EQ(rdm.sizes(), want.sizes());
  EXPECT_TRUE(at::allclose(rdm, want, 1e-5, 1e-5)) << (rdm - want).abs().max().item<double>();
  EXPECT_EQ(rdm.diagonal(0, 1, 2).abs().max().item<float>(), 0.0f);  // exactly zero
  at::Tensor x = TimeGeneralization(UpperTriangles(want));
  at::Tensor y = TimeGeneralization(UpperTriangles(Npy("target_rdm")));
  EXPECT_TRUE(at::allclose(x, Npy("x_generalization"), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(y, Npy("y_generalization"), 1e-5, 1e-5));
}

TEST_P(MegLossParity, ValuesAndGradientMatch) {
  const nlohmann::json s = Summary();
  const PearsonMSELongLoss loss = testing::LossFromFixture(s);
  at::Tensor emb = Npy("pred_emb").set_requires_grad(true);
  MegLossTerms t = loss(PearsonRdm(emb), Npy("target_rdm"));
  const nlohmann::json& f = s.at("float32");
  EXPECT_NEAR(t.total.item<double>(), f.at("total_loss").get<double>(), 1e-5);
  EXPECT_NEAR(t.pearson.item<double>(), f.at("p_loss").get<double>(), 1e-5);
  EXPECT_NEAR(t.mse.item<double>(), f.at("mse_loss").get<double>(), 1e-5);
  EXPECT_NEAR(t.generalization.item<double>(), f.at("g_loss").get<double>(), 1e-5);
  t.total.backward();
  at::Tensor want = Npy("grad_pred_emb");
  at::Tensor got = emb.grad();
  ASSERT_TRUE(got.defined());
  EXPECT_TRUE(at::allclose(got, want, 1e-4, 1e-4)) << (got - want).abs().max().item<double>();
  EXPECT_GT(want.abs().max().item<double>(), 1e-4);  // not trivially zero
}

INSTANTIATE_TEST_SUITE_P(Fixture, MegLossParity, ::testing::ValuesIn(ClipFixtureCases("meg_loss")),
                         [](const ::testing::TestParamInfo<FixtureCase>& info) {
                           return cliphba::testing::CaseTestName(info.param.name);
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MegLossParity);

TEST(MegLossParityCases, ArePresent) { EXPECT_FALSE(ClipFixtureCases("meg_loss").empty()); }

TEST(MegLossTest, NormalisersDivideEachTerm) {
  at::Tensor emb = Load("pred_emb").to(at::kDouble);
  at::Tensor target = Load("target_rdm").to(at::kDouble);
  PearsonMSELongLoss a = Case0Loss();
  MegLossTerms ta = a(PearsonRdm(emb), target);
  PearsonMSELongLoss b = a;
  b.p0 = 2.0;
  b.m0 = 0.5;
  b.g0 = 4.0;
  MegLossTerms tb = b(PearsonRdm(emb), target);
  const double want = 1.0 * ta.pearson.item<double>() / 2.0 + 0.15 * ta.mse.item<double>() / 0.5 +
                      0.1 * ta.generalization.item<double>() / 4.0;
  EXPECT_NEAR(tb.total.item<double>(), want, 1e-12);
}

TEST(MegLossTest, ConstantGeneralisationGivesZeroCorrelationNotNaN) {
  // Every timepoint has the same predicted RDM (the initial model without noise): the predicted
  // time generalisation is flat, r is taken as 0 and the gradient stays finite.
  at::Tensor one = Load("pred_emb").narrow(0, 0, 1);
  at::Tensor emb = one.repeat({7, 1, 1}).set_requires_grad(true);
  MegLossTerms t = Case0Loss()(PearsonRdm(emb), Load("target_rdm"));
  EXPECT_NEAR(t.generalization.item<double>(), 1.0, 1e-6);
  t.total.backward();
  EXPECT_TRUE(at::isfinite(emb.grad()).all().item<bool>());
  EXPECT_GT(emb.grad().abs().max().item<double>(), 0.0);  // the Pearson and MSE terms still act
}

TEST(MegLossTest, GradientMatchesFiniteDifferencesInFloat64) {
  at::Tensor emb =
      Load("pred_emb").to(at::kDouble).narrow(0, 0, 4).narrow(1, 0, 6).narrow(2, 0, 9).contiguous();
  at::Tensor target = Load("target_rdm")
                          .to(at::kDouble)
                          .narrow(0, 0, 4)
                          .narrow(1, 0, 6)
                          .narrow(2, 0, 6)
                          .contiguous();
  PearsonMSELongLoss loss = Case0Loss();
  loss.p0 = 0.9;
  loss.m0 = 0.3;
  loss.g0 = 0.7;
  at::Tensor x = emb.clone().set_requires_grad(true);
  loss(PearsonRdm(x), target).total.backward();
  at::Tensor g = x.grad();
  const double h = 1e-6;
  double max_err = 0;
  auto acc = emb.accessor<double, 3>();
  for (int64_t t = 0; t < emb.size(0); ++t)
    for (int64_t i = 0; i < emb.size(1); ++i)
      for (int64_t d = 0; d < emb.size(2); ++d) {
        at::Tensor plus = emb.clone(), minus = emb.clone();
        plus[t][i][d] = acc[t][i][d] + h;
        minus[t][i][d] = acc[t][i][d] - h;
        const double fd = (loss(PearsonRdm(plus), target).total.item<double>() -
                           loss(PearsonRdm(minus), target).total.item<double>()) /
                          (2 * h);
        max_err = std::max(max_err, std::abs(fd - g[t][i][d].item<double>()));
      }
  EXPECT_LT(max_err, 1e-7);
  EXPECT_GT(g.abs().max().item<double>(), 1e-3);
}

}  // namespace
}  // namespace cliphba::train
