// The alignment unit's per-participant CIs and the dynamic behavioural validation's human RDM
// (pipeline/run.h): ParticipantCis equals the object bootstrap computed directly, fold by fold
// and timepoint by timepoint, on a design whose MEG stack lists the objects in another order than
// the models (a mix-up of the two pair orders or of the participant row would show); HumanRdmOn
// aligns a reference RDM by name and skips (with a reason) when names are missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/csv.h"
#include "io/npy.h"
#include "pipeline/run.h"
#include "rsa/rdm.h"
#include "stats/bootstrap.h"

namespace cliphba::pipeline {
namespace {

namespace fs = std::filesystem;

at::Tensor Random(std::vector<int64_t> shape, uint64_t stream) {
  CounterRng r(11, stream);
  at::Tensor x = at::empty(shape, at::kDouble);
  double* p = x.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = r.Uniform();
  return x;
}

TEST(ParticipantCiTest, EqualsTheObjectBootstrapFoldByFold) {
  const int64_t n = 12, T = 6, P = 2, B = 40, K = 3;
  const uint64_t seed = 5;
  // The stack's order of the design's objects: design object i is stack object perm[i].
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::reverse(perm.begin(), perm.end());
  std::swap(perm[2], perm[7]);
  const std::vector<int64_t> fold = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2};
  FoldPairs folds;
  for (int64_t k = 0; k < K; ++k) {
    std::vector<int64_t> local, global;
    for (int64_t i = 0; i < n; ++i)
      if (fold[size_t(i)] == k) {
        local.push_back(i);
        global.push_back(perm[size_t(i)]);
      }
    folds.model_pairs.push_back(rsa::SubsetPairIndices(n, local));
    folds.stack_pairs.push_back(rsa::SubsetPairIndices(n, global));
    folds.sizes.push_back(int64_t(local.size()));
  }
  const at::Tensor model = Random({T, rsa::NumPairs(n)}, 1);    // design order
  const at::Tensor meg = Random({P, T, rsa::NumPairs(n)}, 2);   // stack order
  const at::Tensor times = at::arange(T, at::kDouble) * 50.0 - 100.0;  // -100 .. 150 ms
  std::vector<ParticipantCurve> curves = {{"group", 1, model, at::zeros({T}, at::kDouble)}};
  // The estimate: the mean over folds of the curve on each fold's pairs.
  for (int64_t k = 0; k < K; ++k)
    for (int64_t t = 0; t < T; ++t)
      curves[0].estimate[t] +=
          rsa::Spearman(model[t].index_select(0, folds.model_pairs[size_t(k)]),
                        meg[1][t].index_select(0, folds.stack_pairs[size_t(k)])) / double(K);
  const std::vector<stats::CurveCi> got = ParticipantCis(
      curves, meg, folds, 0, {T}, times, B, seed, parallel::Comm::Serial());
  ASSERT_EQ(got.size(), 1u);

  // Directly: per fold its resamples (the documented streams), per timepoint the static block.
  at::Tensor sum = at::zeros({B, T}, at::kDouble);
  for (int64_t k = 0; k < K; ++k) {
    const at::Tensor idx = stats::ResampleIndices(
        seed, (0xC7ull << 56) | (uint64_t(k) << 40), 0, B, folds.sizes[size_t(k)]);
    for (int64_t t = 0; t < T; ++t)
      sum.select(1, t).add_(
          stats::BootstrapObjectsBlock(
              model[t].index_select(0, folds.model_pairs[size_t(k)]).contiguous(),
              meg[1][t].index_select(0, folds.stack_pairs[size_t(k)]).unsqueeze(0).contiguous(),
              times.slice(0, t, t + 1).contiguous(), rsa::Comparison::kSpearman, idx)
              .curves.select(1, 0));
  }
  const int64_t first = 2;  // t >= 0 ms
  const at::Tensor t0 = times.slice(0, first).contiguous();
  const stats::CurveCi want = stats::SummarizeBootstrap(
      curves[0].estimate.slice(0, first).contiguous(), t0,
      stats::SamplesFromCurves((sum / double(K)).slice(1, first).contiguous(), t0), 0.95);
  EXPECT_EQ(got[0].n_valid, want.n_valid);
  EXPECT_NEAR(got[0].peak_ms, want.peak_ms, 0);
  EXPECT_NEAR(got[0].peak_lower, want.peak_lower, 1e-12);
  EXPECT_NEAR(got[0].peak_upper, want.peak_upper, 1e-12);
  EXPECT_NEAR(got[0].auc, want.auc, 1e-12);
  EXPECT_NEAR(got[0].auc_lower, want.auc_lower, 1e-12);
  EXPECT_NEAR(got[0].auc_upper, want.auc_upper, 1e-12);
  EXPECT_LT(got[0].auc_lower, got[0].auc_upper);

