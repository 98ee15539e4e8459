// PearsonMSELongLoss: values and gradients against the reference fixture
// (shared/fixtures/clip/meg_loss/case0; tolerances from its README: values 1e-5, gradients
// atol 1e-4 rtol 1e-4), plus a float64 finite-difference check of the analytic gradient.
#include "train/meg_loss.h"

#include <gtest/gtest.h>

#include <string>

#include "io/npy.h"

namespace cliphba::train {
namespace {

const std::string kCase = std::string(CLIPHBA_SHARED_DIR) + "/fixtures/clip/meg_loss/case0/";

at::Tensor Load(const std::string& name) { return io::ReadNpy(kCase + name + ".npy"); }

// case0: weights p 1, m 0.15, g 0.1; initial losses 1 (fixture summary.json).
PearsonMSELongLoss Case0Loss() {
  PearsonMSELongLoss loss;
  loss.p_weight = 1.0;
  loss.m_weight = 0.15;
  loss.g_weight = 0.1;
  return loss;
}

TEST(MegLossTest, PearsonRdmMatchesFixture) {
  at::Tensor emb = Load("pred_emb");
  at::Tensor rdm = PearsonRdm(emb);
  at::Tensor want = Load("pred_rdm");
  ASSERT_EQ(rdm.sizes(), want.sizes());
  EXPECT_TRUE(at::allclose(rdm, want, 1e-5, 1e-5)) << (rdm - want).abs().max().item<double>();
  // The diagonal is exactly zero.
  EXPECT_EQ(rdm.diagonal(0, 1, 2).abs().max().item<float>(), 0.0f);
}

TEST(MegLossTest, TimeGeneralizationMatchesFixture) {
  at::Tensor x = TimeGeneralization(UpperTriangles(Load("pred_rdm")));
  at::Tensor y = TimeGeneralization(UpperTriangles(Load("target_rdm")));
  EXPECT_TRUE(at::allclose(x, Load("x_generalization"), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(y, Load("y_generalization"), 1e-5, 1e-5));
}

TEST(MegLossTest, ValuesAndGradientMatchFixture) {
  at::Tensor emb = Load("pred_emb").set_requires_grad(true);
  MegLossTerms t = Case0Loss()(PearsonRdm(emb), Load("target_rdm"));
  EXPECT_NEAR(t.total.item<double>(), 1.088388442993164, 1e-5);
  EXPECT_NEAR(t.pearson.item<double>(), 0.9627879858016968, 1e-5);
  EXPECT_NEAR(t.mse.item<double>(), 0.3403033912181854, 1e-5);
  EXPECT_NEAR(t.generalization.item<double>(), 0.7455496788024902, 1e-5);
  t.total.backward();
  at::Tensor want = Load("grad_pred_emb");
  at::Tensor got = emb.grad();
  ASSERT_TRUE(got.defined());
  EXPECT_TRUE(at::allclose(got, want, 1e-4, 1e-4)) << (got - want).abs().max().item<double>();
  // Not trivially zero: the fixture gradient has a meaningful scale.
  EXPECT_GT(want.abs().max().item<double>(), 1e-4);
}

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
  const double want = 1.0 * ta.pearson.item<double>() / 2.0 +
                      0.15 * ta.mse.item<double>() / 0.5 +
                      0.1 * ta.generalization.item<double>() / 4.0;
  EXPECT_NEAR(tb.total.item<double>(), want, 1e-12);
}

TEST(MegLossTest, GradientMatchesFiniteDifferencesInFloat64) {
  at::Tensor emb = Load("pred_emb").to(at::kDouble).narrow(0, 0, 4).narrow(1, 0, 6).narrow(2, 0, 9)
                       .contiguous();
  at::Tensor target = Load("target_rdm").to(at::kDouble).narrow(0, 0, 4).narrow(1, 0, 6)
                          .narrow(2, 0, 6).contiguous();
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
