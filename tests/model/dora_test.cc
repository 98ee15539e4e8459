// DoRA parity with the reference DoRALayer (shared/fixtures/clip/dora, README section 3) and the
// effect of ApplyDora on the tiny CLIP fixture. Tolerances: atol 1e-4, rtol 1e-4 (gradients).
#include "model/dora.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "expect_close.h"
#include "fixture_cases.h"
#include "io/npy.h"
#include "model/clip.h"

namespace cliphba::model {
namespace {

using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

using cliphba::testing::ClipFixtureCases;
using cliphba::testing::ExpectClose;
using cliphba::testing::FixtureCase;

const std::string kFixtures = cliphba::testing::SharedDir() + "/fixtures/clip/";
const std::string kCase0 = kFixtures + "dora/case0/";

// D.npy is stored in Fortran order (numpy saved the transposed view W^T / m as is).
at::Tensor CaseNpy(const std::string& dir, const std::string& name) {
  io::NpyReadOptions options;
  options.allow_fortran_order = true;
  return io::ReadNpy(dir + name, options);
}
at::Tensor Case0(const std::string& name) { return CaseNpy(kCase0, name); }



// One test per case folder of fixtures/clip/dora (its summary.json lists each case's sizes, rank,
// alpha, dropout, seed and loss).
class DoraParity : public ::testing::TestWithParam<FixtureCase> {
 protected:
  nlohmann::json Summary() const { return cliphba::testing::CaseSummary("dora", GetParam()); }
  DoraOptions Options() const {
    const nlohmann::json s = Summary();
    DoraOptions o;
    o.rank = s.at("r").get<int64_t>();
    o.alpha = s.at("dora_alpha").get<double>();
    o.dropout = s.at("dropout_p").get<double>();
    o.train_magnitude = true;
    return o;
  }
  at::Tensor Npy(const std::string& name) const { return CaseNpy(GetParam().dir, name); }
};

TEST_P(DoraParity, OutputWeightAndGradientsMatchTheReference) {
  const nlohmann::json s = Summary();
  DoraLinear layer(Npy("linear_weight.npy"), Npy("linear_bias.npy"), Options());
  EXPECT_DOUBLE_EQ(layer->scaling(), s.at("scaling").get<double>());
  ExpectClose("m (derived)", layer->m, Npy("m.npy"), 1e-6, 1e-6);
  ExpectClose("D (derived)", layer->D, Npy("D.npy"), 1e-6, 1e-6);
  {
    torch::NoGradGuard no_grad;
    layer->delta_D_A.copy_(Npy("A.npy"));
    layer->delta_D_B.copy_(Npy("B.npy"));
    layer->m.copy_(Npy("m.npy"));
    layer->D.copy_(Npy("D.npy"));
  }
  layer->bias.requires_grad_(true);  // the reference layer's bias is a Parameter with a gradient
  layer->eval();
  const at::Tensor x = Npy("x.npy");  // (n_rows, in_features)
  const at::Tensor out = layer->forward(x);
  ExpectClose("out", out, Npy("out.npy"), 1e-4, 1e-4);
  ExpectClose("weight_adapted", layer->Weight(), Npy("weight_adapted.npy"), 1e-4, 1e-4);
  EXPECT_TRUE(at::equal(out, torch::nn::functional::linear(x, layer->Weight(), layer->bias)))
      << "eval forward must equal F::linear with Weight()";
  const at::Tensor loss = out.pow(2).sum();
  const double want = s.at("loss").get<double>();
  EXPECT_NEAR(loss.item<double>(), want, 1e-3 + 1e-5 * std::abs(want));
  loss.backward();
  ExpectClose("grad_m", layer->m.grad(), Npy("grad_m.npy"), 1e-4, 1e-4);
  ExpectClose("grad_A", layer->delta_D_A.grad(), Npy("grad_A.npy"), 1e-4, 1e-4);
  ExpectClose("grad_B", layer->delta_D_B.grad(), Npy("grad_B.npy"), 1e-4, 1e-4);
  ExpectClose("grad_bias", layer->bias.grad(), Npy("grad_bias.npy"), 1e-4, 1e-4);
}

TEST_P(DoraParity, SeededConstructionReproducesReferenceInit) {
  // The reference: torch.manual_seed(seed); nn.Linear(in, out); DoRALayer(...) draws A then B.
  // libtorch's Linear init and kaiming_uniform_ consume the same CPU generator stream.
  const nlohmann::json s = Summary();
  torch::manual_seed(s.at("seed").get<uint64_t>());
  torch::nn::Linear linear(s.at("in_features").get<int64_t>(), s.at("out_features").get<int64_t>());
  DoraLinear layer(linear->weight, linear->bias, Options());
  ExpectClose("linear_weight (seeded)", linear->weight, Npy("linear_weight.npy"), 1e-7, 0);
  ExpectClose("A (seeded)", layer->delta_D_A, Npy("A.npy"), 1e-7, 0);
  ExpectClose("B (seeded)", layer->delta_D_B, Npy("B.npy"), 1e-7, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixture, DoraParity, ::testing::ValuesIn(ClipFixtureCases("dora")),
                         [](const ::testing::TestParamInfo<FixtureCase>& info) {
                           return cliphba::testing::CaseTestName(info.param.name);
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DoraParity);

TEST(DoraParityCases, ArePresent) { EXPECT_FALSE(ClipFixtureCases("dora").empty()); }

TEST(DoraLinearTest, DropoutOnlyInForwardInTrainingMode) {
  DoraOptions options;
  options.rank = 8;
  options.alpha = 16;
  options.dropout = 0.1;
  DoraLinear layer(Case0("linear_weight.npy"), Case0("linear_bias.npy"), options);
  layer->train();
  const at::Tensor x = Case0("x.npy");
  const at::Tensor reference = torch::nn::functional::linear(x, layer->Weight(), layer->bias);
  EXPECT_FALSE(at::allclose(layer->forward(x), reference)) << "train forward drops delta entries";
  const at::Tensor train_weight = layer->Weight();
  layer->eval();
  EXPECT_TRUE(at::equal(train_weight, layer->Weight())) << "Weight() has no dropout in training";
  EXPECT_TRUE(at::equal(layer->forward(x), reference));
}

StateDict LoadTinyClipStateDict() {
  std::ifstream file(kFixtures + "model/tiny_clip_vit_state_dict.pt", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  StateDict sd;
  for (const auto& e : torch::jit::pickle_load(bytes).toGenericDict()) {
    sd.emplace_back(e.key().toStringRef(), e.value().toTensor());
  }
  return sd;
}

Clip LoadTinyClip() {
  const StateDict sd = LoadTinyClipStateDict();
  Clip clip(InferClipConfig(sd));
  LoadStateDict(clip, sd);
  clip->eval();
  return clip;
}

int64_t CountTrainable(Clip& clip) {
  int64_t n = 0;
  for (const auto& p : clip->parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

TEST(ApplyDoraTest, CountsTrainableParametersAndUsesReferenceKeys) {
  Clip clip = LoadTinyClip();
  torch::manual_seed(1);
  ApplyDora(clip, /*last_vision_blocks=*/1, /*last_text_blocks=*/1, /*rank=*/8, /*alpha=*/16,
            /*train_magnitude=*/true);
  // Per block: m (64) + A (8 x 64) + B (64 x 8) = 1088; bias frozen.
  EXPECT_EQ(CountTrainable(clip), 2 * 1088);
  std::vector<std::string> trainable;
  for (const auto& p : clip->named_parameters()) {
    if (p.value().requires_grad()) trainable.push_back(p.key());
  }
  const std::vector<std::string> expected = {
      "visual.transformer.resblocks.1.attn.out_proj.m",
      "visual.transformer.resblocks.1.attn.out_proj.delta_D_A",
      "visual.transformer.resblocks.1.attn.out_proj.delta_D_B",
      "transformer.resblocks.1.attn.out_proj.m",
      "transformer.resblocks.1.attn.out_proj.delta_D_A",
      "transformer.resblocks.1.attn.out_proj.delta_D_B"};
  EXPECT_EQ(trainable, expected);
  const auto buffers = clip->named_buffers();
  EXPECT_NE(buffers.find("visual.transformer.resblocks.1.attn.out_proj.D"), nullptr);
  const auto params = clip->named_parameters();
  EXPECT_NE(params.find("transformer.resblocks.1.attn.out_proj.bias"), nullptr);
  EXPECT_EQ(params.find("transformer.resblocks.1.attn.out_proj.weight"), nullptr);

  Clip direction_only = LoadTinyClip();
  ApplyDora(direction_only, 2, 2, /*rank=*/4, /*alpha=*/8, /*train_magnitude=*/false);
  EXPECT_EQ(CountTrainable(direction_only), 4 * (4 * 64 + 64 * 4));
  EXPECT_THROW(ApplyDora(direction_only, 3, 0, 4, 8, false), ConfigError);
}

TEST(ApplyDoraTest, ZeroDeltaReproducesBaseModelAndGradientsReachAdapters) {
  Clip clip = LoadTinyClip();
  ApplyDora(clip, 2, 2, /*rank=*/8, /*alpha=*/16, /*train_magnitude=*/true);
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : clip->named_parameters()) {
      if (p.key().find("delta_D_A") != std::string::npos) p.value().zero_();
    }
  }
  const at::Tensor images = io::ReadNpy(kFixtures + "model/images.npy");
  const at::Tensor ids = io::ReadNpy(kFixtures + "model/text_input_ids.npy");
  const ImageOutputs out = clip->EncodeImage(images);
  ExpectClose("image_features (DoRA, A=0)", out.features,
              io::ReadNpy(kFixtures + "model/image_features.npy"), 1e-5, 1e-4);
  const at::Tensor text = clip->EncodeText(ids);
  ExpectClose("text_features (DoRA, A=0)", text, io::ReadNpy(kFixtures + "model/text_features.npy"),
              1e-5, 1e-4);

  clip->HbaLogits(out.features, text).pow(2).sum().backward();
  for (const auto& p : clip->named_parameters()) {
    const bool adapter = p.key().find(".out_proj.m") != std::string::npos ||
                         p.key().find("delta_D_") != std::string::npos;
    if (!adapter) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
      continue;
    }
    // With A = 0 the gradient of B is zero (d/dB of B @ A); A and m must receive gradient.
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    if (p.key().find("delta_D_B") == std::string::npos) {
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

}  // namespace
}  // namespace cliphba::model
