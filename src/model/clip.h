// OpenAI CLIP, ViT variant (image tower + text transformer), as LibTorch modules.
//
// Dimension legend:
//   N images, K texts, L tokens (vision: grid^2 + 1; text: context_length), W width of a tower,
//   E joint embedding (embed_dim), H = W / 64 heads, R image resolution, P patch size.
//
// Layout and semantics follow openai/CLIP model.py (ViT branch) and CLIP-HBA's variants:
//   - transformers run sequence-first (L, N, W), as OpenAI's (x.permute(1, 0, 2));
//   - QuickGELU activation, LayerNorm eps 1e-5;
//   - the text tower uses a causal mask and pools the EOT token (argmax of the ids).
// Every submodule is registered under its checkpoint name, so named_parameters() lists exactly the
// OpenAI state_dict keys (minus the int64 scalars input_resolution, context_length, vocab_size) in
// the same order. Numbers checked against shared/fixtures/clip/model (README section 1).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/dora.h"
#include "model/precision.h"

namespace cliphba::model {

// Architecture hyper-parameters, as OpenAI's build_model infers them from a state dict.
struct ClipConfig {
  int64_t embed_dim = 0;           // E: text_projection.shape[1]
  int64_t image_resolution = 0;    // R = vision_patch_size * grid_size
  int64_t vision_layers = 0;       // number of visual.*.attn.in_proj_weight keys
  int64_t vision_width = 0;        // visual.conv1.weight.shape[0]
  int64_t vision_patch_size = 0;   // P: visual.conv1.weight.shape[-1]
  int64_t grid_size = 0;           // round(sqrt(visual.positional_embedding.shape[0] - 1))
  int64_t vision_heads = 0;        // vision_width / 64
  int64_t context_length = 0;      // positional_embedding.shape[0]
  int64_t vocab_size = 0;          // token_embedding.weight.shape[0]
  int64_t transformer_width = 0;   // ln_final.weight.shape[0]
  int64_t transformer_heads = 0;   // transformer_width / 64
  int64_t transformer_layers = 0;  // distinct i in transformer.resblocks.{i}.*
};

// A ViT CLIP configuration from its free hyper-parameters, as OpenAI's CLIP constructor derives the
// rest: grid = image_resolution / patch_size, heads = width / 64 (both towers).
// REQUIRES: widths multiples of 64, image_resolution a multiple of patch_size (callers validate).
ClipConfig MakeClipConfig(int64_t image_resolution, int64_t patch_size, int64_t vision_width,
                          int64_t vision_layers, int64_t embed_dim, int64_t text_width,
                          int64_t text_layers, int64_t vocab_size, int64_t context_length = 77);

// Infers the ViT CLIP configuration from tensor shapes (OpenAI build_model, ViT branch).
// Throws DataError naming the key if a required key is missing (e.g. `visual.proj` for a ResNet
// checkpoint), has an unexpected rank, or the shapes are inconsistent (width not a multiple of 64,
// positional embedding not grid^2 + 1 rows, block indices not 0..n-1).
ClipConfig InferClipConfig(const std::vector<std::pair<std::string, at::Tensor>>& state_dict);

// x * sigmoid(1.702 x).
class QuickGELUImpl : public torch::nn::Module {
 public:
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(QuickGELU);

// Pre-LN transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)).
// Keys: attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}, ln_1.*,
// mlp.{c_fc, c_proj}.*, ln_2.*.
// The attention is computed here (not by attn->forward) from attn's in-projection and the current
// out-projection: attn->out_proj, or, once SetOutProjAdapter was called, the DoRA layer registered
// under attn's child name "out_proj" (its Weight(), so gradients reach m, A, B).
class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads);

  // x: (L, N, W); attn_mask: undefined or (L, L) additive (0 / -inf). Returns (L, N, W).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& attn_mask = {});

  // Makes `adapter` the out-projection: registered as attn's child "out_proj" (replacing the
  // Linear, so keys become attn.out_proj.{m, D, delta_D_A, delta_D_B, bias}); attn->out_proj is
  // reset to an empty holder, so attn->forward() can no longer be used (it would throw).
  // REQUIRES: adapter in/out features == width.
  void SetOutProjAdapter(DoraLinear adapter);
  // The DoRA adapter, or an empty holder if the block is not adapted.
  const DoraLinear& out_proj_adapter() const { return adapter_; }
  // The out-projection in use: weight (W, W) and bias (W).
  at::Tensor OutProjWeight() const;
  at::Tensor OutProjBias() const;

