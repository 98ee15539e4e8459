// Timings of the statistics engine (src/stats) at THINGS-MEG scale, on generated data.
//
//   build/tests/bench/cliphba_bench_stats [--benchmark_filter=REGEX] [--benchmark_out=F.json ...]
//
// Sizes: n = 1854 objects (m = 1,717,731 pairs), batches of B = 64 permutations against Tc = 64
// (and 128) timepoints, as `cliphba permute mantel` runs them by default; the sign-flip cluster
// test at 20 participants x 200 timepoints x 10,000 sign patterns (MNE's n_permutations = 10000).
// Threads: 2 (ATen and OpenBLAS), or $CLIPHBA_THREADS. Buffers are allocated once, outside the
// timed loops (first touch of fresh memory costs ~8 us per 4 KiB page on the development VM), as
// pipeline/permutation.cc does. scripts/bench_permute.sh runs the end-to-end measurement.
//
// Counters: GFLOPs = GEMM floating-point operations (2 B m Tc) per second of real time;
// us_per_perm_tp = microseconds per permutation x timepoint; x_numpy = 16.7 ms (numpy's measured
// cost per permutation x timepoint, fancy indexing + rank trick) divided by that.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_threads.h"
#include "stats/cluster.h"
#include "stats/common.h"
#include "stats/mantel.h"
#include "stats/signflip.h"

