#include "model/clip.h"

#include <torch/nn/init.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "model/precision.h"
#include "model/quick_gelu.h"

namespace cliphba::model {
namespace {

using Entries = std::vector<std::pair<std::string, at::Tensor>>;

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ShapeString(at::IntArrayRef shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// The tensor stored under `key`, with `dim` dimensions. Throws DataError otherwise.
const at::Tensor& Require(const Entries& sd, const std::string& key, int64_t dim,
                          const std::string& hint = "") {
  for (const auto& [name, tensor] : sd) {
    if (name != key) continue;
    CLIPHBA_CHECK(tensor.defined() && tensor.dim() == dim, DataError,
                  "CLIP state dict: key '" + key + "' should have " + std::to_string(dim) +
                      " dimensions, got shape " +
                      (tensor.defined() ? ShapeString(tensor.sizes()) : "<undefined>"));
    return tensor;
  }
  throw DataError("CLIP state dict: missing key '" + key + "'" + hint);
}

// Number of blocks under `prefix` ("visual.transformer.resblocks." or "transformer.resblocks."),
// checking that their indices are exactly 0..n-1.
int64_t CountBlocks(const Entries& sd, const std::string& prefix) {
  std::set<int64_t> indices;
  for (const auto& [name, tensor] : sd) {
    if (!StartsWith(name, prefix)) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    const std::string index = rest.substr(0, dot);
    CLIPHBA_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
                  DataError, "CLIP state dict: key '" + name + "' has no block index");
    indices.insert(std::stoll(index));
  }
  const int64_t n = static_cast<int64_t>(indices.size());
  CLIPHBA_CHECK(n > 0, DataError, "CLIP state dict: no keys '" + prefix + "{i}.*'");
  CLIPHBA_CHECK(*indices.rbegin() == n - 1, DataError,
                "CLIP state dict: block indices of '" + prefix + "{i}' are not 0.." +
                    std::to_string(n - 1) + " (largest is " + std::to_string(*indices.rbegin()) +
                    ")");
  return n;
}

int64_t HeadsOf(int64_t width, const std::string& key) {
  CLIPHBA_CHECK(width > 0 && width % 64 == 0, DataError,
                "CLIP state dict: width " + std::to_string(width) + " from '" + key +
                    "' is not a positive multiple of 64 (heads = width / 64)");
  return width / 64;
}

}  // namespace

ClipConfig MakeClipConfig(int64_t image_resolution, int64_t patch_size, int64_t vision_width,
                          int64_t vision_layers, int64_t embed_dim, int64_t text_width,
                          int64_t text_layers, int64_t vocab_size, int64_t context_length) {
  ClipConfig c;
  c.embed_dim = embed_dim;
  c.image_resolution = image_resolution;
  c.vision_layers = vision_layers;
  c.vision_width = vision_width;
  c.vision_patch_size = patch_size;
  c.grid_size = image_resolution / patch_size;
  c.vision_heads = vision_width / 64;
  c.context_length = context_length;
  c.vocab_size = vocab_size;
  c.transformer_width = text_width;
  c.transformer_heads = text_width / 64;
  c.transformer_layers = text_layers;
  return c;
}

ClipConfig InferClipConfig(const Entries& sd) {
  ClipConfig c;
  Require(sd, "visual.proj", 2,
          " (only ViT CLIP checkpoints are supported; ResNet ones have no visual.proj)");
  const at::Tensor& conv1 = Require(sd, "visual.conv1.weight", 4);
  c.vision_width = conv1.size(0);
  c.vision_patch_size = conv1.size(-1);
  CLIPHBA_CHECK(conv1.size(1) == 3 && conv1.size(2) == conv1.size(3), DataError,
                "CLIP state dict: 'visual.conv1.weight' should be (W, 3, P, P), got " +
                    ShapeString(conv1.sizes()));
  c.vision_heads = HeadsOf(c.vision_width, "visual.conv1.weight");
  int64_t attn_keys = 0;
  for (const auto& entry : sd) {
    if (StartsWith(entry.first, "visual.") && EndsWith(entry.first, ".attn.in_proj_weight")) {
      ++attn_keys;
    }
  }
  c.vision_layers = CountBlocks(sd, "visual.transformer.resblocks.");
  CLIPHBA_CHECK(attn_keys == c.vision_layers, DataError,
                "CLIP state dict: " + std::to_string(attn_keys) +
                    " 'visual.*.attn.in_proj_weight' keys for " + std::to_string(c.vision_layers) +
                    " visual blocks");
  const at::Tensor& vpos = Require(sd, "visual.positional_embedding", 2);
  c.grid_size = std::llround(std::sqrt(static_cast<double>(vpos.size(0) - 1)));
  CLIPHBA_CHECK(c.grid_size * c.grid_size + 1 == vpos.size(0) && vpos.size(1) == c.vision_width,
                DataError,
                "CLIP state dict: 'visual.positional_embedding' should be (grid^2 + 1, " +
                    std::to_string(c.vision_width) + "), got " + ShapeString(vpos.sizes()));
  c.image_resolution = c.vision_patch_size * c.grid_size;

  const at::Tensor& text_projection = Require(sd, "text_projection", 2);
  c.embed_dim = text_projection.size(1);
  c.context_length = Require(sd, "positional_embedding", 2).size(0);
  c.vocab_size = Require(sd, "token_embedding.weight", 2).size(0);
  c.transformer_width = Require(sd, "ln_final.weight", 1).size(0);
  c.transformer_heads = HeadsOf(c.transformer_width, "ln_final.weight");
  c.transformer_layers = CountBlocks(sd, "transformer.resblocks.");
  CLIPHBA_CHECK(text_projection.size(0) == c.transformer_width, DataError,
                "CLIP state dict: 'text_projection' has " +
                    std::to_string(text_projection.size(0)) + " rows, ln_final has width " +
                    std::to_string(c.transformer_width));
  return c;
}

// ---- Modules ----

// bf16 (autocast) takes the fused kernels; float32 is the reference's x * sigmoid(1.702 x).
at::Tensor QuickGELUImpl::forward(const at::Tensor& x) { return QuickGelu(x); }

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads)
    : width_(width), heads_(heads) {
  TORCH_CHECK(heads > 0 && width % heads == 0, "width ", width, " not divisible by heads ", heads);
  attn = register_module(
      "attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(width, heads)));
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  c_fc_ = torch::nn::Linear(width, 4 * width);
  c_proj_ = torch::nn::Linear(4 * width, width);
  torch::nn::Sequential mlp_modules;
  mlp_modules->push_back("c_fc", c_fc_);
  gelu_ = QuickGELU();
  mlp_modules->push_back("gelu", gelu_);
  mlp_modules->push_back("c_proj", c_proj_);
  mlp = register_module("mlp", mlp_modules);
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
}

at::Tensor ResidualAttentionBlockImpl::OutProjWeight() const {
  return adapter_ ? adapter_->Weight() : attn->out_proj->weight;
}

at::Tensor ResidualAttentionBlockImpl::OutProjBias() const {
  return adapter_ ? adapter_->bias : attn->out_proj->bias;
}

void ResidualAttentionBlockImpl::SetOutProjAdapter(DoraLinear adapter) {
  TORCH_CHECK(adapter && adapter->in_features() == width_ && adapter->out_features() == width_,
              "DoRA adapter must be ", width_, " -> ", width_);
  attn->replace_module("out_proj", adapter.ptr());
  attn->out_proj = torch::nn::Linear(nullptr);
  adapter_ = std::move(adapter);
  out_proj_cast_.Reset();  // the replaced Linear's weight and its bf16 copy
}

at::Tensor ResidualAttentionBlockImpl::forward(const at::Tensor& input, const at::Tensor& mask) {
  TORCH_CHECK(input.dim() == 3 && input.size(2) == width_, "block input must be (L, N, ", width_,
              "), got ", input.sizes());
  const int64_t L = input.size(0);
  const int64_t N = input.size(1);
  const int64_t head_dim = width_ / heads_;

  // Self-attention as torch.nn.functional.multi_head_attention_forward (PyTorch 1.13, slow path).
  const at::Tensor h = ln_1(AsFloat32(input));  // (L, N, W)
  auto qkv = at::linear(h, in_proj_cast_(attn->in_proj_weight), attn->in_proj_bias)
                 .chunk(3, /*dim=*/-1);
  auto heads_first = [&](const at::Tensor& t) {  // (L, N, W) -> (N*H, L, head_dim)
    return t.contiguous().view({L, N * heads_, head_dim}).transpose(0, 1);
  };
  const at::Tensor q = heads_first(qkv[0]) / std::sqrt(static_cast<double>(head_dim));
  const at::Tensor k = heads_first(qkv[1]);
  const at::Tensor v = heads_first(qkv[2]);
  at::Tensor scores = mask.defined() ? at::baddbmm(mask, q, k.transpose(1, 2))
                                     : at::bmm(q, k.transpose(1, 2));  // (N*H, L, L)
  scores = at::softmax(AsFloat32(scores), /*dim=*/-1);  // float32 also under bf16 autocast
  at::Tensor a = at::bmm(scores, v);                         // (N*H, L, head_dim)
  a = a.transpose(0, 1).contiguous().view({L * N, width_});  // (L*N, W)
  // A DoRA weight is computed anew at every call: only the plain Linear's weight has a bf16 copy.
  const at::Tensor out_w = adapter_ ? adapter_->Weight() : out_proj_cast_(attn->out_proj->weight);
  a = at::linear(a, out_w, OutProjBias()).view({L, N, width_});

  at::Tensor x = input + a;
  // mlp: c_fc, QuickGELU, c_proj (as mlp->forward, with the frozen weights' bf16 copies)
  at::Tensor m = at::linear(ln_2(AsFloat32(x)), c_fc_cast_(c_fc_->weight), c_fc_->bias);
  m = gelu_->forward(m);
  x = x + at::linear(m, c_proj_cast_(c_proj_->weight), c_proj_->bias);
  return x;  // (L, N, W)
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < layers; ++i) {
    ResidualAttentionBlock block(width, heads);
    list->push_back(block);
    blocks_.push_back(block);
  }
  resblocks = register_module("resblocks", list);
}

