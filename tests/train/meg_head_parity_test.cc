// MegHeadParity: the MEG head (model::MegHead) + the MEG loss (train::PearsonMSELongLoss) against
// the reference ModifiedCLIP forward and backward recorded in shared/fixtures/clip/meg_head/ (its
// README defines the cases). One test per case folder present at run time; everything the test
// needs (time axis, window, loss weights and normalisers, sizes) comes from the case's
// summary.json and array shapes, never from the visible two folders.
//
// Tolerances (the fixture README): forward outputs atol 1e-5 / rtol 1e-4 given the same noise and
// jitter; loss terms 1e-5; gradients atol 1e-5 / rtol 1e-3.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "expect_close.h"
#include "fixture_cases.h"
#include "io/npy.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/meg_head.h"
#include "tests/train/meg_loss_fixture.h"
#include "train/meg_loss.h"

namespace cliphba::train {
namespace {

using cliphba::testing::CaseTestName;
using cliphba::testing::ClipFixtureCases;
using cliphba::testing::ExpectClose;
using cliphba::testing::FixtureCase;

constexpr char kSet[] = "meg_head";


class MegHeadParity : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(MegHeadParity, ForwardLossAndGradientsMatchTheReference) {
  const FixtureCase& c = GetParam();
  const nlohmann::json s = cliphba::testing::ReadJsonFile(c.dir + "summary.json");
  io::NpyReadOptions fortran_ok;
  fortran_ok.allow_fortran_order = true;
  auto npy = [&](const std::string& name) { return io::ReadNpy(c.dir + name + ".npy", fortran_ok); };

  // The base CLIP; only the tensors the fixture has gradients for require them (the reference
  // freezes the CLIP and the head's curves; the fixture enabled these to record their gradients).
  const model::StateDict sd = model::LoadSafetensors(c.dir + "clip.safetensors");
  model::Clip clip(model::InferClipConfig(sd.entries));
  model::LoadStateDict(clip, sd.entries);
  clip->eval();
  for (auto& p : clip->parameters()) p.set_requires_grad(false);
  const int64_t blocks = clip->config().vision_layers;
  const std::string last_out_proj =
      "visual.transformer.resblocks." + std::to_string(blocks - 1) + ".attn.out_proj.weight";
  at::Tensor out_proj_w = clip->named_parameters()[last_out_proj];
  clip->visual->proj.set_requires_grad(true);
  out_proj_w.set_requires_grad(true);

  const at::Tensor wfr = npy("wfr");  // (T_full, L)
  const at::Tensor noise = npy("noise"), jitter = npy("jitter");  // (T, B, 66)
  const int64_t t_full = wfr.size(0);
  ASSERT_EQ(wfr.size(1), blocks) << "Wfr columns vs vision blocks";

  model::MegHeadOptions o;
  o.axis_start_ms = s.at("ms_start").get<double>();
  o.axis_step_ms = s.at("ms_step").get<double>();
  o.axis_size = t_full;
  o.train_start_ms = s.at("train_start").get<double>();
  o.train_step_ms = s.at("train_step").get<double>();
  o.train_end_ms = s.at("train_end").get<double>();
  o.window_ms = s.at("train_window_size").get<double>();
  // The reference's axis length: (ms_end - ms_start) // ms_step + 1.
  ASSERT_EQ(t_full, int64_t(s.at("ms_end").get<double>() - o.axis_start_ms) /
                            int64_t(o.axis_step_ms) +
                        1);

  model::MegHead head(o, blocks, npy("visual_scaler"), npy("beta"), npy("noise_level"));
  head->SetWfr(wfr);
  head->beta.set_requires_grad(true);
  head->visual_scaler.set_requires_grad(true);
  ASSERT_EQ(head->timepoints(), noise.size(0)) << "training timepoints";

  // Forward: per-block CLS projections (no ln_post), L2-normalised prompt features, the head.
  const bool pos_embedding = s.value("pos_embedding", true);
  const model::ImageOutputs img = clip->EncodeImage(npy("images"), pos_embedding);
  const at::Tensor block_cls = at::stack(img.block_cls_proj, 0);  // (L, B, E)
  at::Tensor text = clip->EncodeText(npy("prompt_ids").to(at::kLong));
  text = text / text.norm(2, {1}, true);
  const double scale = clip->logit_scale.exp().item<double>();
  // The reference always draws and adds the noise term (noise_level 0 makes it vanish).
  const model::MegHeadImpl::Outputs out = head->Forward(block_cls, text, scale, noise, jitter);
  const at::Tensor rdm = PearsonRdm(out.embedding);

