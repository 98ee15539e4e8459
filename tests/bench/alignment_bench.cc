// Timings of the time-resolved alignment statistics (src/rsa/alignment.h) at THINGS-MEG scale on
// generated data: 4 participants, 281 timepoints (-100..1300 ms at 5 ms), 100 held-out objects
// (4950 pairs); the own-vs-other test exact (P = 7, 5040 permutations) and random (P = 20).
//
//   build/tests/bench/cliphba_bench_alignment [--benchmark_filter=REGEX]
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <vector>

#include "bench_threads.h"
#include "rsa/alignment.h"

namespace cliphba::rsa {
namespace {

constexpr int64_t kP = 4, kT = 281, kM = 4950;

struct Data {
  at::Tensor model, meg;
};

const Data& Get() {
  static const Data d = [] {
    at::manual_seed(1);
    Data x;
    x.model = at::rand({kT, kM}, at::kDouble);
    x.meg = at::rand({kP, kT, kM}, at::kDouble) + 0.3 * x.model.unsqueeze(0);
    return x;
  }();
  return d;
}

void BM_AlignTimeResolved(benchmark::State& state) {
  const Data& d = Get();
  for (auto _ : state) benchmark::DoNotOptimize(AlignTimeResolved(d.model, d.meg).spearman);
  state.counters["correlations"] = double(2 * kP * kT);
}

void BM_CeilingTimeResolved(benchmark::State& state) {
  const Data& d = Get();
  for (auto _ : state) benchmark::DoNotOptimize(CeilingTimeResolved(d.meg).lower);
}

void BM_OwnVsOther(benchmark::State& state) {
  const int64_t P = state.range(0), n = state.range(1);
  at::manual_seed(2);
  const at::Tensor mx = at::rand({P, P}, at::kDouble);
  std::vector<int64_t> own(static_cast<size_t>(P));
  for (int64_t i = 0; i < P; ++i) own[static_cast<size_t>(i)] = i;
  for (auto _ : state) benchmark::DoNotOptimize(OwnVsOtherTest(mx, own, n, 3).p_value);
}

BENCHMARK(BM_AlignTimeResolved)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CeilingTimeResolved)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OwnVsOther)
    ->Args({7, 10000})
    ->Args({20, 10000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cliphba::rsa

int main(int argc, char** argv) { return cliphba::bench::BenchMain(argc, argv); }
