// Time-resolved alignment statistics against numpy/scipy
// (scripts/reference/alignment_reference.py): Spearman/Pearson curves, noise ceilings, AUC, peak
// latency and the mean from 0 ms at 1e-10 (float64); own-vs-other statistics at 1e-12 and p-values
// exactly. Plus analytic checks (triangle curve, planted diagonal) and the error cases.
#include "rsa/alignment.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/npy.h"

namespace cliphba::rsa {
namespace {

const std::string kDir = std::string(CLIPHBA_TEST_DATA_DIR) + "/alignment_reference/";
constexpr double kTol = 1e-10;

nlohmann::json Ref() {
  std::ifstream in(kDir + "reference.json");
  return nlohmann::json::parse(in);
}

at::Tensor Matrix(const nlohmann::json& j) {
  std::vector<at::Tensor> rows;
  for (const auto& r : j) rows.push_back(at::tensor(r.get<std::vector<double>>(), at::kDouble));
  return at::stack(rows);
}

void ExpectNear(const at::Tensor& got, const at::Tensor& want, double tol, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double diff = (got - want).abs().max().item<double>();
  EXPECT_LE(diff, tol) << what;
}

TEST(AlignmentTest, TimeResolvedMatchesScipyWithTies) {
  const nlohmann::json ref = Ref();
  const at::Tensor model = io::ReadNpy(kDir + "model.npy");
  const at::Tensor meg = io::ReadNpy(kDir + "meg.npy");
  // The data really contain ties (one-decimal values), so average ranks matter.
  ASSERT_LT(std::get<0>(at::_unique(model[0])).numel(), model.size(1));
  const TimeResolvedAlignment a = AlignTimeResolved(model, meg);
  EXPECT_EQ(a.spearman.scalar_type(), at::kDouble);
  ExpectNear(a.spearman, Matrix(ref["spearman"]), kTol, "spearman");
  ExpectNear(a.pearson, Matrix(ref["pearson"]), kTol, "pearson");
  // float32 inputs are promoted: same numbers up to float32 rounding of the one-decimal values.
  const TimeResolvedAlignment f = AlignTimeResolved(model.to(at::kFloat), meg.to(at::kFloat));
  ExpectNear(f.spearman, a.spearman, 1e-6, "float32 spearman");
}

// Time generalisation: each entry is the Spearman of the two rows (AlignTimeResolved's statistic
// for equal times); the diagonal of a set with itself is 1 and the matrix symmetric; a row split
// (what ranks do) gives the same bits; a constant row is a DataError.
TEST(AlignmentTest, TimeGeneralizationIsRowwiseSpearman) {
  at::manual_seed(3);
  const at::Tensor a = at::rand({5, 21}, at::kDouble).round_(2);  // ties
  const at::Tensor b = at::rand({4, 21}, at::kDouble);
  const at::Tensor tg = TimeGeneralization(a, b);
  ASSERT_EQ(tg.sizes(), (std::vector<int64_t>{5, 4}));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      const TimeResolvedAlignment one =
          AlignTimeResolved(a[i].unsqueeze(0), b[j].view({1, 1, 21}));
      EXPECT_NEAR(tg[i][j].item<double>(), one.spearman[0][0].item<double>(), 1e-14);
    }
  const at::Tensor self = TimeGeneralization(a, a);
  EXPECT_TRUE(at::allclose(at::diagonal(self), at::ones({5}, at::kDouble), 0, 1e-14));
  EXPECT_TRUE(at::allclose(self, self.t(), 0, 1e-14));
  EXPECT_TRUE(at::equal(TimeGeneralization(a.slice(0, 2, 5), b), tg.slice(0, 2, 5)));
  EXPECT_TRUE(at::equal(TimeGeneralization(a, b.slice(0, 1, 3)), tg.slice(1, 1, 3)));
  at::Tensor flat = a.clone();
  flat[3].fill_(0.5);
  EXPECT_THROW(TimeGeneralization(flat, b), DataError);
  EXPECT_THROW(TimeGeneralization(a, b.slice(1, 0, 20)), DataError);
}

TEST(AlignmentTest, CeilingMatchesScipy) {
  const nlohmann::json ref = Ref();
  const TimeResolvedCeiling c = CeilingTimeResolved(io::ReadNpy(kDir + "meg.npy"));
  ExpectNear(c.lower, Matrix(ref["ceiling_lower"]), kTol, "lower");
  ExpectNear(c.upper, Matrix(ref["ceiling_upper"]), kTol, "upper");
  EXPECT_TRUE((c.lower <= c.upper).all().item<bool>());
}

TEST(AlignmentTest, AucPeakAndMeanMatchNumpy) {
  const nlohmann::json ref = Ref();
  const double start = ref["start_ms"], step = ref["step_ms"];
  const TimeResolvedAlignment a =
      AlignTimeResolved(io::ReadNpy(kDir + "model.npy"), io::ReadNpy(kDir + "meg.npy"));
  for (int64_t p = 0; p < a.spearman.size(0); ++p) {
    EXPECT_NEAR(AreaFromZero(a.spearman[p], start, step), ref["auc"][p].get<double>(), kTol) << p;
    EXPECT_DOUBLE_EQ(PeakLatencyMs(a.spearman[p], start, step), ref["peak_ms"][p].get<double>())
        << p;
  }
  ExpectNear(MeanFromZero(a.spearman, start, step),
             at::tensor(ref["mean_from_zero"].get<std::vector<double>>(), at::kDouble), kTol,
             "mean from 0 ms");
}

TEST(AlignmentTest, AucAndPeakOfTriangle) {
  // Triangle rising from 0 at 0 ms to 1 at 100 ms and back to 0 at 200 ms, sampled every 10 ms
  // from -50 ms (the negative part is a high plateau that must be ignored).
  std::vector<double> v;
  for (int i = 0; i < 26; ++i) {
    const double t = -50 + 10.0 * i;
    v.push_back(t < 0 ? 5.0 : t <= 100 ? t / 100 : t <= 200 ? (200 - t) / 100 : 0.0);
  }
  const at::Tensor c = at::tensor(v, at::kDouble);
  EXPECT_NEAR(AreaFromZero(c, -50, 10), 0.1, 1e-12);  // 0.5 * 0.2 s * 1
  EXPECT_DOUBLE_EQ(PeakLatencyMs(c, -50, 10), 100.0);
  // Ties: the first maximum.
  const at::Tensor flat = at::tensor(std::vector<double>{9, 1, 3, 3, 2}, at::kDouble);
  EXPECT_DOUBLE_EQ(PeakLatencyMs(flat, -5, 5), 5.0);
  // Fewer than two timepoints from 0 ms: area 0.
  EXPECT_EQ(AreaFromZero(flat, -20, 5), 0.0);
}

TEST(AlignmentTest, OwnVsOtherExactMatchesEnumeration) {
  const nlohmann::json ref = Ref();
  const at::Tensor mx = io::ReadNpy(kDir + "ovo_exact_matrix.npy");
  const auto own = ref["ovo_exact"]["own"].get<std::vector<int64_t>>();
  const OwnVsOther r = OwnVsOtherTest(mx, own, 1000, 7);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.n_permutations, 24);
  EXPECT_NEAR(r.statistic, ref["ovo_exact"]["statistic"].get<double>(), 1e-12);
  EXPECT_EQ(r.p_value, ref["ovo_exact"]["p_value"].get<double>());
  // n < P! = 24 switches to random permutations with the (1 + #) / (1 + n) estimator.
  const OwnVsOther rr = OwnVsOtherTest(mx, own, 23, 7);
  EXPECT_FALSE(rr.exact);
  EXPECT_EQ(rr.n_permutations, 23);
  EXPECT_EQ(rr.statistic, r.statistic);
}