  // Another participant row gives other CIs; no timepoint from 0 ms gives none.
  curves[0].participant = 0;
  EXPECT_NE(ParticipantCis(curves, meg, folds, 0, {T}, times, B, seed, parallel::Comm::Serial())[0]
                .auc_upper,
            got[0].auc_upper);
  EXPECT_TRUE(ParticipantCis(curves, meg, folds, 0, {T}, times - 1000.0, B, seed,
                             parallel::Comm::Serial())
                  .empty());
}

TEST(HumanRdmTest, AlignsAReferenceRdmByNameAndSkipsWhenNamesAreMissing) {
  const fs::path dir = fs::path(CLIPHBA_TEST_OUT_DIR) / "human_rdm";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Reference over 4 objects in the order d, a, c, b; the design asks for a, b, c.
  const std::vector<std::string> ref_names = {"d", "a", "c", "b"};
  at::Tensor sq = at::zeros({4, 4}, at::kDouble);
  auto set = [&](int i, int j, double v) { sq[i][j] = v, sq[j][i] = v; };
  set(0, 1, 0.1), set(0, 2, 0.2), set(0, 3, 0.3), set(1, 2, 0.4), set(1, 3, 0.5), set(2, 3, 0.6);
  io::WriteNpy((dir / "rdm.npy").string(), sq);
  io::WriteNameList((dir / "names.txt").string(), ref_names);
  config::Config cfg;
  cfg.train_behavior.reference_rdm = (dir / "rdm.npy").string();
  cfg.train_behavior.reference_rdm_names = (dir / "names.txt").string();
  const HumanRdm h = HumanRdmOn(cfg, {"a", "b", "c"});
  ASSERT_TRUE(h.rdm.defined()) << h.problem;
  // (a, b) = 0.5, (a, c) = 0.4, (b, c) = 0.6
  EXPECT_TRUE(at::allclose(h.rdm, at::tensor({0.5, 0.4, 0.6}, at::kDouble), 0, 0));
  EXPECT_EQ(h.source, cfg.train_behavior.reference_rdm);
  const HumanRdm missing = HumanRdmOn(cfg, {"a", "x", "y"});
  EXPECT_FALSE(missing.rdm.defined());
  EXPECT_NE(missing.problem.find("lacks 2 of the 3"), std::string::npos) << missing.problem;
  // A reference that is not an RDM (asymmetric) is an error naming the file.
  sq[0][1] = 0.9;
  io::WriteNpy((dir / "rdm.npy").string(), sq);
  EXPECT_THROW(HumanRdmOn(cfg, {"a", "b", "c"}), DataError);
  // Without a reference: the targets CSV; a missing CSV is a reason to skip, not an error.
  config::Config c2;
  c2.train_behavior.targets_csv = (dir / "absent.csv").string();
  const HumanRdm none = HumanRdmOn(c2, {"a", "b", "c"});
  EXPECT_FALSE(none.rdm.defined());
  EXPECT_NE(none.problem.find("does not exist"), std::string::npos);
  EXPECT_FALSE(HumanRdmOn(config::Config{}, {"a", "b", "c"}).rdm.defined());
}

}  // namespace
}  // namespace cliphba::pipeline
