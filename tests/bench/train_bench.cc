// Timings of one Stage-1 (CLIP-HBA-Behavior) training step on random weights and data.
//
//   build/tests/bench/cliphba_bench_train [--benchmark_filter=REGEX] [--benchmark_out=F.json ...]
//
// The step (METHOD.md, Stage 1): model::Clip from a ClipConfig, random init (seed 1), DoRA default
// placement (rank 32, alpha 32, last 2 vision blocks + last 1 text block, magnitude trainable);
// 66 prompts = the real CLIP-HBA prompts (prompts66.json, ~10 tokens each); targets (B x 66) >= 0;
// image features + text features -> HbaLogits -> MSE; backward; AdamW (lr 3e-4) step on the
// trainable parameters.
// Variants (Mode): text_batched = the 66 prompts as ONE EncodeText batch per step (cliphba);
// text_sequential = the 66 prompts one EncodeText call each, then concatenated (the reference's
// structure, to separate the gain of batching from the rest); cached_prefix = only the
// DoRA-adapted blocks run per step, on cached outputs of the frozen prefixes (what a trainer with
// fixed images and prompts could do). `_bf16` names: the same step in bfloat16 mixed precision
// (model/precision.h: the towers' forward under autocast, loss, backward and AdamW in float32).
// Counters (ms per step): image_fwd, text_fwd, loss (logits + MSE), backward, optimizer (incl.
// zero_grad); peak_rss_GB = the process's peak RSS so far (run one config per process for a
// per-config figure).
// Before timing, main() checks that the three variants give the same losses over 3 steps
// (tiny, and ViT-B/32 b2; skip with CLIPHBA_SKIP_LOSS_CHECK=1).
// CLIPHBA_BF16_CURVE=STEPS first compares STEPS training steps (tiny, b16) in bfloat16 and float32.
// Threads: 2 (ATen and OpenBLAS), or $CLIPHBA_THREADS.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_clip_configs.h"
#include "bench_threads.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/precision.h"
#include "model/tokenizer.h"

