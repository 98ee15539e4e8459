// Parity of the LibTorch CLIP ViT with the reference fixtures (shared/fixtures/clip/model, README
// section 1). Tolerances: atol 1e-5, rtol 1e-4 (the README's, for model outputs).
#include "fixture_cases.h"
#include "model/clip.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/utils.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "expect_close.h"
#include "io/npy.h"

namespace cliphba::model {
namespace {

using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

const std::string kDir = cliphba::testing::SharedDir() + "/fixtures/clip/model/";
constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// The plain-dict torch.save file, read with torch::pickle_load (a GenericDict, insertion order).
StateDict LoadFixtureStateDict() {
  std::ifstream file(kDir + "tiny_clip_vit_state_dict.pt", std::ios::binary);
  EXPECT_TRUE(file.good());
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const c10::IValue value = torch::jit::pickle_load(bytes);
  StateDict state_dict;
  for (const auto& entry : value.toGenericDict()) {
    state_dict.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  return state_dict;
}

at::Tensor Npy(const std::string& name) { return io::ReadNpy(kDir + name); }

// The README's model-output tolerances by default (tests/expect_close.h).
void ExpectClose(const std::string& what, const at::Tensor& actual, const at::Tensor& expected,
                 double atol = kAtol, double rtol = kRtol) {
  cliphba::testing::ExpectClose(what, actual, expected, atol, rtol);
}

class ClipFixtureTest : public ::testing::Test {
 protected:
  // Loaded in SetUp, once per process: an exception there fails the test, whereas gtest reports a
  // failing SetUpTestSuite as "skipped", which ctest does not count as a failure.
  void SetUp() override {
    if (clip_ != nullptr) return;
    state_dict_ = new StateDict(LoadFixtureStateDict());
    clip_ = new Clip(InferClipConfig(*state_dict_));
    LoadStateDict(*clip_, *state_dict_);
    (*clip_)->eval();
  }
  static void TearDownTestSuite() {
    delete clip_;
    delete state_dict_;
  }
  static StateDict* state_dict_;
  static Clip* clip_;
};
StateDict* ClipFixtureTest::state_dict_ = nullptr;
Clip* ClipFixtureTest::clip_ = nullptr;

TEST_F(ClipFixtureTest, InfersTinyConfigFromShapes) {
  const ClipConfig c = (*clip_)->config();
  EXPECT_EQ(c.embed_dim, 32);
  EXPECT_EQ(c.image_resolution, 32);
  EXPECT_EQ(c.vision_patch_size, 8);
  EXPECT_EQ(c.grid_size, 4);
  EXPECT_EQ(c.vision_width, 64);
  EXPECT_EQ(c.vision_layers, 2);
  EXPECT_EQ(c.vision_heads, 1);
  EXPECT_EQ(c.context_length, 77);
  EXPECT_EQ(c.vocab_size, 4096);
  EXPECT_EQ(c.transformer_width, 64);
  EXPECT_EQ(c.transformer_heads, 1);
  EXPECT_EQ(c.transformer_layers, 2);
}

TEST_F(ClipFixtureTest, NamedParametersAreTheCheckpointKeysInOrder) {
  std::ifstream file(kDir + "state_dict_keys.json");
  const nlohmann::json keys = nlohmann::json::parse(file);
  std::vector<std::string> expected;
  for (const auto& entry : keys) {
    if (entry[1].get<std::string>() != "int64") expected.push_back(entry[0].get<std::string>());
  }
  ASSERT_EQ(expected.size(), 62u);
  std::vector<std::string> actual;
  for (const auto& p : (*clip_)->named_parameters()) actual.push_back(p.key());
  EXPECT_EQ(actual, expected);
  EXPECT_EQ((*clip_)->named_buffers().size(), 0u);
}

TEST_F(ClipFixtureTest, ImageFeaturesMatchReference) {
  torch::NoGradGuard no_grad;
  const at::Tensor images = Npy("images.npy");  // (4, 3, 32, 32)
  const ImageOutputs with_pe = (*clip_)->EncodeImage(images, /*pos_embedding=*/true);
  const ImageOutputs without_pe = (*clip_)->EncodeImage(images, /*pos_embedding=*/false);
  ExpectClose("image_features", with_pe.features, Npy("image_features.npy"));
  ExpectClose("image_features_no_posemb", without_pe.features, Npy("image_features_no_posemb.npy"));
  ASSERT_EQ(with_pe.block_cls_proj.size(), 2u);
  ExpectClose("layer_cls_proj", at::stack(with_pe.block_cls_proj), Npy("layer_cls_proj.npy"));
  ExpectClose("layer_cls_proj_no_posemb", at::stack(without_pe.block_cls_proj),
              Npy("layer_cls_proj_no_posemb.npy"));
}

TEST_F(ClipFixtureTest, TextFeaturesAndHbaLogitsMatchReference) {
  torch::NoGradGuard no_grad;
  const at::Tensor ids = Npy("text_input_ids.npy");   // (66, 77) int64
  const at::Tensor text = (*clip_)->EncodeText(ids);  // (66, 32)
  ExpectClose("text_features", text, Npy("text_features.npy"));
  const at::Tensor images = Npy("images.npy");
  const at::Tensor img = (*clip_)->EncodeImage(images).features;
  const at::Tensor img_no_pe = (*clip_)->EncodeImage(images, /*pos_embedding=*/false).features;
  ExpectClose("hba_logits", (*clip_)->HbaLogits(img, text), Npy("hba_logits.npy"));
  ExpectClose("hba_logits_no_posemb", (*clip_)->HbaLogits(img_no_pe, text),
              Npy("hba_logits_no_posemb.npy"));
}

TEST_F(ClipFixtureTest, TextBatchDoesNotChangeSingleRows) {
  torch::NoGradGuard no_grad;
  const at::Tensor ids = Npy("text_input_ids.npy");
  const at::Tensor all = (*clip_)->EncodeText(ids);
  const at::Tensor one = (*clip_)->EncodeText(ids.slice(0, 5, 6));
  ExpectClose("text_features[5] alone", one, all.slice(0, 5, 6));
}

TEST(ClipConfigTest, MakeClipConfigDerivesWhatInferClipConfigReads) {
  // The fixture's free hyper-parameters (shared/fixtures/clip/README.md, section 1).
  const ClipConfig made = MakeClipConfig(32, 8, 64, 2, 32, 64, 2, 4096);
  const ClipConfig read = InferClipConfig(LoadFixtureStateDict());
  EXPECT_EQ(made.embed_dim, read.embed_dim);
  EXPECT_EQ(made.image_resolution, read.image_resolution);
  EXPECT_EQ(made.vision_layers, read.vision_layers);
  EXPECT_EQ(made.vision_width, read.vision_width);
  EXPECT_EQ(made.vision_patch_size, read.vision_patch_size);
  EXPECT_EQ(made.grid_size, read.grid_size);
  EXPECT_EQ(made.vision_heads, read.vision_heads);
  EXPECT_EQ(made.context_length, read.context_length);
  EXPECT_EQ(made.vocab_size, read.vocab_size);
  EXPECT_EQ(made.transformer_width, read.transformer_width);
  EXPECT_EQ(made.transformer_heads, read.transformer_heads);
  EXPECT_EQ(made.transformer_layers, read.transformer_layers);
}

TEST(ClipConfigTest, RejectsNonVitAndMalformedDicts) {
  StateDict sd = LoadFixtureStateDict();
  StateDict no_proj;
  for (const auto& e : sd) {
    if (e.first != "visual.proj") no_proj.push_back(e);
  }
  try {
    InferClipConfig(no_proj);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("visual.proj"), std::string::npos) << e.what();
  }
  StateDict odd_pos = sd;
  for (auto& e : odd_pos) {
    if (e.first == "visual.positional_embedding") e.second = at::zeros({18, 64});
  }
  try {
    InferClipConfig(odd_pos);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("visual.positional_embedding"), std::string::npos);
  }
  StateDict gap = sd;
  for (auto& e : gap) {
    const std::string from = "transformer.resblocks.1.";
    if (e.first.rfind(from, 0) == 0)
      e.first = "transformer.resblocks.2." + e.first.substr(from.size());
  }
  EXPECT_THROW(InferClipConfig(gap), DataError);
}

TEST(ClipLoadTest, OneErrorListsMissingUnexpectedAndMisShapedKeys) {
  StateDict sd = LoadFixtureStateDict();
  Clip clip(InferClipConfig(sd));
  StateDict broken;
  for (const auto& e : sd) {
    if (e.first == "ln_final.bias") continue;  // missing
    if (e.first == "visual.proj") {
      broken.emplace_back(e.first, at::zeros({32, 64}));  // mis-shaped
      continue;
    }
    broken.push_back(e);
  }
  broken.emplace_back("visual.extra_thing", at::zeros({3}));  // unexpected
  const at::Tensor before = clip->logit_scale.detach().clone();
  try {
    LoadStateDict(clip, broken);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("ln_final.bias"), std::string::npos) << message;
    EXPECT_NE(message.find("visual.proj"), std::string::npos) << message;
    EXPECT_NE(message.find("visual.extra_thing"), std::string::npos) << message;
  }
  EXPECT_TRUE(at::equal(clip->logit_scale, before)) << "nothing may be copied on error";
}