at::Tensor TransformerImpl::forward(const at::Tensor& input, const at::Tensor& attn_mask,
                                    std::vector<at::Tensor>* block_outputs) {
  at::Tensor x = input;
  for (auto& block : blocks_) {
    x = block->forward(x, attn_mask);
    if (block_outputs != nullptr) block_outputs->push_back(x);
  }
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(int64_t input_resolution, int64_t patch_size,
                                             int64_t width, int64_t layers, int64_t heads,
                                             int64_t output_dim)
    : input_resolution_(input_resolution) {
  TORCH_CHECK(patch_size > 0 && input_resolution % patch_size == 0, "resolution ", input_resolution,
              " is not a multiple of patch ", patch_size);
  const int64_t grid = input_resolution / patch_size;
  const double scale = 1.0 / std::sqrt(static_cast<double>(width));
  class_embedding = register_parameter("class_embedding", at::randn({width}) * scale);
  positional_embedding =
      register_parameter("positional_embedding", at::randn({grid * grid + 1, width}) * scale);
  proj = register_parameter("proj", at::randn({width, output_dim}) * scale);
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(
                   torch::nn::Conv2dOptions(3, width, patch_size).stride(patch_size).bias(false)));
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  transformer = register_module("transformer", Transformer(width, layers, heads));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
}

