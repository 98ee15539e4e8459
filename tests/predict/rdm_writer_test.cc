// The sharded condensed-RDM writer against a direct computation (scipy's pdist definitions:
// correlation = 1 - Pearson r of the rows, cosine = 1 - cosine similarity), for every rank count
// simulated serially: the shards tile the pairs, and any piece size gives the same numbers.
#include "predict/rdm_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/results_reader.h"
#include "io/results_store.h"

namespace cliphba::predict {
namespace {

// (m) float64 condensed distances computed directly, row-major i < j.
at::Tensor Direct(const at::Tensor& x, RdmMetric metric) {
  const int64_t n = x.size(0);
  at::Tensor out = at::empty({n * (n - 1) / 2}, at::kDouble);
  int64_t p = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      at::Tensor a = x[i].to(at::kDouble), b = x[j].to(at::kDouble);
      if (metric == RdmMetric::kCorrelation) {
        a = a - a.mean();
        b = b - b.mean();
      }
      out[p++] = 1.0 - (a * b).sum() / (a.norm() * b.norm());
    }
  }
  return out;
}

TEST(RdmWriterTest, ShardsTileThePairsForAnyRankCount) {
  for (int64_t n : {2, 3, 7, 50}) {
    for (int ranks : {1, 2, 3, 5}) {
      int64_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const Range s = CondensedShard(n, ranks, r);
        EXPECT_EQ(s.begin, next);
        next = s.end;
      }
      EXPECT_EQ(next, n * (n - 1) / 2);
    }
  }
}

TEST(RdmWriterTest, EqualsTheDirectDistancesForEveryPieceSize) {
  const at::Tensor x = at::randn({23, 9}, at::TensorOptions().dtype(at::kFloat)).exp();
  const std::string dir = std::string(CLIPHBA_TEST_OUT_DIR) + "/rdm_writer_test";
  std::filesystem::create_directories(dir);
  const parallel::Comm serial = parallel::Comm::Serial();
  for (RdmMetric metric : {RdmMetric::kCorrelation, RdmMetric::kCosine}) {
    const at::Tensor want = Direct(x, metric);
    const at::Tensor z = PrepareRows(x, metric);
    for (int64_t piece : {1, 5, 22, 253, 1000}) {
      const std::string path = dir + "/rdm_" + std::to_string(piece) + ".h5";
      io::ResultsStore store = io::ResultsStore::Create(path);
      store.CreateDataset("/v", {want.size(0)}, at::kFloat);
      WriteCondensed(store, "/v", -1, z, piece, serial);
      store.CreateDataset("/t", {2, want.size(0)}, at::kFloat);  // as row 1 of a (T, m) stack
      WriteCondensed(store, "/t", 1, z, piece, serial);
      store.Commit();
      io::ResultsReader r(path);
      const at::Tensor v = r.ReadTensor("/v").to(at::kDouble);
      EXPECT_LT((v - want).abs().max().item<double>(), 1e-6) << "piece " << piece;
      const at::Tensor t = r.ReadTensor("/t");
      EXPECT_TRUE(at::equal(t[1], r.ReadTensor("/v")));
      EXPECT_EQ(t[0].abs().max().item<float>(), 0.0f);  // row 0 untouched
    }
  }
}

}  // namespace
}  // namespace cliphba::predict
