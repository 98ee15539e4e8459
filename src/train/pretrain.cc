#include "train/pretrain.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/image.h"
#include "data/synth_cohort.h"
#include "train/common.h"

namespace cliphba::train {

namespace {

constexpr uint64_t kEvalFirstItem = 1ull << 40;  // held-out items: never reached by training

struct Batch {
  at::Tensor images;  // (B, 3, S, S) float32
  std::vector<data::WorldAttributes> attributes;
  std::vector<std::string> captions;
};

Batch MakeBatch(uint64_t seed, uint64_t first, int64_t count, const data::ImageOptions& io) {
  Batch b;
  std::vector<at::Tensor> images;
  for (int64_t k = 0; k < count; ++k) {
    data::WorldSample s = data::ShapesWorldSample(seed, first + uint64_t(k), io.size);
    images.push_back(data::NormalizeImage(s.rgb, io));
    b.attributes.push_back(s.attributes);
    b.captions.push_back(std::move(s.caption));
  }
  b.images = at::stack(images);
  return b;
}

// Token ids (K, context) of captions, memoised: the world has only 288 captions.
class CaptionIds {
 public:
  CaptionIds(const model::ClipTokenizer& tokenizer, int64_t context)
      : tokenizer_(tokenizer), context_(context) {}
  at::Tensor Get(const std::vector<std::string>& captions) {
    std::vector<at::Tensor> rows;
    for (const std::string& c : captions) {
      auto it = cache_.find(c);
      if (it == cache_.end())
        it = cache_.emplace(c, tokenizer_.TokenizeBatch({c}, context_)).first;
      rows.push_back(it->second);
    }
    return at::cat(rows);
  }