namespace cliphba::stats {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kObjects = 1854, kPairs = kObjects * (kObjects - 1) / 2;
constexpr int64_t kBatch = 64, kMaxChunk = 128;
constexpr double kNumpyMsPerPermTp = 16.7;

// The first B x tc elements of the reusable stats buffer as a contiguous (B, tc) matrix.
at::Tensor StatsView(const at::Tensor& stats, int64_t tc) {
  return stats.view({-1}).narrow(0, 0, kBatch * tc).view({kBatch, tc});
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct MantelData {
  at::Tensor square;    // (n, n) float32: square form of a Spearman-standardised model RDM
  at::Tensor neural_z;  // (kMaxChunk, m) float32: standardised (Pearson) neural rows
  at::Tensor perms;     // (B, n) int64: permutations 0..B-1 of seed 1
  at::Tensor gather;    // (B, m) float32 reusable buffer
  at::Tensor stats;     // (B, kMaxChunk) float32 reusable buffer
};

MantelData& Mantel() {
  static MantelData* data = [] {
    auto* d = new MantelData;
    at::manual_seed(0);
    at::Tensor model = at::rand({1, kPairs}, at::kDouble);
    at::Tensor z = StandardizeRows(model, CorrelationKind::kSpearman, at::kDouble)[0];
    d->square = SquareFromCondensed(z.to(at::kFloat), kObjects);
    // Rows centred and scaled to unit norm in place (a float32 Pearson standardisation; the
    // kernel's cost does not depend on the values).
    d->neural_z = at::randn({kMaxChunk, kPairs}, at::kFloat);
    d->neural_z.sub_(d->neural_z.mean(/*dim=*/1, /*keepdim=*/true));
    d->neural_z.div_(d->neural_z.norm(2, /*dim=*/1, /*keepdim=*/true));
    d->perms = DrawPermutations(/*seed=*/1, /*first=*/0, kBatch, kObjects);
    d->gather = at::empty({kBatch, kPairs}, at::kFloat);
    d->gather.zero_();  // first touch outside the timings
    d->stats = at::zeros({kBatch, kMaxChunk}, at::kFloat);
    return d;
  }();
  return *data;
}

// (a) The machine's sgemm rate for the kernel's shape: (B x m) x (m x Tc), B rows of `gather`
// times the transposed neural rows, as MantelAccumulate calls it.
void BM_SgemmPeak(benchmark::State& state) {
  const int64_t tc = state.range(0);
  MantelData& d = Mantel();
  at::Tensor a = d.gather, b = d.neural_z.narrow(0, 0, tc), c = StatsView(d.stats, tc);
  a.normal_();
  double busy = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    at::mm_out(c, a, b.t());
    busy += Seconds(t0, Clock::now());
    benchmark::DoNotOptimize(c.data_ptr());
  }
  const double flops = 2.0 * double(kBatch) * double(kPairs) * double(tc);
  state.counters["GFLOPs"] = flops * double(state.iterations()) / busy * 1e-9;
  state.counters["Tc"] = double(tc);
}

// (b) GatherPermuted of one batch of B = 64 permutations (n = 1854).
void BM_GatherPermuted(benchmark::State& state) {
  MantelData& d = Mantel();
  for (auto _ : state) {
    GatherPermuted(d.square, d.perms, d.gather);
    benchmark::DoNotOptimize(d.gather.data_ptr());
  }
  const double elems = double(kBatch) * double(kPairs);
  state.counters["ns_per_elem"] = benchmark::Counter(
      elems * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["GB_written_per_s"] =
      benchmark::Counter(elems * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// (c) One MantelAccumulate batch: B = 64 permutations x Tc timepoints (gather + GEMM + counts),
// with its gather and GEMM parts timed separately in the same iterations (the same calls the
// kernel makes, in the same order; the whole call is timed as the benchmark's real time).
void BM_MantelBatch(benchmark::State& state) {
  const int64_t tc = state.range(0);
  MantelData& d = Mantel();
  at::Tensor nz = d.neural_z.narrow(0, 0, tc);
  at::Tensor observed = MantelObserved(d.square, nz, d.gather, d.stats);
  MantelCounts counts = MakeMantelCounts(tc, kBatch);
  double t_whole = 0, t_gather = 0, t_gemm = 0;
  at::Tensor g = d.gather, s = StatsView(d.stats, tc);
  for (auto _ : state) {
    auto t0 = Clock::now();
    MantelAccumulate(d.square, nz, observed, d.perms, 0, 0, Tail::kTwo, d.gather, d.stats, &counts);
    auto t1 = Clock::now();
    state.PauseTiming();  // the parts, outside the benchmark's own time
    auto p0 = Clock::now();
    GatherPermuted(d.square, d.perms, g);
    auto p1 = Clock::now();
    at::mm_out(s, g, nz.t());
    auto p2 = Clock::now();
    state.ResumeTiming();
    t_whole += Seconds(t0, t1), t_gather += Seconds(p0, p1), t_gemm += Seconds(p1, p2);
  }
  const double it = double(state.iterations());
  const double flops = 2.0 * double(kBatch) * double(kPairs) * double(tc);
  const double per_pt = t_whole / it / double(kBatch * tc);
  state.counters["Tc"] = double(tc);
  state.counters["us_per_perm_tp"] = per_pt * 1e6;
  state.counters["x_numpy"] = kNumpyMsPerPermTp * 1e-3 / per_pt;
  state.counters["GFLOPs_gemm"] = flops * it / t_gemm * 1e-9;    // GEMM part alone
  state.counters["GFLOPs_whole"] = flops * it / t_whole * 1e-9;  // GEMM flops / whole batch
  state.counters["gather_ms"] = t_gather / it * 1e3;
  state.counters["gemm_ms"] = t_gemm / it * 1e3;
  state.counters["gather_share"] = t_gather / (t_gather + t_gemm);
}

// (d) The sign-flip cluster test + t-max test as `cliphba permute cluster` runs them
// (pipeline/permutation.cc RunCluster): 20 participants x 200 timepoints, 9,999 drawn flips + the
// observed pattern = MNE's n_permutations = 10000, threshold t = 2.0, two-sided.
void BM_ClusterTest(benchmark::State& state) {
  const int64_t n_part = 20, n_times = 200, n_flips = 9999;
  at::manual_seed(2);
  // Noise plus an effect in timepoints 80..119 so that clusters exist.
  at::Tensor data = at::randn({n_part, n_times}, at::kDouble);
  data.narrow(1, 80, 40).add_(0.8);
  int64_t clusters = 0;
  for (auto _ : state) {
    at::Tensor flips = DrawSignFlips(n_flips, n_part, /*seed=*/3);
    ClusterTestResult ct = ClusterTest(data, 2.0, Tail::kTwo, flips);
    TMaxResult tm = TMaxTest(data, flips, Tail::kTwo);
    clusters = int64_t(ct.clusters.size());
    benchmark::DoNotOptimize(tm.p.data_ptr());
  }
  state.counters["clusters"] = double(clusters);
  state.counters["flips"] = double(n_flips + 1);
}

// (e) StandardizeRows of one 1854-object condensed RDM (rank, centre, scale; float64 in, float32
// out as the Mantel sweep uses it per timepoint). The result is a fresh tensor (the API allocates).
void BM_StandardizeRow(benchmark::State& state, CorrelationKind kind) {
  at::manual_seed(4);
  at::Tensor x = at::rand({1, kPairs}, at::kDouble);
  for (auto _ : state) {
    at::Tensor z = StandardizeRows(x, kind, at::kFloat);
    benchmark::DoNotOptimize(z.data_ptr());
  }
  state.counters["pairs"] = double(kPairs);
}

#define CLIPHBA_BENCH(...) BENCHMARK(__VA_ARGS__)->UseRealTime()->Unit(benchmark::kMillisecond)

CLIPHBA_BENCH(BM_SgemmPeak)->Arg(64)->Arg(128)->MinTime(2.0);
CLIPHBA_BENCH(BM_GatherPermuted)->MinTime(2.0);
CLIPHBA_BENCH(BM_MantelBatch)->Arg(64)->Arg(128)->MinTime(3.0);
CLIPHBA_BENCH(BM_ClusterTest)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_StandardizeRow, spearman_1854, CorrelationKind::kSpearman)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_StandardizeRow, pearson_1854, CorrelationKind::kPearson)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cliphba::stats

int main(int argc, char** argv) { return cliphba::bench::BenchMain(argc, argv); }