TEST(AlignmentTest, OwnVsOtherExplicitPermutationsMatchReference) {
  const nlohmann::json ref = Ref();
  const at::Tensor mr = io::ReadNpy(kDir + "ovo_random_matrix.npy");
  const auto own = ref["ovo_random"]["own"].get<std::vector<int64_t>>();
  const OwnVsOther r =
      OwnVsOtherTestWithPermutations(mr, own, io::ReadNpy(kDir + "ovo_random_perms.npy"));
  EXPECT_FALSE(r.exact);
  EXPECT_EQ(r.n_permutations, 199);
  EXPECT_NEAR(r.statistic, ref["ovo_random"]["statistic"].get<double>(), 1e-12);
  EXPECT_EQ(r.p_value, ref["ovo_random"]["p_value"].get<double>());
}

TEST(AlignmentTest, OwnVsOtherSeededEqualsItsPermutations) {
  // P = 7: 5040 > n = 300, so random permutations from (seed, kOwnVsOtherStream | k).
  const at::Tensor mr = io::ReadNpy(kDir + "ovo_random_matrix.npy");
  const std::vector<int64_t> own{6, 1, 4, 0, 2};
  const int64_t n = 300;
  const uint64_t seed = 11;
  at::Tensor perms = at::empty({n, 7}, at::kLong);
  for (int64_t k = 0; k < n; ++k)
    RandomPermutation(seed, kOwnVsOtherStream | uint64_t(k), 7, perms[k].data_ptr<int64_t>());
  const OwnVsOther a = OwnVsOtherTest(mr, own, n, seed);
  const OwnVsOther b = OwnVsOtherTestWithPermutations(mr, own, perms);
  EXPECT_FALSE(a.exact);
  EXPECT_EQ(a.p_value, b.p_value);
  EXPECT_EQ(a.statistic, b.statistic);
  EXPECT_EQ(OwnVsOtherTest(mr, own, n, seed).p_value, a.p_value);  // deterministic
  EXPECT_GT(a.p_value, 1.0 / (n + 1));
  EXPECT_LE(a.p_value, 1.0);
}