  torch::nn::MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr};
  torch::nn::Sequential mlp{nullptr};  // c_fc (4W <- W), gelu (QuickGELU), c_proj (W <- 4W)
  torch::nn::LayerNorm ln_2{nullptr};

 private:
  int64_t width_;
  int64_t heads_;
  DoraLinear adapter_{nullptr};
  torch::nn::Linear c_fc_{nullptr}, c_proj_{nullptr};  // the same modules as in mlp
  QuickGELU gelu_{nullptr};
  // bf16 copies of the frozen GEMM weights under bf16 autocast (model/precision.h)
  FrozenWeightCast in_proj_cast_, out_proj_cast_, c_fc_cast_, c_proj_cast_;
};
TORCH_MODULE(ResidualAttentionBlock);

// A stack of blocks registered as resblocks.{i}.
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads);

  // x: (L, N, W) -> (L, N, W). If block_outputs is non-null, the output of every block (L, N, W) is
  // appended to it (block order).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& attn_mask = {},
                     std::vector<at::Tensor>* block_outputs = nullptr);

  int64_t layers() const { return static_cast<int64_t>(blocks_.size()); }
  ResidualAttentionBlock& block(int64_t i) { return blocks_.at(i); }

  torch::nn::ModuleList resblocks{nullptr};

 private:
  std::vector<ResidualAttentionBlock> blocks_;  // the same modules as resblocks, typed
};
TORCH_MODULE(Transformer);

// The image tower. Keys: class_embedding, positional_embedding, proj, conv1.weight, ln_pre.*,
// transformer.resblocks.{i}.*, ln_post.*.
class VisionTransformerImpl : public torch::nn::Module {
 public:
  VisionTransformerImpl(int64_t input_resolution, int64_t patch_size, int64_t width, int64_t layers,
                        int64_t heads, int64_t output_dim);

  struct Outputs {
    at::Tensor features;  // (N, E) = ln_post(CLS of last block) @ proj
    std::vector<at::Tensor>
        cls_blocks;  // per block (N, W): CLS row of the block output, no ln_post
  };
  // images: (N, 3, R, R) float, R a multiple of the patch size (any R, as the reference: at another
  // resolution than the model's the positional embedding is resized bicubically to the token
  // count). pos_embedding = false: the positional embedding is not added at all (CLIP-HBA's
  // flag). Throws c10::Error on a wrong shape.
  Outputs forward(const at::Tensor& images, bool pos_embedding = true);

  at::Tensor class_embedding;       // (W)
  at::Tensor positional_embedding;  // (grid^2 + 1, W)
  at::Tensor proj;                  // (W, E)
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::LayerNorm ln_pre{nullptr};
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_post{nullptr};

 private:
  int64_t input_resolution_;
};
TORCH_MODULE(VisionTransformer);

struct ImageOutputs {
  at::Tensor features;                     // (N, E)
  std::vector<at::Tensor> block_cls_proj;  // per block (N, E) = block_output[:, 0, :] @ visual.proj
                                           // (NO ln_post), CLIP-HBA-MEG's per-layer features
};

// The whole model. Fresh parameters follow OpenAI's init in distribution (embeddings, projections,
// text blocks; vision blocks keep LibTorch's defaults), drawn from the global torch RNG; load real
// weights with LoadStateDict.
class ClipImpl : public torch::nn::Module {
 public:
  explicit ClipImpl(const ClipConfig& config);

  // images: (N, 3, R, R), normalised. Returns features (N, E) and per-block CLS projections,
  // float32 whatever `precision` (the blocks' GEMMs under it: model/precision.h).
  ImageOutputs EncodeImage(const at::Tensor& images, bool pos_embedding = true,
                           Precision precision = Precision::kFloat32);

  // ids: (K, context_length) int64 token ids (< vocab_size; EOT must be the row maximum).
  // Returns (K, E) float32: ln_final(x[k, argmax(ids[k])]) @ text_projection, the blocks' GEMMs
  // in `precision`. All K texts in one batch.
  at::Tensor EncodeText(const at::Tensor& ids, Precision precision = Precision::kFloat32);

  // image_features (N, E), text_features (K, E) -> (N, K) =
  // logit_scale.exp() * normalize(img) @ normalize(txt)^T (L2 along the last dim; no softmax).
  at::Tensor HbaLogits(const at::Tensor& image_features, const at::Tensor& text_features) const;

  const ClipConfig& config() const { return config_; }

  at::Tensor positional_embedding;  // (context_length, W_text)
  at::Tensor text_projection;       // (W_text, E)
  at::Tensor logit_scale;           // () log of the logit scale
  VisionTransformer visual{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};

 private:
  ClipConfig config_;
};
TORCH_MODULE(Clip);

// Copies `state_dict` into clip's parameters and buffers by name (under NoGradGuard; values are
// converted to the parameter's dtype/device, e.g. fp16 checkpoints into a float32 model).
// The int64 scalars input_resolution, context_length, vocab_size are ignored (as build_model does).
// Throws ONE DataError listing every missing, unexpected, duplicated, mis-shaped or non-floating
// key; nothing is copied in that case.
void LoadStateDict(Clip& clip, const std::vector<std::pair<std::string, at::Tensor>>& state_dict);

}  // namespace cliphba::model