 private:
  const model::ClipTokenizer& tokenizer_;
  int64_t context_;
  std::map<std::string, at::Tensor> cache_;
};

at::Tensor Normalised(const at::Tensor& x) { return x / x.norm(2, -1, /*keepdim=*/true); }

// Every caption of the world, in index order colour, shape, texture, size (fastest last).
std::vector<data::WorldAttributes> AllAttributes() {
  const data::WorldVocabulary& v = data::ShapesWorldVocabulary();
  std::vector<data::WorldAttributes> all;
  for (int c = 0; c < int(v.colours.size()); ++c)
    for (int s = 0; s < int(v.shapes.size()); ++s)
      for (int t = 0; t < int(v.textures.size()); ++t)
        for (int z = 0; z < int(v.sizes.size()); ++z) all.push_back({c, s, t, z});
  return all;
}

}  // namespace

PretrainSummary EvaluateOnShapesWorld(model::Clip& clip, const model::ClipTokenizer& tokenizer,
                                      const PretrainOptions& o) {
  at::NoGradGuard no_grad;
  clip->eval();
  const data::ImageOptions io =
      data::ImageOptionsFor(o.normalization, clip->config().image_resolution);
  CaptionIds ids(tokenizer, clip->config().context_length);
  const std::vector<data::WorldAttributes> all = AllAttributes();
  std::vector<std::string> captions;
  for (const auto& a : all) captions.push_back(data::ShapesWorldCaption(a));
  const at::Tensor text = Normalised(clip->EncodeText(ids.Get(captions)));  // (288, E)
  PretrainSummary s;
  s.n_captions = int64_t(all.size());
  int64_t n = 0;
  for (int64_t first = 0; first < o.eval_items; first += 64) {
    const int64_t count = std::min<int64_t>(64, o.eval_items - first);
    const Batch b = MakeBatch(o.seed, kEvalFirstItem + uint64_t(first), count, io);
    const at::Tensor img = Normalised(clip->EncodeImage(b.images).features);  // (count, E)
    const at::Tensor best = at::matmul(img, text.t()).argmax(1);             // (count)
    for (int64_t k = 0; k < count; ++k) {
      const data::WorldAttributes& p = all[size_t(best[k].item<int64_t>())];
      const data::WorldAttributes& t = b.attributes[size_t(k)];
      s.colour += p.colour == t.colour;
      s.shape += p.shape == t.shape;
      s.texture += p.texture == t.texture;
      s.size += p.size == t.size;
      s.top1 += p.colour == t.colour && p.shape == t.shape && p.texture == t.texture &&
                p.size == t.size;
      ++n;
    }
  }
  if (n > 0)
    for (double* x : {&s.top1, &s.colour, &s.shape, &s.texture, &s.size}) *x /= double(n);
  return s;
}

PretrainSummary PretrainOnShapesWorld(model::Clip& clip, const model::ClipTokenizer& tokenizer,
                                      const PretrainOptions& o) {
  if (clip->config().vocab_size != model::ClipTokenizer::kVocabSize)
    throw ConfigError("pre-training needs the real CLIP vocabulary (49408 token rows), the model "
                      "has " + std::to_string(clip->config().vocab_size));
  TORCH_CHECK(o.steps >= 0 && o.batch >= 2, "PretrainOnShapesWorld: steps >= 0, batch >= 2");
  const auto start = std::chrono::steady_clock::now();
  const data::ImageOptions io =
      data::ImageOptionsFor(o.normalization, clip->config().image_resolution);
  CaptionIds ids(tokenizer, clip->config().context_length);
  std::vector<std::pair<std::string, at::Tensor>> params;
  // Every parameter but the token embedding (49408 x W rows, of which the captions use ~20: its
  // dense gradient and AdamW moments would be most of a step's memory traffic; the random rows
  // are distinct codes the text blocks learn to read).
  for (const auto& p : clip->named_parameters(/*recurse=*/true)) {
    const bool train = p.key() != "token_embedding.weight";
    p.value().set_requires_grad(train);
    if (train) params.emplace_back(p.key(), p.value());
  }
  detail::AdamW adam;
  PretrainSummary s;
  s.chance_loss = std::log(double(o.batch));
  std::vector<double> last;
  auto last_log = start;
  const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
  clip->train();
  for (int64_t step = 0; step < o.steps; ++step) {
    // Batch, step * B .. step * B + B - 1.
    const Batch b = MakeBatch(o.seed, uint64_t(step) * uint64_t(o.batch), o.batch, io);
    // Soft targets: row i uniform over the items of i's caption.
    at::Tensor same = at::zeros({o.batch, o.batch}, at::kFloat);
    auto sa = same.accessor<float, 2>();
    for (int64_t i = 0; i < o.batch; ++i)
      for (int64_t j = 0; j < o.batch; ++j)
        sa[i][j] = b.captions[size_t(i)] == b.captions[size_t(j)] ? 1.0f : 0.0f;
    const at::Tensor target = same / same.sum(1, /*keepdim=*/true);  // (B, B), symmetric support

    // Forward: features, cosine logits, symmetric cross-entropy.
    const at::Tensor img = Normalised(clip->EncodeImage(b.images).features);  // (B, E)
    const at::Tensor txt = Normalised(clip->EncodeText(ids.Get(b.captions)));  // (B, E)
    const at::Tensor logits = clip->logit_scale.exp() * at::matmul(img, txt.t());  // (B, B)
    const at::Tensor loss_i = -(target * at::log_softmax(logits, 1)).sum(1).mean();
    const at::Tensor loss_t = -(target * at::log_softmax(logits.t(), 1)).sum(1).mean();
    const at::Tensor loss = 0.5 * (loss_i + loss_t);

    // Backward and update.
    for (auto& p : params)
      if (p.second.grad().defined()) p.second.mutable_grad().zero_();
    loss.backward();
    const double progress = double(step - warmup) / double(std::max<int64_t>(1, o.steps - warmup));
    const double lr = step < warmup ? o.lr * double(step + 1) / double(warmup)
                                    : o.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
    detail::AdamWStep(params, std::vector<double>(params.size(), lr), &adam, o.weight_decay);
    {
      at::NoGradGuard no_grad;
      clip->logit_scale.clamp_(0.0, std::log(100.0));
    }

    const double value = loss.item<double>();
    if (step == 0) s.first_loss = value;
    last.push_back(value);
    if (last.size() > 20) last.erase(last.begin());
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_log).count() >= o.progress_seconds ||
        step + 1 == o.steps) {
      last_log = now;
      LOG_INFO("pre-training on the shapes world: step {}/{} loss {:.4f} (uniform {:.4f}) lr {:.2e}",
               step + 1, o.steps, value, s.chance_loss, lr);
    }
  }
  for (auto& p : params) {
    p.second.set_requires_grad(false);
    p.second.mutable_grad() = at::Tensor();
  }
  const PretrainSummary eval = EvaluateOnShapesWorld(clip, tokenizer, o);
  s.top1 = eval.top1;
  s.colour = eval.colour;
  s.shape = eval.shape;
  s.texture = eval.texture;
  s.size = eval.size;
  s.n_captions = eval.n_captions;
  s.steps = o.steps;
  double sum = 0;
  for (double v : last) sum += v;
  s.final_loss = last.empty() ? 0.0 : sum / double(last.size());
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace cliphba::train