VisionTransformerImpl::Outputs VisionTransformerImpl::forward(const at::Tensor& images,
                                                              bool pos_embedding) {
  const int64_t patch = conv1->options.kernel_size()->at(0);
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == images.size(3) &&
                  images.size(2) >= patch && images.size(2) % patch == 0,
              "images must be (N, 3, R, R) with R a multiple of the patch size ", patch,
              " (the model's resolution is ", input_resolution_, "), got ", images.sizes());
  const int64_t N = images.size(0);
  const int64_t W = class_embedding.size(0);
  at::Tensor x = conv1(images);                  // (N, W, grid, grid)
  x = x.reshape({N, W, -1}).permute({0, 2, 1});  // (N, grid^2, W)
  const at::Tensor cls = class_embedding.to(x.dtype()) + at::zeros({N, 1, W}, x.options());
  x = at::cat({cls, x}, /*dim=*/1);  // (N, L, W)
  if (pos_embedding) {
    // The reference (CLIP-HBA's VisionTransformer.forward): the (L0, W) positional embedding is
    // resized to the token count L as a 1-channel image, bicubic, align_corners false
    // (F.interpolate's default); at the model's own resolution that is the identity.
    at::Tensor pe = positional_embedding;
    if (pe.size(0) != x.size(1))
      pe = at::upsample_bicubic2d(pe.unsqueeze(0).unsqueeze(0), {x.size(1), x.size(2)},
                                  /*align_corners=*/false, c10::nullopt, c10::nullopt)
               .squeeze(0)
               .squeeze(0);
    x = x + pe.to(x.dtype());
  }
  x = ln_pre(AsFloat32(x));
  x = x.permute({1, 0, 2});  // (L, N, W)
  Outputs out;
  std::vector<at::Tensor> block_outputs;
  x = transformer->forward(x, /*attn_mask=*/{}, &block_outputs);                 // (L, N, W)
  for (const auto& b : block_outputs) out.cls_blocks.push_back(b.select(0, 0));  // (N, W)
  {
    NoAutocastScope float32;  // the output projection in float32 (a small N x W by W x E product)
    out.features = at::matmul(ln_post(AsFloat32(x.select(0, 0))), proj);  // (N, E)
  }
  return out;
}

