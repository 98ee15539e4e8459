// bfloat16 mixed precision (model/precision.h, issue 18) on the reference's tiny CLIP fixture:
// the scopes switch ATen's autocast on and off and restore it; under bf16 the towers' GEMMs run in
// bf16 while LayerNorm, softmax, the output projections and the HBA head stay float32, close to the
// float32 ones (the fixture README's float32 tolerances do not apply: bf16 keeps 8 bits of
// mantissa). A DoRA training step's loss and gradients in bf16 agree with float32 within 1% / a
// cosine of 0.99.
#include "model/precision.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <string>

#include "core/error.h"
#include "fixture_cases.h"
#include "io/npy.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "model/dora.h"

namespace cliphba::model {
namespace {

const std::string kDir = cliphba::testing::SharedDir() + "/fixtures/clip/model/";

Clip FixtureClip() {
  StateDict sd = LoadCheckpoint(kDir + "tiny_clip_vit.safetensors");
  Clip clip(InferClipConfig(sd.entries));
  LoadStateDict(clip, sd.entries);
  clip->eval();
  return clip;
}

double Cosine(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble).flatten(), y = b.to(at::kDouble).flatten();
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}

TEST(PrecisionTest, ParsesTheTwoNamesAndRefusesOthers) {
  EXPECT_EQ(ParsePrecision("float32", "k"), Precision::kFloat32);
  EXPECT_EQ(ParsePrecision("bfloat16", "k"), Precision::kBFloat16);
  EXPECT_STREQ(PrecisionName(Precision::kBFloat16), "bfloat16");
  try {
    ParsePrecision("fp16", "train.behavior.precision");
    FAIL() << "fp16 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.behavior.precision"), std::string::npos);
  }
}

