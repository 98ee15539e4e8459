// Contrastive pre-training on the shapes world (train/pretrain.h): the world's samples are pure
// functions of (seed, item) with captions that name what is drawn; a small CLIP learns to name
// held-out images' colours far above chance; equal options give equal weights.
#include "train/pretrain.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

#include <set>

#include "core/error.h"
#include "data/synth_cohort.h"
#include "tests/fixture_cases.h"

namespace cliphba::train {
namespace {

model::Clip SmallClip(int64_t seed) {
  torch::manual_seed(uint64_t(seed));
  return model::Clip(model::MakeClipConfig(/*image_resolution=*/32, /*patch_size=*/8,
                                           /*vision_width=*/64, /*vision_layers=*/2,
                                           /*embed_dim=*/32, /*text_width=*/64, /*text_layers=*/1,
                                           model::ClipTokenizer::kVocabSize,
                                           model::ClipTokenizer::kContextLength));
}

const model::ClipTokenizer& Tokenizer() {
  static const model::ClipTokenizer t(testing::SharedDir() +
                                      "/data/clip/bpe_simple_vocab_16e6.txt.gz");
  return t;
}

TEST(ShapesWorldTest, SamplesArePureFunctionsOfSeedAndItem) {
  const data::WorldSample a = data::ShapesWorldSample(7, 3, 32);
  const data::WorldSample b = data::ShapesWorldSample(7, 3, 32);
  EXPECT_TRUE(at::equal(a.rgb, b.rgb));
  EXPECT_EQ(a.caption, b.caption);
  EXPECT_EQ(a.rgb.sizes(), (at::IntArrayRef{32, 32, 3}));
  EXPECT_EQ(a.rgb.scalar_type(), at::kByte);
  EXPECT_FALSE(at::equal(a.rgb, data::ShapesWorldSample(7, 4, 32).rgb));
  EXPECT_FALSE(at::equal(a.rgb, data::ShapesWorldSample(8, 3, 32).rgb));
}

TEST(ShapesWorldTest, CaptionsNameTheAttributesAndCoverTheWorld) {
  const data::WorldVocabulary& v = data::ShapesWorldVocabulary();
  std::set<std::string> captions;
  std::set<int> colours, shapes, textures, sizes;
  for (uint64_t i = 0; i < 2000; ++i) {
    const data::WorldSample s = data::ShapesWorldSample(1, i, 16);
    EXPECT_EQ(s.caption, data::ShapesWorldCaption(s.attributes));
    EXPECT_NE(s.caption.find(v.colours.at(s.attributes.colour)), std::string::npos) << s.caption;
    EXPECT_NE(s.caption.find(v.shapes.at(s.attributes.shape)), std::string::npos) << s.caption;
    captions.insert(s.caption);
    colours.insert(s.attributes.colour);
    shapes.insert(s.attributes.shape);
    textures.insert(s.attributes.texture);
    sizes.insert(s.attributes.size);
  }
  EXPECT_EQ(colours.size(), v.colours.size());
  EXPECT_EQ(shapes.size(), v.shapes.size());
  EXPECT_EQ(textures.size(), v.textures.size());
  EXPECT_EQ(sizes.size(), v.sizes.size());
  EXPECT_GT(captions.size(), 250u);  // of 288: the 2000 draws reach nearly every caption
  EXPECT_EQ(data::ShapesWorldCaption({0, 0, 0, 2}), "a large red circle with wide stripes");
}

TEST(PretrainTest, LearnsToNameHeldOutColoursAndIsDeterministic) {
  PretrainOptions o;
  o.steps = 150;
  o.batch = 48;
  o.lr = 2e-3;
  o.eval_items = 192;
  o.progress_seconds = 1e9;
  model::Clip untrained = SmallClip(3);
  const PretrainSummary before = EvaluateOnShapesWorld(untrained, Tokenizer(), o);
  model::Clip clip = SmallClip(3);
  const PretrainSummary s = PretrainOnShapesWorld(clip, Tokenizer(), o);
  EXPECT_EQ(s.steps, 150);
  EXPECT_EQ(s.n_captions, 288);
  EXPECT_NEAR(s.chance_loss, std::log(48.0), 1e-12);
  EXPECT_LT(s.final_loss, 0.8 * s.first_loss);
  EXPECT_LT(s.final_loss, s.chance_loss);
  // Colour is the attribute learned first: 8 colours, chance 1/8.
  EXPECT_GT(s.colour, 0.5) << "untrained " << before.colour;
  EXPECT_LT(before.colour, 0.35);
  for (const auto& p : clip->parameters()) EXPECT_FALSE(p.requires_grad());

  // Equal options, equal weights (same thread count).
  PretrainOptions few = o;
  few.steps = 4;
  few.eval_items = 0;
  model::Clip a = SmallClip(5), b = SmallClip(5);
  PretrainOnShapesWorld(a, Tokenizer(), few);
  PretrainOnShapesWorld(b, Tokenizer(), few);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool moved = false;
  model::Clip init = SmallClip(5);
  const auto pi = init->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(at::equal(pa[i].value(), pb[i].value())) << pa[i].key();
    moved = moved || !at::equal(pa[i].value(), pi[i].value());
  }
  EXPECT_TRUE(moved);
  // The token embedding is not trained (train/pretrain.h).
  EXPECT_TRUE(at::equal(*a->named_parameters().find("token_embedding.weight"),
                        *init->named_parameters().find("token_embedding.weight")));
}

TEST(PretrainTest, RefusesAModelWithoutTheRealVocabulary) {
  torch::manual_seed(1);
  model::Clip clip(model::MakeClipConfig(32, 8, 64, 1, 32, 64, 1, 4096, 77));
  PretrainOptions o;
  o.steps = 1;
  EXPECT_THROW(PretrainOnShapesWorld(clip, Tokenizer(), o), ConfigError);
}

}  // namespace
}  // namespace cliphba::train