ClipImpl::ClipImpl(const ClipConfig& c) : config_(c) {
  TORCH_CHECK(c.embed_dim > 0 && c.transformer_width > 0 && c.context_length > 0 &&
                  c.vocab_size > 0 && c.transformer_heads > 0 && c.vision_heads > 0,
              "incomplete ClipConfig");
  const int64_t tw = c.transformer_width;
  // Own parameters first, then sub-modules in the reference's order: this makes
  // named_parameters() list the keys in OpenAI's state_dict order.
  positional_embedding =
      register_parameter("positional_embedding", at::randn({c.context_length, tw}) * 0.01);
  text_projection = register_parameter(
      "text_projection", at::randn({tw, c.embed_dim}) / std::sqrt(static_cast<double>(tw)));
  logit_scale = register_parameter("logit_scale", at::full({}, std::log(1.0 / 0.07)));
  visual = register_module(
      "visual", VisionTransformer(c.image_resolution, c.vision_patch_size, c.vision_width,
                                  c.vision_layers, c.vision_heads, c.embed_dim));
  transformer =
      register_module("transformer", Transformer(tw, c.transformer_layers, c.transformer_heads));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, tw));
  ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({tw})));

  // OpenAI's initialize_parameters for the text side.
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  const double proj_std = std::pow(tw, -0.5) * std::pow(2.0 * c.transformer_layers, -0.5);
  const double attn_std = std::pow(tw, -0.5);
  const double fc_std = std::pow(2.0 * tw, -0.5);
  for (int64_t i = 0; i < transformer->layers(); ++i) {
    auto& block = transformer->block(i);
    torch::nn::init::normal_(block->attn->in_proj_weight, 0.0, attn_std);
    torch::nn::init::normal_(block->attn->out_proj->weight, 0.0, proj_std);
    for (const auto& p : block->mlp->named_parameters()) {
      if (p.key() == "c_fc.weight") torch::nn::init::normal_(p.value(), 0.0, fc_std);
      if (p.key() == "c_proj.weight") torch::nn::init::normal_(p.value(), 0.0, proj_std);
    }
  }
}

ImageOutputs ClipImpl::EncodeImage(const at::Tensor& images, bool pos_embedding,
                                   Precision precision) {
  AutocastScope autocast(precision, images.device().type());  // CPU or CUDA autocast
  auto v = visual->forward(images, pos_embedding);
  ImageOutputs out;
  out.features = v.features;  // (N, E)
  NoAutocastScope float32;  // the projections in float32 (small: L products N x W by W x E)
  for (const auto& cls : v.cls_blocks) {
    // (N, W) @ (W, E) -> (N, E)
    out.block_cls_proj.push_back(at::matmul(AsFloat32(cls), visual->proj));
  }
  return out;
}

