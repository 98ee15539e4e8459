// Timings of the RSA core (RDMs, comparisons, triplet accuracy) on the real THINGS data.
//
//   build/tests/bench/cliphba_bench_rsa [--benchmark_filter=REGEX] [--benchmark_out=F.json ...]
//
// Data: the full SPoSE embedding (1854 x 66) from $CLIPHBA_SHARED_DIR/data/things (the environment
// variable overrides the configured shared folder); generated data of the same size if the file is
// missing. Threads: 2 (ATen and OpenBLAS), or $CLIPHBA_THREADS. scripts/bench.sh compares the
// results with scipy (scripts/reference/bench_scipy.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench_threads.h"
#include "io/csv.h"
#include "io/npy.h"
#include "rsa/behavior.h"
#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "rsa/triplet.h"

namespace cliphba::rsa {
namespace {

constexpr int64_t kObjects = 1854, kDims = 66;

std::string ThingsDir() {
  const char* env = std::getenv("CLIPHBA_SHARED_DIR");
  return std::string(env && *env ? env : CLIPHBA_SHARED_DIR) + "/data/things/";
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

struct BenchData {
  at::Tensor embedding;  // (1854, 66) float64
  at::Tensor emb48;      // (48, 66) rows in RDM48 order
  at::Tensor rdm48;      // (48, 48) reference dissimilarities
  at::Tensor sim48;      // (48, 48) DotSimilarity(emb48)
  at::Tensor rdm_corr;   // condensed correlation RDM of `embedding` (1.7M pairs)
  at::Tensor rdm_eucl;   // condensed Euclidean RDM of `embedding`
};

const BenchData& Data() {
  static const BenchData* data = [] {
    auto* d = new BenchData;
    const std::string things = ThingsDir();
    const std::string csv = things + "spose_embedding66d_rescaled.csv";
    const std::string npy = things + "RDM48_triplet.npy";
    const std::string names = things + "RDM48_image_names.txt";
    if (Exists(csv) && Exists(npy) && Exists(names)) {
      io::EmbeddingTable table = io::ReadEmbeddingCsv(csv);
      d->embedding = table.values;
      auto rows = AlignByName(table.names, io::ReadNameList(names), "embedding", "RDM48 names");
      d->emb48 = table.values.index_select(0, at::tensor(rows, at::kLong));
      io::NpyReadOptions fortran_ok;
      fortran_ok.allow_fortran_order = true;  // the shared RDM48 file is Fortran-order
      d->rdm48 = io::ReadNpy(npy, fortran_ok).to(at::kDouble).contiguous();
      std::fprintf(stderr, "data: %s (%lld x %lld)\n", csv.c_str(),
                   static_cast<long long>(d->embedding.size(0)),
                   static_cast<long long>(d->embedding.size(1)));
    } else {
      std::fprintf(stderr, "data: %s missing; using generated data of the same size\n",
                   csv.c_str());
      at::manual_seed(0);
      d->embedding = at::rand({kObjects, kDims}, at::kDouble) * 2.0;
      d->emb48 = d->embedding.slice(0, 0, 48).contiguous();
      d->rdm48 = ExpandSquare(ComputeRdm(at::randn({48, 10}, at::kDouble), RdmMetric::kEuclidean));
    }
    d->sim48 = DotSimilarity(d->emb48);
    d->rdm_corr = ComputeRdm(d->embedding, RdmMetric::kCorrelation).values;
    d->rdm_eucl = ComputeRdm(d->embedding, RdmMetric::kEuclidean).values;
    return d;
  }();
  return *data;
}

void BM_Rdm(benchmark::State& state, RdmMetric metric, int64_t n) {
  at::Tensor x = Data().embedding.slice(0, 0, n).contiguous();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeRdm(x, metric).values.data_ptr());
  state.counters["objects"] = double(n);
}

void BM_Spose48(benchmark::State& state) {
  at::Tensor x = Data().emb48;
  for (auto _ : state) benchmark::DoNotOptimize(ComputeRdm(x, RdmMetric::kSpose).values.data_ptr());
}

void BM_Compare(benchmark::State& state, Comparison comparison) {
  const BenchData& d = Data();
  for (auto _ : state) benchmark::DoNotOptimize(Compare(comparison, d.rdm_corr, d.rdm_eucl));
  state.counters["pairs"] = double(d.rdm_corr.numel());
}

void BM_TripletAll48(benchmark::State& state) {
  const BenchData& d = Data();
  for (auto _ : state) benchmark::DoNotOptimize(TripletAccuracyAll(d.sim48, d.rdm48).accuracy);
}

#define CLIPHBA_BENCH(...) \
  BENCHMARK_CAPTURE(__VA_ARGS__)->UseRealTime()->Unit(benchmark::kMillisecond)

CLIPHBA_BENCH(BM_Rdm, correlation_1854, RdmMetric::kCorrelation, kObjects);
CLIPHBA_BENCH(BM_Rdm, cosine_1854, RdmMetric::kCosine, kObjects);
CLIPHBA_BENCH(BM_Rdm, euclidean_1854, RdmMetric::kEuclidean, kObjects);
CLIPHBA_BENCH(BM_Compare, spearman_1854, Comparison::kSpearman);
CLIPHBA_BENCH(BM_Compare, kendall_tau_a_1854, Comparison::kKendallTauA);
CLIPHBA_BENCH(BM_Compare, pearson_1854, Comparison::kPearson);
BENCHMARK(BM_TripletAll48)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Spose48)->UseRealTime()->Unit(benchmark::kMillisecond);
CLIPHBA_BENCH(BM_Rdm, spose_200, RdmMetric::kSpose, 200);

}  // namespace
}  // namespace cliphba::rsa

int main(int argc, char** argv) {
  return cliphba::bench::BenchMain(argc, argv, [] {
    cliphba::rsa::Data();  // load before timing
    return 0;
  });
}
