// Timings of one CLIP-HBA-MEG training step as cliphba runs it, on random weights and data.
//
//   build/tests/bench/cliphba_bench_meg [--benchmark_filter=REGEX] [--benchmark_out=F.json ...]
//
// Model: model::Clip from a ClipConfig (tiny = the fixture's shapes, or ViT-B/32), random init
// (seed 1); MEG axis -100 .. 1300 ms at 5 ms (281 timepoints, THINGS-MEG); training times 0 .. 700
// ms every 25 ms (T 29) or 5 ms (T 141); window +-10 ms; random curves and target RDMs; 66 text
// features computed ONCE in the set-up (the text tower is frozen: train/meg.h), not per step.
//   phase 1: only Wfr learns, on cached per-block CLS projections (L, B, E): head + Pearson RDM +
//            PearsonMSELongLoss + backward + AdamW on Wfr. No image forward, no CLIP backward.
//   phase 2: DoRA (rank 32, alpha 16, direction only) on all vision blocks: image forward with
//            autograd, head, loss, backward, AdamW on Wfr + DoRA.
// Counters: loss of the first step (compare with scripts/reference/meg_step_reference.py, same
// loss definition), peak_rss_GB. Threads: 2, or $CLIPHBA_THREADS.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "bench_clip_configs.h"
#include "bench_threads.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "model/precision.h"
#include "train/meg_loss.h"

namespace cliphba::model {
namespace {

using bench::TinyConfig;
using bench::VitB32Config;

struct MegSetup {
  MegSetup(const ClipConfig& cfg, int64_t batch, int64_t timepoints, int phase)
      : clip((at::manual_seed(1), Clip(cfg))) {
    const int64_t t_full = 281, k = 66;
    ApplyDora(clip, phase == 2 ? cfg.vision_layers : 0, 0, 32, 16.0, false);
    clip->eval();
    MegHeadOptions o;
    o.axis_start_ms = -100;
    o.axis_step_ms = 5;
    o.axis_size = t_full;
    o.train_start_ms = 0;
    o.train_end_ms = 700;
    o.train_step_ms = 700.0 / double(timepoints - 1);
    o.window_ms = 10;
    head = MegHead(o, cfg.vision_layers, at::rand({t_full}), at::rand({t_full}),
                   at::rand({t_full}));
    {
      at::NoGradGuard no_grad;
      at::Tensor ids = at::zeros({k, cfg.context_length}, at::kLong);
      ids.slice(1, 0, 12).copy_(at::randint(1, cfg.vocab_size - 1, {k, 12}));
      ids.select(1, 12).fill_(cfg.vocab_size - 1);
      at::Tensor text = clip->EncodeText(ids);  // once: the text tower is frozen
      text_norm = text / text.norm(2, {1}, true);
      scale = clip->logit_scale.exp().item<double>();
    }
    images = at::randn({batch, 3, cfg.image_resolution, cfg.image_resolution});
    if (phase == 1) {
      at::NoGradGuard no_grad;
      cache = at::stack(clip->EncodeImage(images).block_cls_proj, 0);  // once
    }
    at::Tensor u = at::rand({head->timepoints(), batch, batch});
    target = (u + u.transpose(1, 2)) / 2 * (1 - at::eye(batch));
    std::vector<at::Tensor> params{head->wfr};
    for (const auto& p : clip->parameters())
      if (p.requires_grad()) params.push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>{head->wfr},
                        std::make_unique<torch::optim::AdamWOptions>(3e-3));
    if (params.size() > 1)
      groups.emplace_back(std::vector<at::Tensor>(params.begin() + 1, params.end()),
                          std::make_unique<torch::optim::AdamWOptions>(3e-5));
    opt = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(3e-3));
    loss.p_weight = 1;
    loss.m_weight = 0.1;
    loss.g_weight = 0.15;
  }

  // bfloat16: the image tower under autocast; the head, Pearson RDMs and loss in float32.
  double Step(int64_t step, Precision precision = Precision::kFloat32) {
    at::Tensor feats = cache.defined()
                           ? cache
                           : at::stack(clip->EncodeImage(images, true, precision).block_cls_proj, 0);
    at::Tensor emb = head->Embeddings(feats, text_norm, scale, true,
                                      at::detail::createCPUGenerator(uint64_t(step)));
    train::MegLossTerms l = loss(train::PearsonRdm(emb), target);
    opt->zero_grad();
    l.total.backward();
    opt->step();
    return l.total.item<double>();
  }

  Clip clip;
  MegHead head{nullptr};
  at::Tensor text_norm, images, cache, target;
  double scale = 1;
  std::unique_ptr<torch::optim::AdamW> opt;
  train::PearsonMSELongLoss loss;
};

void BM_MegStep(benchmark::State& state, bool vitb32, Precision precision) {
  const int64_t batch = state.range(0), timepoints = state.range(1);
  const int phase = int(state.range(2));
  MegSetup s(vitb32 ? VitB32Config() : TinyConfig(), batch, timepoints, phase);
  int64_t step = 0;
  const double first = s.Step(step++, precision);  // warm-up; its loss is reported
  for (auto _ : state) benchmark::DoNotOptimize(s.Step(step++, precision));
  state.counters["first_loss"] = first;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_GB"] = double(ru.ru_maxrss) / (1 << 20);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "phase"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_MegStep, tiny, false, Precision::kFloat32)
    ->Apply(Args)
    ->Args({16, 29, 1})
    ->Args({16, 29, 2})
    ->Iterations(5);
BENCHMARK_CAPTURE(BM_MegStep, vitb32, true, Precision::kFloat32)
    ->Apply(Args)
    ->Args({16, 29, 1})
    ->Args({16, 29, 2})
    ->Args({32, 29, 1})
    ->Args({32, 29, 2})
    ->Args({16, 141, 1})
    ->Args({16, 141, 2})
    ->Args({32, 141, 1})
    ->Args({32, 141, 2})
    ->Iterations(2);
// Issue 18: phase 2 in bfloat16 mixed precision (phase 1 has no image forward).
BENCHMARK_CAPTURE(BM_MegStep, tiny_bf16, false, Precision::kBFloat16)
    ->Apply(Args)
    ->Args({16, 29, 2})
    ->Iterations(5);
BENCHMARK_CAPTURE(BM_MegStep, vitb32_bf16, true, Precision::kBFloat16)
    ->Apply(Args)
    ->Args({16, 29, 2})
    ->Args({32, 29, 2})
    ->Iterations(2);

}  // namespace
}  // namespace cliphba::model

int main(int argc, char** argv) { return cliphba::bench::BenchMain(argc, argv); }