TEST(PrecisionTest, ScopesSwitchAutocastAndRestoreIt) {
  const at::Tensor a = at::randn({8, 8}), b = at::randn({8, 8});
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  {
    AutocastScope f32(Precision::kFloat32);
    EXPECT_EQ(at::mm(a, b).scalar_type(), at::kFloat);
  }
  {
    AutocastScope bf16(Precision::kBFloat16);
    EXPECT_EQ(at::mm(a, b).scalar_type(), at::kBFloat16);
    {
      NoAutocastScope full;
      EXPECT_EQ(at::mm(a, b).scalar_type(), at::kFloat);
    }
    EXPECT_EQ(at::mm(a, b).scalar_type(), at::kBFloat16);  // restored after the inner scope
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(at::mm(a, b).scalar_type(), at::kFloat);
}

TEST(PrecisionTest, FrozenWeightCastIsMadeOnceAndFollowsInPlaceChanges) {
  at::Tensor w = at::randn({16, 8});
  FrozenWeightCast cast;
  EXPECT_TRUE(cast(w).is_same(w)) << "no autocast: the weight itself";
  {
    AutocastScope bf16(Precision::kBFloat16);
    const at::Tensor c1 = cast(w);
    EXPECT_EQ(c1.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::equal(c1, w.to(at::kBFloat16)));
    EXPECT_TRUE(cast(w).is_same(c1)) << "a second call casts again";
    {
      at::NoGradGuard no_grad;
      w.mul_(-2.0);  // changed in place: the copy is stale
    }
    const at::Tensor c2 = cast(w);
    EXPECT_FALSE(c2.is_same(c1));
    EXPECT_TRUE(at::equal(c2, w.to(at::kBFloat16)));
    {
      at::NoGradGuard no_grad;
      w.set_data(at::randn({16, 8}));  // new storage under the same tensor
    }
    const at::Tensor c3 = cast(w);
    EXPECT_TRUE(at::equal(c3, w.to(at::kBFloat16)));
    cast.Reset();
    EXPECT_FALSE(cast(w).is_same(c3)) << "Reset drops the copy";
    const at::Tensor other = at::randn({16, 8});  // another tensor through the same slot
    EXPECT_TRUE(at::equal(cast(other), other.to(at::kBFloat16)));
    {
      NoAutocastScope full;
      EXPECT_TRUE(cast(w).is_same(w));
    }
    const at::Tensor trainable = at::randn({16, 8}).requires_grad_(true);
    EXPECT_TRUE(cast(trainable).is_same(trainable)) << "autocast's own cache handles these";
  }
  EXPECT_TRUE(cast(w).is_same(w));
}

// The model's frozen weights go through FrozenWeightCast, trainable ones through autocast's own
// cache: the same bf16 values either way, so a frozen model and the same model with every weight
// trainable give identical bf16 outputs, also after a weight is overwritten in place (a stale copy
// would show here).
TEST(PrecisionTest, FrozenModelInBf16EqualsTheTrainableOneAfterInPlaceChanges) {
  Clip frozen = FixtureClip(), trainable = FixtureClip();
  for (auto& p : frozen->parameters()) p.set_requires_grad(false);
  for (auto& p : trainable->parameters()) p.set_requires_grad(true);
  const at::Tensor images = io::ReadNpy(kDir + "images.npy");
  auto features = [&](Clip& c) {
    AutocastScope bf16(Precision::kBFloat16);
    return c->EncodeImage(images).features.detach();
  };
  const at::Tensor before = features(frozen);
  EXPECT_TRUE(at::equal(before, features(trainable)));
  EXPECT_TRUE(at::equal(features(frozen), before)) << "the cached copies give the same result";
  {
    at::NoGradGuard no_grad;
    for (Clip* c : {&frozen, &trainable}) {
      auto& block = (*c)->visual->transformer->block(0);
      block->mlp->named_parameters()["c_fc.weight"].mul_(3.0);
      block->attn->in_proj_weight.mul_(0.5);
    }
  }
  const at::Tensor after = features(frozen);
  EXPECT_FALSE(at::equal(after, before));
  EXPECT_TRUE(at::equal(after, features(trainable)));
}

TEST(PrecisionTest, Bf16TowersStayCloseToFloat32AndTheHeadIsFloat32) {
  Clip clip = FixtureClip();
  at::NoGradGuard no_grad;
  const at::Tensor images = io::ReadNpy(kDir + "images.npy");         // (4, 3, 32, 32)
  const at::Tensor ids = io::ReadNpy(kDir + "text_input_ids.npy").to(at::kLong);
  const ImageOutputs f32 = clip->EncodeImage(images);
  const at::Tensor t32 = clip->EncodeText(ids);
  ImageOutputs b16;
  at::Tensor tb16;
  {
    AutocastScope bf16(Precision::kBFloat16);
    b16 = clip->EncodeImage(images);
    tb16 = clip->EncodeText(ids);
  }
  // The outputs are float32 (the output projections run in float32) but differ from the
  // float32 tower's: the blocks' GEMMs did run in bf16.
  EXPECT_EQ(b16.features.scalar_type(), at::kFloat);
  EXPECT_EQ(b16.block_cls_proj[0].scalar_type(), at::kFloat);
  EXPECT_FALSE(at::equal(b16.features, f32.features));
  EXPECT_GT(Cosine(b16.features, f32.features), 0.999);
  EXPECT_GT(Cosine(tb16, t32), 0.999);
  for (size_t l = 0; l < f32.block_cls_proj.size(); ++l)
    EXPECT_GT(Cosine(b16.block_cls_proj[l], f32.block_cls_proj[l]), 0.999) << "block " << l;
  const at::Tensor logits32 = clip->HbaLogits(f32.features, t32);
  const at::Tensor logits16 = clip->HbaLogits(b16.features, tb16);
  EXPECT_EQ(logits16.scalar_type(), at::kFloat);
  EXPECT_LT((logits16 - logits32).abs().max().item<double>(),
            0.02 * logits32.abs().max().item<double>());
  // Outside any scope the model is untouched: float32 again, bit for bit.
  EXPECT_TRUE(at::equal(clip->EncodeImage(images).features, f32.features));
}

TEST(PrecisionTest, Bf16TrainingStepMatchesFloat32LossAndGradients) {
  const at::Tensor images = io::ReadNpy(kDir + "images.npy");
  const at::Tensor ids = io::ReadNpy(kDir + "text_input_ids.npy").to(at::kLong);
  at::Tensor loss[2], grad[2];
  for (int p = 0; p < 2; ++p) {
    Clip clip = FixtureClip();
    torch::manual_seed(3);
    ApplyDora(clip, /*last_vision_blocks=*/2, /*last_text_blocks=*/0, /*rank=*/4, /*alpha=*/4.0,
              /*train_magnitude=*/true);
    at::Tensor text;
    {
      at::NoGradGuard no_grad;
      text = clip->EncodeText(ids);
    }
    const at::Tensor target = at::full({images.size(0), text.size(0)}, 0.5);
    at::Tensor features;
    {
      AutocastScope scope(p == 0 ? Precision::kFloat32 : Precision::kBFloat16);
      features = clip->EncodeImage(images).features;
    }
    loss[p] = (clip->HbaLogits(features, text) - target).pow(2).mean();
    loss[p].backward();
    std::vector<at::Tensor> g;
    for (const auto& q : clip->parameters())
      if (q.requires_grad() && q.grad().defined()) g.push_back(q.grad().flatten());
    grad[p] = at::cat(g);
  }
  EXPECT_EQ(grad[1].scalar_type(), at::kFloat);  // master gradients stay float32
  const double l32 = loss[0].item<double>(), l16 = loss[1].item<double>();
  EXPECT_LT(std::abs(l16 - l32), 0.01 * std::abs(l32)) << l32 << " vs " << l16;
  EXPECT_GT(Cosine(grad[1], grad[0]), 0.99);
}

}  // namespace
}  // namespace cliphba::model
