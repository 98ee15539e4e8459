// The RSA core on the real THINGS data (../shared/data/things) against scipy's definitions
// (scripts/reference/rsa_reference.py -> tests/data_files/rsa_things_reference.json).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/csv.h"
#include "io/npy.h"
#include "rsa/behavior.h"
#include "rsa/ceiling.h"

namespace cliphba::rsa {
namespace {

constexpr double kTol = 1e-9;  // the tolerance against scipy

struct ThingsData {
  at::Tensor embedding;  // (48, 66) in RDM48 row order
  at::Tensor rdm;        // (48, 48)
  CondensedRdm reference;
  std::vector<std::string> names;
  nlohmann::json ref;
};

const ThingsData& Data() {
  static ThingsData* d = [] {
    auto* data = new ThingsData;
    const std::string things = std::string(CLIPHBA_SHARED_DIR) + "/data/things/";
    io::EmbeddingTable table = io::ReadEmbeddingCsv(things + "spose_embedding66d_rescaled.csv");
    data->names = io::ReadNameList(things + "RDM48_image_names.txt");
    auto rows = AlignByName(table.names, data->names, "embedding", "RDM names");
    data->embedding = table.values.index_select(0, at::tensor(rows, at::kLong));
    io::NpyReadOptions fortran_ok;
    fortran_ok.allow_fortran_order = true;  // the shared RDM48 file is Fortran-order
    data->rdm = io::ReadNpy(things + "RDM48_triplet.npy", fortran_ok);
    data->reference = CondenseSquare(data->rdm, "RDM48_triplet.npy");
    std::ifstream in(std::string(CLIPHBA_TEST_DATA_DIR) + "/rsa_things_reference.json");
    data->ref = nlohmann::json::parse(in);
    return data;
  }();
  return *d;
}

TEST(RsaThingsTest, AlignsByImageNameNotRowOrder) {
  const auto& d = Data();
  ASSERT_EQ(d.embedding.size(0), 48);
  ASSERT_EQ(d.embedding.size(1), 66);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(d.names[i], d.ref["first_names"][i].get<std::string>());
  // triplet48_index.npy gives the same rows of the 1854 embedding.
  const std::string things = std::string(CLIPHBA_SHARED_DIR) + "/data/things/";
  at::Tensor index = io::ReadNpy(things + "triplet48_index.npy");
  io::EmbeddingTable table = io::ReadEmbeddingCsv(things + "spose_embedding66d_rescaled.csv");
  EXPECT_TRUE(at::equal(table.values.index_select(0, index), d.embedding));
}

TEST(RsaThingsTest, FourRdmTypesAndFourComparisonsEqualScipy) {
  const auto& d = Data();
  for (RdmMetric metric : AllMetrics()) {
    SCOPED_TRACE(MetricName(metric));
    const auto& want = d.ref["rdm"][MetricName(metric)];
    CondensedRdm rdm = ComputeRdm(d.embedding, metric);
    ASSERT_EQ(rdm.values.numel(), 1128);
    EXPECT_NEAR(rdm.values.sum().item<double>(), want["sum"].get<double>(), 1e-9);
    for (int i = 0; i < 5; ++i)
      EXPECT_NEAR(rdm.values[i].item<double>(), want["first5"][i].get<double>(), 1e-12);
    double max_diff = 0;
    for (Comparison c : AllComparisons()) {
      double got = Compare(c, rdm.values, d.reference.values);
      double diff = std::abs(got - want[ComparisonName(c)].get<double>());
      max_diff = std::max(max_diff, diff);
      EXPECT_LE(diff, kTol) << ComparisonName(c) << " got " << got;
    }
    std::printf("[ metric %-11s ] max|diff| vs scipy over 4 comparisons: %.3g\n",
                MetricName(metric), max_diff);
  }
}

TEST(RsaThingsTest, TripletAccuracyEqualsReferenceWithTiesExcluded) {
  const auto& d = Data();
  TripletResult r = TripletAccuracyAll(DotSimilarity(d.embedding), d.rdm);
  EXPECT_EQ(r.n_tied, d.ref["n_triplets_tied"].get<int64_t>());
  EXPECT_EQ(r.n_used, d.ref["n_triplets"].get<int64_t>());
  EXPECT_EQ(r.n_used + r.n_tied, 17296);
  EXPECT_NEAR(r.accuracy, d.ref["triplet_accuracy"].get<double>(), 1e-12);
}

TEST(RsaThingsTest, SposeSimilarityMatchesPublishedFigure) {
  const auto& d = Data();
  CondensedRdm spose = ComputeRdm(d.embedding, RdmMetric::kSpose);
  at::Tensor similarity = at::rsub(spose.values, 1.0);
  at::Tensor human = at::rsub(d.reference.values, 1.0);
  double r = Pearson(similarity, human);
  EXPECT_NEAR(r, d.ref["spose_similarity_vs_1_minus_rdm48_pearson"].get<double>(), kTol);
  EXPECT_NEAR(r, 0.90, 0.03);  // Hebart et al. report R = 0.90 on the unscaled embedding
}

TEST(RsaThingsTest, NoiseCeilingAndTemporalGeneralisationEqualNumpy) {
  const auto& d = Data();
  std::vector<at::Tensor> rows;
  for (RdmMetric metric : AllMetrics()) {
    at::Tensor v = ComputeRdm(d.embedding, metric).values;
    rows.push_back((v - v.min()) / (v.max() - v.min()));
  }
  at::Tensor stack = at::stack(rows);  // (4, 1128)
  for (auto [name, cmp] :
       {std::pair{"spearman", Comparison::kSpearman}, std::pair{"pearson", Comparison::kPearson}}) {
    SCOPED_TRACE(name);
    const auto& want = d.ref["noise_ceiling"][name];
    NoiseCeiling nc = ComputeNoiseCeiling(stack, cmp);
    for (int p = 0; p < 4; ++p) {
      EXPECT_NEAR(nc.lower[p].item<double>(), want["lower"][p].get<double>(), kTol);
      EXPECT_NEAR(nc.upper[p].item<double>(), want["upper"][p].get<double>(), kTol);
    }
    EXPECT_NEAR(nc.lower_mean, want["lower_mean"].get<double>(), kTol);
    EXPECT_NEAR(nc.upper_mean, want["upper_mean"].get<double>(), kTol);
  }
  at::Tensor tg = TemporalGeneralisation(stack);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      EXPECT_NEAR(tg[i][j].item<double>(), d.ref["temporal_generalisation"][i][j].get<double>(),
                  kTol);
}

TEST(RsaThingsTest, RefusesBrokenReferenceRdms) {
  at::Tensor rdm = Data().rdm.clone();
  rdm[3][7] = rdm[3][7].item<double>() + 1e-3;
  EXPECT_THROW(CondenseSquare(rdm, "asym.npy"), DataError);
  at::Tensor diag = Data().rdm.clone();
  diag[5][5] = 0.5;
  EXPECT_THROW(CondenseSquare(diag, "diag.npy"), DataError);
  at::Tensor nan = Data().rdm.clone();
  nan[1][2] = NAN;
  nan[2][1] = NAN;
  try {
    CondenseSquare(nan, "nan.npy");
    FAIL() << "NaN accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("nan.npy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
  EXPECT_THROW(CondenseSquare(at::zeros({3, 4}, at::kDouble), "rect.npy"), DataError);
}

}  // namespace
}  // namespace cliphba::rsa