at::Tensor ClipImpl::EncodeText(const at::Tensor& ids, Precision precision) {
  TORCH_CHECK(
      ids.dim() == 2 && ids.size(1) == config_.context_length && ids.scalar_type() == at::kLong,
      "token ids must be int64 (K, ", config_.context_length, "), got ", ids.sizes(), " ",
      ids.scalar_type());
  AutocastScope autocast(precision, ids.device().type());
  const int64_t K = ids.size(0);
  const int64_t W = config_.transformer_width;
  const at::Tensor eot = ids.argmax(/*dim=*/-1);  // (K) EOT positions (the largest id)
  // Positions after the last EOT cannot influence any EOT output under the causal mask, so the
  // sequence is cut there (the 66 THINGS prompts need ~10 of 77 positions: ~7x less text work).
  const int64_t L = K > 0 ? eot.max().item<int64_t>() + 1 : ids.size(1);
  at::Tensor x = token_embedding(ids.narrow(1, 0, L));  // (K, L, W)
  x = x + positional_embedding.narrow(0, 0, L);
  x = x.permute({1, 0, 2});  // (L, K, W)
  // Causal additive mask (L, L): -inf strictly above the diagonal, as OpenAI's
  // build_attention_mask.
  const at::Tensor mask =
      at::full({L, L}, -std::numeric_limits<float>::infinity(), x.options()).triu_(1);
  x = transformer->forward(x, mask);
  x = x.permute({1, 0, 2});  // (K, L, W)
  x = ln_final(AsFloat32(x));
  x = x.gather(/*dim=*/1, eot.view({K, 1, 1}).expand({K, 1, W})).squeeze(1);  // (K, W)
  NoAutocastScope float32;  // the output projection in float32 (a small K x W by W x E product)
  return at::matmul(x, text_projection);  // (K, E)
}

at::Tensor ClipImpl::HbaLogits(const at::Tensor& image_features,
                               const at::Tensor& text_features) const {
  TORCH_CHECK(image_features.dim() == 2 && text_features.dim() == 2 &&
                  image_features.size(1) == text_features.size(1),
              "HbaLogits: need (N, E) and (K, E), got ", image_features.sizes(), " and ",
              text_features.sizes());
  // Float32 whatever the features' dtype (a K x E by E x N product: the head, not the tower).
  NoAutocastScope float32;
  const at::Tensor fi = AsFloat32(image_features), ft = AsFloat32(text_features);
  const at::Tensor img = fi / fi.norm(2, {-1}, /*keepdim=*/true);
  const at::Tensor txt = ft / ft.norm(2, {-1}, /*keepdim=*/true);
  return logit_scale.exp() * at::matmul(img, txt.t());  // (N, K)
}

// ---- Loading ----

void LoadStateDict(Clip& clip, const Entries& state_dict) {
  static const std::set<std::string> kIgnored = {"input_resolution", "context_length",
                                                 "vocab_size"};
  std::map<std::string, at::Tensor> targets;
  for (const auto& p : clip->named_parameters()) targets[p.key()] = p.value();
  for (const auto& b : clip->named_buffers()) targets[b.key()] = b.value();

  std::vector<std::string> unexpected, bad, duplicated, missing;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : state_dict) {
    if (kIgnored.count(name)) continue;
    auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
      continue;
    }
    if (!seen.insert(name).second) {
      duplicated.push_back(name);
      continue;
    }
    if (!tensor.defined() || tensor.sizes() != it->second.sizes()) {
      bad.push_back(name + " (checkpoint " +
                    (tensor.defined() ? ShapeString(tensor.sizes()) : "<undefined>") + ", model " +
                    ShapeString(it->second.sizes()) + ")");
    } else if (it->second.is_floating_point() && !tensor.is_floating_point()) {
      bad.push_back(name + " (dtype " + std::string(c10::toString(tensor.scalar_type())) +
                    ", expected floating point)");
    }
  }
  for (const auto& t : targets) {
    if (!seen.count(t.first)) missing.push_back(t.first);
  }
  if (!unexpected.empty() || !bad.empty() || !duplicated.empty() || !missing.empty()) {
    std::ostringstream os;
    os << "CLIP state dict does not fit the model:";
    auto list = [&os](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      os << "\n  " << what << " (" << names.size() << "):";
      for (const auto& n : names) os << "\n    " << n;
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("mis-shaped or mis-typed keys", bad);
    list("duplicated keys", duplicated);
    throw DataError(os.str());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state_dict) {
    if (kIgnored.count(name)) continue;
    targets.at(name).copy_(tensor);
  }
}

}  // namespace cliphba::model