namespace cliphba::model {
namespace {

constexpr int64_t kPrompts = 66;

// The 66 prompts of ../shared/fixtures/clip/prompts66.json tokenised with the real CLIP BPE (the
// tiny model's ids remapped), or an undefined tensor when the shared files are missing.
at::Tensor RealPrompts(const model::ClipConfig& config) {
  const std::string shared =
      std::getenv("CLIPHBA_SHARED_DIR") ? std::getenv("CLIPHBA_SHARED_DIR") : CLIPHBA_SHARED_DIR;
  std::ifstream in(shared + "/fixtures/clip/prompts66.json");
  if (!in) return at::Tensor();
  std::vector<std::string> prompts = nlohmann::json::parse(in).get<std::vector<std::string>>();
  model::ClipTokenizer tokenizer(shared + "/data/clip/bpe_simple_vocab_16e6.txt.gz");
  at::Tensor ids = tokenizer.TokenizeBatch(prompts, config.context_length);
  return config.vocab_size == 4096 ? model::RemapTinyVocab(ids) : ids;
}

// kBatched: the 66 prompts as one EncodeText batch; kSequential: one EncodeText per prompt (the
// reference's structure); kCachedPrefix: only the DoRA-adapted blocks run per step, on cached
// outputs of the frozen prefixes (same loss: the prefixes are frozen and see fixed inputs).
enum class Mode { kBatched, kSequential, kCachedPrefix };

using bench::TinyConfig;
using bench::VitB32Config;

Clip SeededClip(const ClipConfig& config) {
  at::manual_seed(1);
  return Clip(config);
}

// Everything one step needs, built once per benchmark (buffers reused across steps).
struct Setup {
  Setup(const ClipConfig& config, int64_t batch, Mode mode) : clip(SeededClip(config)) {
    ApplyDora(clip, /*last_vision_blocks=*/2, /*last_text_blocks=*/1, /*rank=*/32, /*alpha=*/32.0,
              /*train_magnitude=*/true);
    std::vector<at::Tensor> trainable;
    for (const auto& p : clip->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    optimizer = std::make_unique<torch::optim::AdamW>(trainable, torch::optim::AdamWOptions(3e-4));
    const int64_t R = config.image_resolution, L = config.context_length;
    const int64_t eot = config.vocab_size - 1;
    images = at::randn({batch, 3, R, R});
    ids = RealPrompts(config);  // the 66 CLIP-HBA prompts, as the reference encodes them
    if (!ids.defined()) {       // shared data missing: random ids with an EOT at a random position
      ids = at::zeros({kPrompts, L}, at::kLong);
      const at::Tensor body = at::randint(1, eot, {kPrompts, L}, at::kLong);
      const at::Tensor eot_pos = at::randint(1, L, {kPrompts}, at::kLong);
      for (int64_t k = 0; k < kPrompts; ++k) {
        const int64_t p = eot_pos[k].item<int64_t>();
        ids[k].slice(0, 0, p).copy_(body[k].slice(0, 0, p));
        ids[k][p] = eot;  // zeros after the EOT, as the tokenizer pads
      }
    }
    targets = at::rand({batch, kPrompts}) * 2.0;
    if (mode == Mode::kCachedPrefix) CachePrefixes();
  }

  // The frozen prefixes (vision blocks 0..V-3, text blocks 0..T-2) see constant inputs (fixed
  // images, fixed prompts) and constant weights, so their outputs can be computed once.
  void CachePrefixes() {
    torch::NoGradGuard no_grad;
    VisionTransformer& v = clip->visual;
    const int64_t N = images.size(0), W = v->class_embedding.size(0);
    at::Tensor x = v->conv1(images).reshape({N, W, -1}).permute({0, 2, 1});
    x = at::cat({v->class_embedding + at::zeros({N, 1, W}, x.options()), x}, 1);
    x = v->ln_pre(x + v->positional_embedding).permute({1, 0, 2});
    for (int64_t i = 0; i + 2 < v->transformer->layers(); ++i) x = v->transformer->block(i)(x);
    vision_prefix = x;  // (L, N, W) input of block V-2
    const int64_t L = ids.size(1);
    text_mask = at::full({L, L}, -std::numeric_limits<float>::infinity()).triu_(1);
    at::Tensor t = (clip->token_embedding(ids) + clip->positional_embedding).permute({1, 0, 2});
    for (int64_t i = 0; i + 1 < clip->transformer->layers(); ++i)
      t = clip->transformer->block(i)(t, text_mask);
    text_prefix = t;  // (L, K, W) input of block T-1
  }

  at::Tensor EncodeImage(Mode mode) {
    if (mode != Mode::kCachedPrefix) return clip->EncodeImage(images).features;
    VisionTransformer& v = clip->visual;
    const int64_t layers = v->transformer->layers();
    at::Tensor x = v->transformer->block(layers - 2)(vision_prefix);
    x = v->transformer->block(layers - 1)(x);
    return at::matmul(v->ln_post(x.select(0, 0)), v->proj);  // (N, E)
  }

  at::Tensor EncodeText(Mode mode) {
    if (mode == Mode::kBatched) return clip->EncodeText(ids);
    if (mode == Mode::kCachedPrefix) {
      const int64_t K = ids.size(0), W = clip->config().transformer_width;
      at::Tensor x =
          clip->transformer->block(clip->transformer->layers() - 1)(text_prefix, text_mask);
      x = clip->ln_final(x.permute({1, 0, 2}));  // (K, L, W)
      const at::Tensor eot = ids.argmax(-1);
      x = x.gather(1, eot.view({K, 1, 1}).expand({K, 1, W})).squeeze(1);
      return at::matmul(x, clip->text_projection);  // (K, E)
    }
    std::vector<at::Tensor> rows;
    rows.reserve(kPrompts);
    for (int64_t k = 0; k < kPrompts; ++k) rows.push_back(clip->EncodeText(ids.slice(0, k, k + 1)));
    return at::cat(rows, 0);
  }

  Clip clip;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  at::Tensor images;                                 // (B, 3, R, R)
  at::Tensor ids;                                    // (66, L)
  at::Tensor targets;                                // (B, 66)
  at::Tensor vision_prefix, text_prefix, text_mask;  // kCachedPrefix only
};

struct PhaseTimes {
  double image_fwd = 0, text_fwd = 0, loss = 0, backward = 0, optimizer = 0;
};

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

float Step(Setup& s, Mode mode, PhaseTimes* t, Precision precision = Precision::kFloat32) {
  const auto t0 = Clock::now();
  at::Tensor img, txt, loss;
  Clock::time_point t1, t2;
  {
    // bfloat16: the forward under autocast (GEMMs in bf16), the loss in float32; the backward
    // outside the scope, as autocast prescribes.
    AutocastScope autocast(precision);
    img = s.EncodeImage(mode);
    t1 = Clock::now();
    txt = s.EncodeText(mode);
    t2 = Clock::now();
    loss = torch::nn::functional::mse_loss(s.clip->HbaLogits(img, txt).to(at::kFloat), s.targets);
  }
  const float value = loss.item<float>();
  const auto t3 = Clock::now();
  loss.backward();
  const auto t4 = Clock::now();
  s.optimizer->step();
  s.optimizer->zero_grad();
  const auto t5 = Clock::now();
  if (t) {
    t->image_fwd += Ms(t0, t1);
    t->text_fwd += Ms(t1, t2);
    t->loss += Ms(t2, t3);
    t->backward += Ms(t3, t4);
    t->optimizer += Ms(t4, t5);
  }
  return value;
}

double PeakRssGb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss in KiB
}

void BM_TrainStep(benchmark::State& state, ClipConfig config, int64_t batch, Mode mode,
                  Precision precision) {
  Setup s(config, batch, mode);
  Step(s, mode, nullptr, precision);  // warm-up: allocator, AdamW state
  PhaseTimes t;
  float loss = 0;
  for (auto _ : state) loss = Step(s, mode, &t, precision);
  const double n = double(state.iterations());
  state.counters["image_fwd_ms"] = t.image_fwd / n;
  state.counters["text_fwd_ms"] = t.text_fwd / n;
  state.counters["loss_ms"] = t.loss / n;
  state.counters["backward_ms"] = t.backward / n;
  state.counters["optim_ms"] = t.optimizer / n;
  state.counters["loss"] = loss;
  state.counters["peak_rss_GB"] = PeakRssGb();
}

// The three modes give the same loss (fp32 rounding only), before and after 2 training steps.
bool CheckEqualLoss(const char* name, const ClipConfig& config, int64_t batch) {
  const Mode modes[3] = {Mode::kBatched, Mode::kSequential, Mode::kCachedPrefix};
  const char* names[3] = {"batched", "sequential", "cached_prefix"};
  double first[3], third[3];
  for (int m = 0; m < 3; ++m) {
    Setup s(config, batch, modes[m]);
    first[m] = Step(s, modes[m], nullptr);
    Step(s, modes[m], nullptr);
    third[m] = Step(s, modes[m], nullptr);
  }
  bool ok = true;
  for (int m = 0; m < 3; ++m) {
    const double rel1 = std::abs(first[m] - first[0]) / std::abs(first[0]);
    const double rel3 = std::abs(third[m] - third[0]) / std::abs(third[0]);
    std::fprintf(stderr,
                 "equal-loss %s b%lld %-13s step 1 %.7g step 3 %.7g (rel diff %.1e, %.1e)\n", name,
                 static_cast<long long>(batch), names[m], first[m], third[m], rel1, rel3);
    ok = ok && rel1 < 1e-4 && rel3 < 1e-4;
  }
  return ok;
}

// bfloat16 against float32 over a training curve (issue 18): `steps` steps of the same set-up
// (same weights, data and AdamW) in each precision; prints the first-step and the largest
// relative loss difference. CLIPHBA_BF16_CURVE=STEPS runs it before the timings (tiny, b16).
bool CheckBf16Curve(const char* name, const ClipConfig& config, int64_t batch, int64_t steps) {
  std::vector<double> curve[2];
  for (int p = 0; p < 2; ++p) {
    Setup s(config, batch, Mode::kBatched);
    for (int64_t i = 0; i < steps; ++i)
      curve[p].push_back(Step(s, Mode::kBatched, nullptr,
                              p == 0 ? Precision::kFloat32 : Precision::kBFloat16));
  }
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < steps; ++i) {
    const double rel = std::abs(curve[1][i] - curve[0][i]) / std::abs(curve[0][i]);
    if (rel > worst) worst = rel, at = i;
  }
  const double first = std::abs(curve[1][0] - curve[0][0]) / std::abs(curve[0][0]);
  std::fprintf(stderr,
               "bf16 curve %s b%lld, %lld steps: loss %.5g -> %.5g (float32) vs %.5g -> %.5g "
               "(bfloat16); first-step rel diff %.2e, largest %.2e at step %lld\n",
               name, static_cast<long long>(batch), static_cast<long long>(steps), curve[0][0],
               curve[0].back(), curve[1][0], curve[1].back(), first, worst,
               static_cast<long long>(at + 1));
  return first < 0.01 && worst < 0.02;
}

#define CLIPHBA_TRAIN_P(name, config, batch, batched, precision, iters) \
  BENCHMARK_CAPTURE(BM_TrainStep, name, config, batch, batched, precision) \
      ->UseRealTime()                                                      \
      ->Unit(benchmark::kMillisecond)                                      \
      ->Iterations(iters)
#define CLIPHBA_TRAIN(name, config, batch, batched, iters) \
  CLIPHBA_TRAIN_P(name, config, batch, batched, Precision::kFloat32, iters)

CLIPHBA_TRAIN(tiny_b16_text_batched, TinyConfig(), 16, Mode::kBatched, 50);
CLIPHBA_TRAIN(tiny_b16_text_sequential, TinyConfig(), 16, Mode::kSequential, 20);
CLIPHBA_TRAIN(tiny_b16_cached_prefix, TinyConfig(), 16, Mode::kCachedPrefix, 50);
CLIPHBA_TRAIN(vitb32_b16_text_batched, VitB32Config(), 16, Mode::kBatched, 3);
CLIPHBA_TRAIN(vitb32_b32_text_batched, VitB32Config(), 32, Mode::kBatched, 3);
CLIPHBA_TRAIN(vitb32_b16_text_sequential, VitB32Config(), 16, Mode::kSequential, 2);
CLIPHBA_TRAIN(vitb32_b16_cached_prefix, VitB32Config(), 16, Mode::kCachedPrefix, 5);
CLIPHBA_TRAIN(vitb32_b32_cached_prefix, VitB32Config(), 32, Mode::kCachedPrefix, 5);
// Issue 18: the same steps in bfloat16 mixed precision (model/precision.h).
CLIPHBA_TRAIN_P(tiny_b16_text_batched_bf16, TinyConfig(), 16, Mode::kBatched, Precision::kBFloat16,
                50);
CLIPHBA_TRAIN_P(vitb32_b16_text_batched_bf16, VitB32Config(), 16, Mode::kBatched,
                Precision::kBFloat16, 3);
CLIPHBA_TRAIN_P(vitb32_b32_text_batched_bf16, VitB32Config(), 32, Mode::kBatched,
                Precision::kBFloat16, 3);

}  // namespace
}  // namespace cliphba::model

int main(int argc, char** argv) {
  return cliphba::bench::BenchMain(argc, argv, [] {
    const char* omp_wait = std::getenv("OMP_WAIT_POLICY");
    benchmark::AddCustomContext("OMP_WAIT_POLICY", omp_wait ? omp_wait : "(unset)");
    if (const char* steps = std::getenv("CLIPHBA_BF16_CURVE")) {
      if (!cliphba::model::CheckBf16Curve("tiny", cliphba::model::TinyConfig(), 16,
                                          std::atoll(steps)))
        std::fprintf(stderr, "bf16 curve: outside 1%% (first step) / 2%% (any step)\n");
    }
    if (std::getenv("CLIPHBA_SKIP_LOSS_CHECK")) return 0;
    bool ok = cliphba::model::CheckEqualLoss("tiny", cliphba::model::TinyConfig(), 16);
    ok = cliphba::model::CheckEqualLoss("vitb32", cliphba::model::VitB32Config(), 2) && ok;
    if (ok) return 0;
    std::fprintf(stderr, "the variants' losses disagree\n");
    return 1;
  });
}