  ExpectClose("image_features", out.image_features, npy("image_features"), 1e-5, 1e-4);
  ExpectClose("pred_emb", out.embedding, npy("pred_emb"), 1e-5, 1e-4);
  ExpectClose("pred_rdm", rdm, npy("pred_rdm"), 1e-5, 1e-4);

  // The loss with the case's weights and initial-loss normalisers.
  const nlohmann::json& l = s.at("loss");
  const PearsonMSELongLoss loss = testing::LossFromFixture(l);
  const at::Tensor target = npy("target_rdm");
  const MegLossTerms terms = loss(rdm, target);
  EXPECT_NEAR(terms.mse.item<double>(), l.at("mse").get<double>(), 1e-5);
  EXPECT_NEAR(terms.pearson.item<double>(), l.at("pearson").get<double>(), 1e-5);

  // Is the reference's G defined beyond float32 rounding? Its input, the time generalisation of
  // the predicted RDMs, recomputed in float64 from the reference's own pred_emb: when its spread
  // over timepoints is within 64 float32 ulp of its magnitude (the one-hot start: every timepoint
  // has the same RDM up to the 1e-5 jitter), the reference's G, and the gradient G sends into the
  // vision tower, are float32 rounding noise amplified by 1 / spread, which no other
  // implementation reproduces. Our loss calls that side constant: G = 1, no gradient from it.
  const at::Tensor gen64 = TimeGeneralization(UpperTriangles(PearsonRdm(npy("pred_emb").to(at::kDouble))));
  const double spread = (gen64.max() - gen64.min()).item<double>();
  const bool g_defined = spread > 64 * 1.1920929e-07 * gen64.abs().max().item<double>();
  std::printf("  time generalisation spread (float64): %.3g -> G %s\n", spread,
              g_defined ? "defined: compared" : "float32 noise in the reference: not compared");
  const double g_ref = l.at("generalization").get<double>();
  if (g_defined) {
    EXPECT_NEAR(terms.generalization.item<double>(), g_ref, 1e-5);
    EXPECT_NEAR(terms.total.item<double>(), l.at("total").get<double>(), 1e-5);
  } else {
    EXPECT_EQ(terms.generalization.item<double>(), 1.0);
    // The reference's total is its own P, M, G combined as ours combines them.
    EXPECT_NEAR(l.at("total").get<double>(),
                loss.p_weight * l.at("pearson").get<double>() / loss.p0 +
                    loss.m_weight * l.at("mse").get<double>() / loss.m0 +
                    loss.g_weight * g_ref / loss.g0,
                1e-5);
  }

  terms.total.backward();
  ExpectClose("grad wfr", head->wfr.grad(), npy("grad_wfr"), 1e-5, 1e-3);
  ExpectClose("grad beta", head->beta.grad(), npy("grad_beta"), 1e-5, 1e-3);
  ExpectClose("grad visual_scaler", head->visual_scaler.grad(), npy("grad_visual_scaler"), 1e-5,
              1e-3);
  if (g_defined) {
    ExpectClose("grad visual.proj", clip->visual->proj.grad(), npy("grad_visual_proj"), 1e-5,
                1e-3);
    ExpectClose("grad last out_proj.weight", out_proj_w.grad(), npy("grad_last_out_proj_weight"),
                1e-5, 1e-3);
  } else {  // still reached by P and M
    EXPECT_GT(clip->visual->proj.grad().abs().max().item<double>(), 1e-4);
    EXPECT_GT(out_proj_w.grad().abs().max().item<double>(), 1e-4);
  }
  // Where the reference's Wfr gradient is non-zero (the README: jitter-only columns at the
  // one-hot dead point), ours is too, column for column.
  if (s.contains("grad_wfr_nonzero_columns")) {
    for (const auto& col : s.at("grad_wfr_nonzero_columns")) {
      EXPECT_GT(head->wfr.grad().select(1, col.get<int64_t>()).abs().max().item<double>(), 0.0)
          << "Wfr column " << col;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixture, MegHeadParity, ::testing::ValuesIn(ClipFixtureCases(kSet)),
                         [](const ::testing::TestParamInfo<FixtureCase>& info) {
                           return CaseTestName(info.param.name);
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MegHeadParity);

// A fixture root without meg_head cases is an error, not a silent pass.
TEST(MegHeadParityCases, ArePresent) {
  EXPECT_FALSE(ClipFixtureCases(kSet).empty())
      << "no case folders under " << cliphba::testing::ClipFixtureDir(kSet);
}

}  // namespace
}  // namespace cliphba::train