TEST(ClipLoadTest, LoadsBitExactWeightsAndIgnoresScalarBuffers) {
  StateDict sd = LoadFixtureStateDict();
  Clip clip(InferClipConfig(sd));
  LoadStateDict(clip, sd);
  const auto params = clip->named_parameters();
  for (const auto& [name, tensor] : sd) {
    if (tensor.scalar_type() == at::kLong) continue;
    EXPECT_TRUE(at::equal(params[name], tensor)) << name;
  }
  EXPECT_NEAR(clip->logit_scale.exp().item<double>(), 14.2985229, 1e-5);

  // OpenAI checkpoints are fp16: the fixture values are fp16-representable, so loading a half copy
  // into the float32 model must give the same bits.
  StateDict half;
  for (const auto& [name, tensor] : sd) {
    half.emplace_back(name, tensor.is_floating_point() ? tensor.to(at::kHalf) : tensor);
  }
  Clip from_half(InferClipConfig(half));
  LoadStateDict(from_half, half);
  const auto half_params = from_half->named_parameters();
  for (const auto& p : params) {
    EXPECT_EQ(half_params[p.key()].scalar_type(), at::kFloat) << p.key();
    EXPECT_TRUE(at::equal(half_params[p.key()], p.value())) << p.key();
  }
}

}  // namespace
}  // namespace cliphba::model

