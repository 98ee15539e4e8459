// The Mantel kernel against brute-force scipy (scripts/reference/mantel_reference.py): the same
// explicit permutations, observed statistics at 1e-9 (float64 path) and p-values exactly.
#include "stats/mantel.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "rsa/rdm.h"

namespace cliphba::stats {
namespace {

const std::string kDir = std::string(CLIPHBA_TEST_DATA_DIR) + "/mantel_reference/";

struct Case {
  at::Tensor model;   // (m) condensed float64
  at::Tensor neural;  // (T, m) condensed float64
  at::Tensor perms;   // (N, n) int64
  int64_t n = 0;
  nlohmann::json ref;
};

Case Load() {
  Case c;
  rsa::CondensedRdm model = rsa::CondenseSquare(io::ReadNpy(kDir + "model.npy"), "model.npy");
  c.n = model.n;
  c.model = model.values;
  at::Tensor stack = io::ReadNpy(kDir + "neural.npy");
  std::vector<at::Tensor> rows;
  for (int64_t t = 0; t < stack.size(0); ++t)
    rows.push_back(rsa::CondenseSquare(stack[t], "neural.npy").values);
  c.neural = at::stack(rows);
  c.perms = io::ReadNpy(kDir + "perms.npy");
  std::ifstream in(kDir + "reference.json");
  c.ref = nlohmann::json::parse(in);
  return c;
}

// Runs the whole test in blocks of `batch` permutations and chunks of `chunk` timepoints.
MantelPValues RunMantelCase(const Case& c, CorrelationKind kind, Tail tail, at::ScalarType dtype,
                            int64_t batch, int64_t chunk, at::Tensor* observed,
                            MantelCounts* counts_out) {
  const int64_t T = c.neural.size(0), N = c.perms.size(0), m = c.model.numel();
  at::Tensor zm = StandardizeRows(c.model.unsqueeze(0), kind, at::kDouble)[0];
  at::Tensor square = SquareFromCondensed(zm.to(dtype), c.n);
  at::Tensor zn = StandardizeRows(c.neural, kind, at::kDouble);
  *observed = at::mv(zn, zm);
  MantelCounts counts = MakeMantelCounts(T, N);
  at::Tensor gather = at::empty({batch, m}, square.options());
  at::Tensor stats = at::empty({batch, chunk}, square.options());
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t tc = std::min(chunk, T - t0);
    at::Tensor nz = zn.narrow(0, t0, tc).to(dtype).contiguous();
    at::Tensor obs = MantelObserved(square, nz, gather, stats);
    for (int64_t first = 0; first < N; first += batch) {
      const int64_t count = std::min(batch, N - first);
      MantelAccumulate(square, nz, obs, c.perms.narrow(0, first, count), first, t0, tail, gather,
                       stats, &counts);
    }
  }
  *counts_out = counts;
  return MantelFinish(*observed, counts, tail);
}

TEST(MantelTest, EqualsBruteForceScipyForBothStatisticsAndTails) {
  Case c = Load();
  for (auto [name, kind] : {std::pair{"spearman", CorrelationKind::kSpearman},
                            std::pair{"pearson", CorrelationKind::kPearson}}) {
    for (int tail : {1, 0}) {
      SCOPED_TRACE(std::string(name) + " tail " + std::to_string(tail));
      const auto& want = c.ref["cases"][std::string(name) + "_tail" + std::to_string(tail)];
      at::Tensor observed;
      MantelCounts counts;
      MantelPValues pv = RunMantelCase(c, kind, tail == 0 ? Tail::kTwo : Tail::kUpper, at::kDouble,
                                       /*batch=*/32, /*chunk=*/4, &observed, &counts);
      for (int64_t t = 0; t < observed.size(0); ++t) {
        EXPECT_NEAR(observed[t].item<double>(), want["observed"][t].get<double>(), 1e-12);
        EXPECT_DOUBLE_EQ(pv.p[t].item<double>(), want["p"][t].get<double>()) << "t=" << t;
        EXPECT_DOUBLE_EQ(pv.p_fwer[t].item<double>(), want["p_fwer"][t].get<double>()) << "t=" << t;
      }
      EXPECT_NEAR(counts.null_max.mean().item<double>(), want["null_max_mean"].get<double>(),
                  1e-12);
    }
  }
}

TEST(MantelTest, Float32KernelGivesTheSamePValues) {
  Case c = Load();
  const auto& want = c.ref["cases"]["spearman_tail1"];
  at::Tensor observed;
  MantelCounts counts;
  MantelPValues pv = RunMantelCase(c, CorrelationKind::kSpearman, Tail::kUpper, at::kFloat, 64, 9,
                                   &observed, &counts);
  for (int64_t t = 0; t < observed.size(0); ++t)
    EXPECT_DOUBLE_EQ(pv.p[t].item<double>(), want["p"][t].get<double>()) << "t=" << t;
}

TEST(MantelTest, BatchAndChunkSizesDoNotChangeCounts) {
  Case c = Load();
  at::Tensor o1, o2;
  MantelCounts a, b;
  RunMantelCase(c, CorrelationKind::kSpearman, Tail::kTwo, at::kFloat, 7, 2, &o1, &a);
  RunMantelCase(c, CorrelationKind::kSpearman, Tail::kTwo, at::kFloat, 100, 9, &o2, &b);
  EXPECT_TRUE(at::equal(a.exceed, b.exceed));
  EXPECT_TRUE(at::allclose(a.null_max, b.null_max, 0, 1e-6));
}

// The streaming family-wise counts (what a long sweep keeps instead of every null maximum): the
// maxima counted in uneven pieces give MantelFinish's p_fwer exactly, for both tails.
TEST(MantelTest, StreamedFwerCountsEqualTheWholeNull) {
  Case c = Load();
  for (Tail tail : {Tail::kUpper, Tail::kTwo}) {
    at::Tensor observed;
    MantelCounts counts;
    MantelPValues whole = RunMantelCase(c, CorrelationKind::kSpearman, tail, at::kDouble, 16, 4,
                                        &observed, &counts);
    const int64_t N = counts.null_max.numel();
    at::Tensor fwer = at::zeros({observed.numel()}, at::kLong);
    for (int64_t first = 0, piece = 1; first < N; first += piece, piece = piece * 3 + 1)
      MantelCountFwer(observed, counts.null_max.narrow(0, first, std::min(piece, N - first)),
                      tail, &fwer);
    MantelPValues streamed = MantelPValuesFromCounts(counts.exceed, fwer, N);
    EXPECT_TRUE(at::equal(streamed.p, whole.p));
    EXPECT_TRUE(at::equal(streamed.p_fwer, whole.p_fwer));
    // A case where the counts differ between timepoints (else equal counts would prove little).
    EXPECT_GT((whole.p_fwer.max() - whole.p_fwer.min()).item<double>(), 0.0);
  }
}

TEST(MantelTest, GatherMatchesPermutedSquare) {
  const int64_t n = 9;
  at::Tensor z = at::randn({n * (n - 1) / 2}, at::kDouble);
  at::Tensor sq = SquareFromCondensed(z, n);
  at::Tensor perms = DrawPermutations(/*seed=*/5, /*first=*/0, /*count=*/3, n);
  at::Tensor out = at::empty({3, z.numel()}, at::kDouble);
  GatherPermuted(sq, perms, out);
  for (int64_t b = 0; b < 3; ++b) {
    at::Tensor p = perms[b];
    at::Tensor want = rsa::CondenseSquare(sq.index_select(0, p).index_select(1, p), "x").values;
    EXPECT_TRUE(at::equal(out[b], want));
  }
  // Permutation k is a pure function of (seed, k): a later block drawn alone is identical.
  EXPECT_TRUE(at::equal(DrawPermutations(5, 2, 1, n)[0], perms[2]));
  // The indexed gather (the GPU path) gives the same values, float32 too.
  at::Tensor indexed = at::full({4, z.numel()}, -1.0, at::kDouble);
  GatherPermutedIndexed(sq, perms, indexed);
  EXPECT_TRUE(at::equal(indexed.slice(0, 0, 3), out));
  EXPECT_TRUE(at::equal(indexed[3], at::full({z.numel()}, -1.0, at::kDouble)));  // untouched
  at::Tensor out32 = at::empty({3, z.numel()}, at::kFloat);
  GatherPermutedIndexed(sq.to(at::kFloat), perms, out32);
  EXPECT_TRUE(at::equal(out32, out.to(at::kFloat)));
}

}  // namespace
}  // namespace cliphba::stats