TEST(AlignmentTest, PlantedDiagonalGivesOneOverPFactorial) {
  // Own entries 1 + small noise, others small noise: only the identity relabelling reaches it.
  for (int64_t P : {3, 4, 5}) {
    at::Tensor mx = at::rand({P, P}, at::TensorOptions(at::kDouble)) * 0.1;
    mx += at::eye(P, at::kDouble);
    std::vector<int64_t> own(static_cast<size_t>(P));
    for (int64_t i = 0; i < P; ++i) own[size_t(i)] = i;
    int64_t fact = 1;
    for (int64_t k = 2; k <= P; ++k) fact *= k;
    const OwnVsOther r = OwnVsOtherTest(mx, own, 1000, 1);
    EXPECT_TRUE(r.exact) << P;
    EXPECT_EQ(r.n_permutations, fact);
    EXPECT_EQ(r.p_value, 1.0 / double(fact)) << P;
    EXPECT_GT(r.statistic, 0.8);
  }
}

TEST(AlignmentTest, OwnVsOtherMatrixIsMeanFromZero) {
  const at::Tensor a = at::arange(12, at::kDouble).reshape({3, 4});  // times -10, 0, 10, 20
  const at::Tensor b = a * 2;
  const at::Tensor m = OwnVsOtherMatrix({a, b}, -10, 10);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_DOUBLE_EQ(m[0][0].item<double>(), 2.0);   // mean(1, 2, 3)
  EXPECT_DOUBLE_EQ(m[1][2].item<double>(), 20.0);  // 2 * mean(9, 10, 11)
  EXPECT_THROW(OwnVsOtherMatrix({a, b.narrow(0, 0, 2)}, -10, 10), DataError);
}

TEST(AlignmentTest, BadInputIsDataError) {
  const at::Tensor model = io::ReadNpy(kDir + "model.npy");
  const at::Tensor meg = io::ReadNpy(kDir + "meg.npy");
  // Shape mismatches: T, m, rank.
  EXPECT_THROW(AlignTimeResolved(model.narrow(0, 0, 5), meg), DataError);
  EXPECT_THROW(AlignTimeResolved(model.narrow(1, 0, 10), meg), DataError);
  EXPECT_THROW(AlignTimeResolved(model, meg[0]), DataError);
  // NaN, and a constant RDM (message names participant and timepoint).
  at::Tensor bad = meg.clone();
  bad[1][2][3] = std::nan("");
  EXPECT_THROW(AlignTimeResolved(model, bad), DataError);
  EXPECT_THROW(CeilingTimeResolved(bad), DataError);
  at::Tensor flat = meg.clone();
  flat[2][4].fill_(0.5);
  try {
    AlignTimeResolved(model, flat);
    ADD_FAILURE() << "no error for a constant RDM";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("participant 2 at timepoint 4"), std::string::npos)
        << e.what();
  }
  // Ceilings need P >= 2.
  EXPECT_THROW(CeilingTimeResolved(meg.narrow(0, 0, 1)), DataError);
  // Curves.
  const at::Tensor c = at::zeros({4}, at::kDouble);
  EXPECT_THROW(PeakLatencyMs(c, -100, 10), DataError);  // no timepoint >= 0 ms
  EXPECT_THROW(AreaFromZero(c, 0, 0), DataError);       // step 0
  EXPECT_THROW(AreaFromZero(at::zeros({2, 2}), 0, 1), DataError);
  at::Tensor cn = c.clone();
  cn[2] = std::nan("");
  EXPECT_THROW(PeakLatencyMs(cn, 0, 1), DataError);
  EXPECT_NO_THROW(PeakLatencyMs(cn, -30, 10));  // the NaN lies before 0 ms: unused
  // Own vs other.
  const at::Tensor mx = at::rand({3, 4}, at::TensorOptions(at::kDouble));
  EXPECT_THROW(OwnVsOtherTest(mx, {0, 1}, 100, 1), DataError);            // one own per model
  EXPECT_THROW(OwnVsOtherTest(mx, {0, 1, 1}, 100, 1), DataError);         // repeated
  EXPECT_THROW(OwnVsOtherTest(mx, {0, 1, 4}, 100, 1), DataError);         // out of range
  EXPECT_THROW(OwnVsOtherTest(mx.t(), {0, 1, 2, 3}, 100, 1), DataError);  // M > P
  EXPECT_THROW(OwnVsOtherTest(mx, {0, 1, 2}, 0, 1), ConfigError);
  at::Tensor mxn = mx.clone();
  mxn[0][0] = std::nan("");
  EXPECT_THROW(OwnVsOtherTest(mxn, {0, 1, 2}, 100, 1), DataError);
  EXPECT_THROW(OwnVsOtherTestWithPermutations(mx, {0, 1, 2},
                                              at::zeros({2, 4}, at::kLong)),  // not permutations
               DataError);
}

}  // namespace
}  // namespace cliphba::rsa
