// Timings of one CLIP-HBA-MEG training step as cliphba runs it, on random weights and data.
//
//   build/tests/bench/cliphba_bench_meg [--benchmark_filter=REGEX] [--benchmark_out=F.json ...]
//
// The step (meg_step.h, shared with the GPU check): tiny (the fixture's shapes) or ViT-B/32, random
// init (seed 1), training times 0 .. 700 ms every 25 ms (T 29) or 5 ms (T 141).
//   phase 1: only Wfr learns, on cached per-block CLS projections (L, B, E): head + Pearson RDM +
//            PearsonMSELongLoss + backward + AdamW on Wfr. No image forward, no CLIP backward.
//   phase 2: DoRA on all vision blocks: image forward with autograd, head, loss, backward, AdamW
//            on Wfr + DoRA.
// Counters: loss of the first step (compare with scripts/reference/meg_step_reference.py, same
// loss definition), peak_rss_GB. Threads: 2, or $CLIPHBA_THREADS.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "bench_clip_configs.h"
#include "bench_threads.h"
#include "meg_step.h"
#include "model/precision.h"

namespace cliphba::model {
namespace {

using bench::TinyConfig;
using bench::VitB32Config;

void BM_MegStep(benchmark::State& state, bool vitb32, Precision precision) {
  const int64_t batch = state.range(0), timepoints = state.range(1);
  const int phase = int(state.range(2));
  bench::MegStep s(vitb32 ? VitB32Config() : TinyConfig(), batch, timepoints, phase);
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
