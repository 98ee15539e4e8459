// The real OpenAI ViT checkpoints' key names and shapes, written out from OpenAI's published
// architecture (clip/model.py: VisionTransformer, Transformer, ResidualAttentionBlock) rather than
// from cliphba's code: a Clip of each published size must have exactly these tensors, and
// InferClipConfig must read the size back from the table alone. Then a ViT-B/32-shaped random
// model (12 heads, 224 px) encodes one image in float32 equal to a float64 evaluation of the same
// weights, so head splitting, scaling and the tower at full size are checked at real shapes.
#include <gtest/gtest.h>
#include <torch/utils.h>  // torch::manual_seed

#include <map>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/clip.h"

namespace cliphba::model {
namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

// OpenAI's state dict of a ViT CLIP (without the three int64 scalars build_model deletes).
Shapes OpenAiVitShapes(int64_t embed, int64_t resolution, int64_t layers, int64_t width,
                       int64_t patch, int64_t text_width, int64_t text_layers) {
  const int64_t grid = resolution / patch;
  Shapes s = {
      {"positional_embedding", {77, text_width}},
      {"text_projection", {text_width, embed}},
      {"logit_scale", {}},
      {"visual.class_embedding", {width}},
      {"visual.positional_embedding", {grid * grid + 1, width}},
      {"visual.proj", {width, embed}},
      {"visual.conv1.weight", {width, 3, patch, patch}},
      {"visual.ln_pre.weight", {width}},
      {"visual.ln_pre.bias", {width}},
      {"visual.ln_post.weight", {width}},
      {"visual.ln_post.bias", {width}},
      {"token_embedding.weight", {49408, text_width}},
      {"ln_final.weight", {text_width}},
      {"ln_final.bias", {text_width}},
  };
  auto blocks = [&s](const std::string& prefix, int64_t n, int64_t w) {
    for (int64_t i = 0; i < n; ++i) {
      const std::string b = prefix + std::to_string(i) + ".";
      s[b + "attn.in_proj_weight"] = {3 * w, w};
      s[b + "attn.in_proj_bias"] = {3 * w};
      s[b + "attn.out_proj.weight"] = {w, w};
      s[b + "attn.out_proj.bias"] = {w};
      s[b + "ln_1.weight"] = {w};
      s[b + "ln_1.bias"] = {w};
      s[b + "mlp.c_fc.weight"] = {4 * w, w};
      s[b + "mlp.c_fc.bias"] = {4 * w};
      s[b + "mlp.c_proj.weight"] = {w, 4 * w};
      s[b + "mlp.c_proj.bias"] = {w};
      s[b + "ln_2.weight"] = {w};
      s[b + "ln_2.bias"] = {w};
    }
  };
  blocks("visual.transformer.resblocks.", layers, width);
  blocks("transformer.resblocks.", text_layers, text_width);
  return s;
}

struct Published {
  const char* name;
  int64_t embed, resolution, layers, width, patch, text_width, text_layers;
};
const Published kPublished[] = {{"ViT-B/32", 512, 224, 12, 768, 32, 512, 12},
                                {"ViT-B/16", 512, 224, 12, 768, 16, 512, 12},
                                {"ViT-L/14", 768, 224, 24, 1024, 14, 768, 12},
                                {"ViT-L/14@336px", 768, 336, 24, 1024, 14, 768, 12}};

TEST(OpenAiShapesTest, InferClipConfigReadsEveryPublishedSizeFromTheTable) {
  for (const Published& p : kPublished) {
    SCOPED_TRACE(p.name);
    std::vector<std::pair<std::string, at::Tensor>> entries;
    for (const auto& [name, shape] : OpenAiVitShapes(p.embed, p.resolution, p.layers, p.width,
                                                     p.patch, p.text_width, p.text_layers))
      entries.emplace_back(name, at::empty(shape, at::kFloat));  // shapes only, never touched
    const ClipConfig c = InferClipConfig(entries);
    EXPECT_EQ(c.embed_dim, p.embed);
    EXPECT_EQ(c.image_resolution, p.resolution);
    EXPECT_EQ(c.vision_layers, p.layers);
    EXPECT_EQ(c.vision_width, p.width);
    EXPECT_EQ(c.vision_patch_size, p.patch);
    EXPECT_EQ(c.vision_heads, p.width / 64);  // OpenAI: heads = width // 64
    EXPECT_EQ(c.transformer_width, p.text_width);
    EXPECT_EQ(c.transformer_heads, p.text_width / 64);
    EXPECT_EQ(c.transformer_layers, p.text_layers);
    EXPECT_EQ(c.vocab_size, 49408);
    EXPECT_EQ(c.context_length, 77);
  }
}

TEST(OpenAiShapesTest, ViTB32HasExactlyOpenAisTensorsAndEncodesLikeFloat64) {
  const Published& p = kPublished[0];
  const Shapes want = OpenAiVitShapes(p.embed, p.resolution, p.layers, p.width, p.patch,
                                      p.text_width, p.text_layers);
  torch::manual_seed(3);
  Clip clip(MakeClipConfig(224, 32, 768, 12, 512, 512, 12, 49408));
  clip->eval();
  Shapes got;
  for (const auto& t : clip->named_parameters()) got[t.key()] = t.value().sizes().vec();
  for (const auto& t : clip->named_buffers()) got[t.key()] = t.value().sizes().vec();
  for (const auto& [name, shape] : want) {
    ASSERT_TRUE(got.count(name)) << "missing " << name;
    EXPECT_EQ(got[name], shape) << name;
  }
  for (const auto& [name, shape] : got) EXPECT_TRUE(want.count(name)) << "not OpenAI's: " << name;
  EXPECT_EQ(clip->config().vision_heads, 12);

  // One 224 px image through the float32 tower and through the same weights in float64.
  at::NoGradGuard no_grad;
  const at::Tensor image = at::randn({1, 3, 224, 224}, at::kFloat);
  const ImageOutputs f32 = clip->EncodeImage(image);
  clip->to(at::kDouble);
  const ImageOutputs f64 = clip->EncodeImage(image.to(at::kDouble));
  const at::Tensor ref = f64.features;
  const double rel = ((f32.features.to(at::kDouble) - ref).abs().max() / ref.abs().max()).item<double>();
  EXPECT_LT(rel, 1e-4) << "float32 features differ from float64 by " << rel << " of their scale";
  ASSERT_EQ(f32.block_cls_proj.size(), 12u);
  for (size_t l = 0; l < 12; ++l) {
    const at::Tensor r = f64.block_cls_proj[l];
    EXPECT_LT(((f32.block_cls_proj[l].to(at::kDouble) - r).abs().max() / r.abs().max()).item<double>(),
              1e-4)
        << "block " << l;
  }
  // The float64 evaluation is not the float32 one in disguise: they differ in low bits.
  EXPECT_GT((f32.features.to(at::kDouble) - ref).abs().max().item<double>(), 0.0);
}

}  // namespace
}  // namespace cliphba::model