namespace cliphba::model {
namespace {

// The residual block computes attention by hand (head split, 1/sqrt(head_dim) scaling, causal
// mask); LibTorch's own torch::nn::MultiheadAttention with the same weights is the oracle. Every
// fixture model has one head per tower, so a wrong scaling or head interleave would pass them all.
TEST(ResidualAttentionBlockTest, EqualsLibTorchMultiheadAttentionForManyHeads) {
  torch::manual_seed(11);
  struct Shape {
    int64_t width, heads;
  };
  for (Shape s : {Shape{128, 2}, Shape{128, 4}, Shape{256, 8}, Shape{384, 12}, Shape{512, 8},
                  Shape{768, 12}}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE("width " + std::to_string(s.width) + ", heads " + std::to_string(s.heads) +
                   (causal ? ", causal mask" : ""));
      ResidualAttentionBlock block(s.width, s.heads);
      {
        torch::NoGradGuard no_grad;  // non-trivial biases and norms: they must be used correctly
        for (auto& p : block->parameters()) p.normal_(0.0, 0.05);
        block->ln_1->weight.normal_(1.0, 0.1);
        block->ln_2->weight.normal_(1.0, 0.1);
      }
      block->eval();
      const int64_t L = 9, N = 3;
      const at::Tensor x = at::randn({L, N, s.width});
      at::Tensor mask;
      if (causal) mask = at::full({L, L}, -std::numeric_limits<float>::infinity()).triu_(1);
      torch::NoGradGuard no_grad;
      const at::Tensor got = block->forward(x, mask);
      const at::Tensor h = block->ln_1(x);
      const at::Tensor a =
          std::get<0>(block->attn->forward(h, h, h, /*key_padding_mask=*/{},
                                           /*need_weights=*/false, /*attn_mask=*/mask));
      at::Tensor want = x + a;
      want = want + block->mlp->forward(block->ln_2(want));
      const double diff = (got - want).abs().max().item<double>();
      EXPECT_LT(diff, 1e-5) << "max |diff| " << diff;
    }
  }
}

// Another resolution than the model's (the reference accepts any multiple of the patch): the
// positional embedding is resized bicubically to the token count (F.interpolate, align_corners
// false). At the model's own resolution that resize is the identity, so the fixture outputs hold;
// at 48 px (36 patches + CLS vs 17 rows) the model runs, and the resize is ATen's bicubic kernel:
// the embedding added equals upsample_bicubic2d of the (17, 64) table to (37, 64).
TEST_F(ClipFixtureTest, OtherResolutionsResizeThePositionalEmbedding) {
  Clip& clip = *clip_;
  const at::Tensor pe = clip->visual->positional_embedding.detach();
  const at::Tensor same = at::upsample_bicubic2d(pe.unsqueeze(0).unsqueeze(0), {pe.size(0), pe.size(1)},
                                                 false, c10::nullopt, c10::nullopt);
  EXPECT_TRUE(at::equal(same.squeeze(0).squeeze(0), pe)) << "same size must be the identity";
  at::NoGradGuard no_grad;
  const at::Tensor images = at::randn({2, 3, 48, 48});
  const ImageOutputs with = clip->EncodeImage(images, true);
  const ImageOutputs without = clip->EncodeImage(images, false);
  ASSERT_EQ(with.features.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_GT((with.features - without.features).abs().max().item<double>(), 1e-4);
  EXPECT_THROW(clip->EncodeImage(at::randn({1, 3, 36, 36})), c10::Error);  // 36 % 8 != 0
}

}  // namespace
}  // namespace cliphba::model
