// The MEG alignment block of a results file: written with io::ResultsStore, read back with
// io::ResultsReader, every dataset and attribute of the schema (results/README.md) checked.
#include "pipeline/alignment_results.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/results_store.h"

namespace cliphba::pipeline {
namespace {

const std::string kOut = std::string(CLIPHBA_TEST_OUT_DIR) + "/alignment_results";

// P = 3 participants, T = 5 timepoints at -10, 0, 10, 20, 30 ms.
at::Tensor Times() { return at::tensor(std::vector<double>{-10, 0, 10, 20, 30}, at::kDouble); }
const std::vector<std::string> kLabels{"p01", "p02", "p03"};

rsa::TimeResolvedAlignment Curves(double scale) {
  rsa::TimeResolvedAlignment a;
  a.spearman = at::tensor(std::vector<double>{9, 0.1, 0.2, 0.4, 0.3,  //
                                              9, 0.5, 0.1, 0.1, 0.1,  //
                                              9, 0.0, 0.0, 0.0, 0.3},
                          at::kDouble)
                   .reshape({3, 5}) *
               scale;
  a.pearson = a.spearman * 0.5;
  return a;
}

const AlignmentObjects kCv{"cross_validated", 12, 18, 4};
const AlignmentObjects kInsample{"insample", 12, 66, 1};

std::string Fresh(const std::string& name) {
  std::filesystem::create_directories(kOut);
  const std::string path = kOut + "/" + name;
  std::filesystem::remove(path);
  return path;
}

TEST(AlignmentResultsTest, WritesAndReadsBackTheSchema) {
  const std::string path = Fresh("full.h5");
  rsa::TimeResolvedCeiling ceiling{at::full({3, 5}, 0.4, at::kDouble),
                                   at::full({3, 5}, 0.6, at::kDouble)};
  const at::Tensor ovo =
      at::tensor(std::vector<double>{0.3, 0.1, 0.0, 0.2}, at::kDouble).reshape({2, 2});
  const rsa::OwnVsOther test{0.2, 0.5, 2, true};
  {
    io::ResultsStore store = io::ResultsStore::Create(path);
    WriteMegAxes(&store, Times(), kLabels);
    WriteMegAlignment(&store, "group", Curves(1.0), Times(), kLabels, kCv);
    WriteMegAlignment(&store, "group", Curves(2.0), Times(), kLabels, kInsample,
                      "alignment_insample");
    WriteMegAlignment(&store, "individual/p02", Curves(0.5), Times(), kLabels, kCv);
    WriteCeiling(&store, ceiling, Times(), kLabels, kCv);
    WriteOwnVsOther(&store, ovo, test, {"individual/p01", "individual/p02"}, {"p01", "p02"},
                    {0, 1});
    WriteBlockWeights(&store, "group", at::full({5, 3}, 1.0 / 3, at::kFloat), Times());
    WriteTimeGeneralization(&store, "/meg/time_generalization", at::ones({3, 5, 5}), Times(),
                            kLabels, kCv, "test");
    store.Commit();
  }
  io::ResultsReader r(path);
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/times_ms"), Times()));
  EXPECT_EQ(r.ReadStrings("/meg/participants"), kLabels);
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/group/alignment/spearman"), Curves(1.0).spearman));
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/group/alignment/pearson"), Curves(1.0).pearson));
  // AUC and peak from 0 ms (the 9 at -10 ms is ignored); trapezoid in rho x s.
  const at::Tensor auc = r.ReadTensor("/meg/group/alignment/auc");
  const at::Tensor peak = r.ReadTensor("/meg/group/alignment/peak_ms");
  ASSERT_EQ(auc.sizes(), (std::vector<int64_t>{3}));
  EXPECT_NEAR(auc[0].item<double>(), 0.01 * (0.15 + 0.3 + 0.35), 1e-15);
  EXPECT_NEAR(auc[1].item<double>(), 0.01 * (0.3 + 0.1 + 0.1), 1e-15);
  EXPECT_DOUBLE_EQ(peak[0].item<double>(), 20.0);
  EXPECT_DOUBLE_EQ(peak[1].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(peak[2].item<double>(), 30.0);
  EXPECT_EQ(r.ReadStringAttribute("/meg/group/alignment/auc", "units"), "rho x s");
  EXPECT_DOUBLE_EQ(r.ReadDoubleAttribute("/meg/group/alignment", "time_start_ms"), -10.0);
  EXPECT_DOUBLE_EQ(r.ReadDoubleAttribute("/meg/group/alignment", "time_step_ms"), 10.0);
  EXPECT_NEAR(r.ReadTensor("/meg/individual/p02/alignment/auc")[0].item<double>(),
              0.5 * auc[0].item<double>(), 1e-15);
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/ceiling/lower"), ceiling.lower));
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/ceiling/upper"), ceiling.upper));
  EXPECT_EQ(r.ReadStringAttribute("/meg/ceiling", "comparison"), "spearman");
  // What every block was computed on.
  for (const char* g : {"/meg/group/alignment", "/meg/individual/p02/alignment", "/meg/ceiling"}) {
    const AlignmentObjects o = ReadObjectsAttributes(r, g);
    EXPECT_EQ(o.objects, "cross_validated") << g;
    EXPECT_EQ(o.n_objects, 12) << g;
    EXPECT_EQ(o.n_pairs, 18) << g;
    EXPECT_EQ(o.n_folds, 4) << g;
  }
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/group/alignment_insample/spearman"),
                        Curves(2.0).spearman));
  EXPECT_EQ(ReadObjectsAttributes(r, "/meg/group/alignment_insample").objects, "insample");
  EXPECT_NE(r.ReadStringAttribute("/meg/group/alignment_insample", "objects_definition")
                .find("DIAGNOSTIC"),
            std::string::npos);
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/own_vs_other/matrix"), ovo));
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/own_vs_other/own"),
                        at::tensor(std::vector<int64_t>{0, 1}, at::kLong)));
  EXPECT_DOUBLE_EQ(r.ReadDoubleAttribute("/meg/own_vs_other/matrix", "statistic"), 0.2);
  EXPECT_DOUBLE_EQ(r.ReadDoubleAttribute("/meg/own_vs_other/matrix", "p_value"), 0.5);
  EXPECT_EQ(r.ReadIntAttribute("/meg/own_vs_other/matrix", "n_permutations"), 2);
  EXPECT_EQ(r.ReadIntAttribute("/meg/own_vs_other/matrix", "exact"), 1);
  EXPECT_TRUE(at::allclose(r.ReadTensor("/meg/group/block_weights"),
                           at::full({5, 3}, 1.0 / 3, at::kDouble)));
  EXPECT_EQ(r.ReadIntAttribute("/meg/group/block_weights", "n_blocks"), 3);
  EXPECT_TRUE(at::equal(r.ReadTensor("/meg/time_generalization"), at::ones({3, 5, 5}, at::kDouble)));
  EXPECT_EQ(ReadObjectsAttributes(r, "/meg/time_generalization").objects, "cross_validated");
  EXPECT_DOUBLE_EQ(r.ReadDoubleAttribute("/meg/group/block_weights", "time_step_ms"), 10.0);
}

TEST(AlignmentResultsTest, BadInputIsRefusedAndNothingIsWritten) {
  const std::string path = Fresh("bad.h5");
  {
    io::ResultsStore store = io::ResultsStore::Create(path);
    // Model names.
    for (const char* bad : {"", "groups", "individual/", "individual/a/b", "/group"})
      EXPECT_THROW(WriteMegAlignment(&store, bad, Curves(1), Times(), kLabels, kCv), DataError)
          << bad;
    // Shapes: participants and timepoints.
    EXPECT_THROW(WriteMegAlignment(&store, "group", Curves(1), Times(), {"a", "b"}, kCv),
                 DataError);
    EXPECT_THROW(
        WriteMegAlignment(&store, "group", Curves(1), Times().narrow(0, 0, 4), kLabels, kCv),
        DataError);
    // In-sample values are never written as the alignment result, nor out-of-sample ones as the
    // diagnostic; unknown kinds, other blocks and too few objects are refused.
    EXPECT_THROW(WriteMegAlignment(&store, "group", Curves(1), Times(), kLabels, kInsample),
                 DataError);
    EXPECT_THROW(WriteMegAlignment(&store, "group", Curves(1), Times(), kLabels, kCv,
                                   "alignment_insample"),
                 DataError);
    EXPECT_THROW(WriteMegAlignment(&store, "group", Curves(1), Times(), kLabels,
                                   {"all", 12, 66, 1}),
                 DataError);
    EXPECT_THROW(
        WriteMegAlignment(&store, "group", Curves(1), Times(), kLabels, kCv, "alignment_x"),
        DataError);
    EXPECT_THROW(WriteMegAlignment(&store, "group", Curves(1), Times(), kLabels,
                                   {"heldout", 2, 1, 1}),
                 DataError);
    // Uneven or decreasing times.
    at::Tensor uneven = Times().clone();
    uneven[3] = 21.0;
    EXPECT_THROW(WriteMegAxes(&store, uneven, kLabels), DataError);
    EXPECT_THROW(WriteMegAxes(&store, -Times(), kLabels), DataError);
    EXPECT_THROW(
        WriteCeiling(&store, {at::zeros({2, 5}), at::zeros({3, 5})}, Times(), kLabels, kCv),
        DataError);
    EXPECT_THROW(WriteOwnVsOther(&store, at::zeros({2, 3}), {0, 1, 1, true}, {"individual/p01"},
                                 kLabels, {0}),
                 DataError);
    // Block weights: rows != timepoints, a negative or NaN weight, a bad model name.
    EXPECT_THROW(WriteBlockWeights(&store, "group", at::ones({4, 3}), Times()), DataError);
    EXPECT_THROW(WriteBlockWeights(&store, "group", -at::ones({5, 3}), Times()), DataError);
    EXPECT_THROW(WriteBlockWeights(&store, "group", at::full({5, 3}, NAN), Times()), DataError);
    EXPECT_THROW(WriteBlockWeights(&store, "nope", at::ones({5, 3}), Times()), DataError);
    EXPECT_THROW(WriteTimeGeneralization(&store, "/meg/time_generalization", at::ones({3, 5, 4}),
                                         Times(), kLabels, kCv, "test"),
                 DataError);
    // Nothing was committed: no file under the final name.
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

// The file the C++ writer produces is what scripts/report.py reads: the report of a file written
// here (with provenance) has the group model's peak latency and the own-vs-other p-value.
TEST(AlignmentResultsTest, ReportScriptReadsTheWrittenFile) {
  const std::string path = Fresh("for_report.h5");
  const std::string outdir = kOut + "/report";
  std::filesystem::remove_all(outdir);
  {
    io::ResultsStore store = io::ResultsStore::Create(path);
    io::WriteProvenance(&store, "run", "hash", "yaml: 1");
    WriteMegAxes(&store, Times(), kLabels);
    WriteMegAlignment(&store, "group", Curves(1.0), Times(), kLabels, kCv);
    WriteMegAlignment(&store, "group", Curves(2.0), Times(), kLabels, kInsample,
                      "alignment_insample");
    WriteMegAlignment(&store, "individual/p01", Curves(0.5), Times(), kLabels, kCv);
    WriteCeiling(&store, {at::full({3, 5}, 0.2, at::kDouble), at::full({3, 5}, 0.7, at::kDouble)},
                 Times(), kLabels, kCv);
    WriteOwnVsOther(&store, at::tensor(std::vector<double>{0.9, 0.1}, at::kDouble).reshape({1, 2}),
                    {0.8, 0.5, 2, true}, {"individual/p01"}, {"p01", "p02"}, {0});
    store.Commit();
  }
  const std::string scripts = std::string(CLIPHBA_TEST_DATA_DIR) + "/../../scripts";
  const std::string cmd = "MPLBACKEND=Agg /usr/bin/python3 " + scripts + "/report.py " + path +
                          " " + outdir + " > " + kOut + "/report.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(outdir + "/report.md");
  std::stringstream md;
  md << in.rdbuf();
  // Group: the mean curve from 0 ms (0.2, 0.1, 0.167, 0.233) peaks at 30 ms with 0.233 -- not
  // at the mean of the participants' own peaks (20, 0, 30 ms: 16.7 +- 12.5, the last column);
  // AUC = mean of the AUCs (0.008, 0.005, 0.0015). individual/p01: its own participant's row
  // (x 0.5), maximum 0.2 at 20 ms.
  EXPECT_NE(md.str().find("| group | 30.0 | 0.0048 | 0.233 | 0.200..0.700 | 16.7 +- 12.5 |"),
            std::string::npos)
      << md.str();
  EXPECT_NE(md.str().find("| individual/p01 | 20.0 | 0.0040 | 0.200 | 0.200..0.700 | 20.0 |"),
            std::string::npos)
      << md.str();
  EXPECT_NE(md.str().find("cross-validated: 4 folds, 12 objects, 18 pairs"), std::string::npos)
      << md.str();
  EXPECT_NE(md.str().find("| group | 0.467 | 0.233 |"), std::string::npos) << md.str();
  EXPECT_NE(md.str().find("own - other = 0.8000, p = 0.5, 2 permutations (exact"),
            std::string::npos)
      << md.str();
  for (const char* f : {"alignment_group", "alignment_individual_p01", "own_vs_other"})
    EXPECT_TRUE(std::filesystem::exists(outdir + "/plots/" + f + ".svg")) << f;
}

}  // namespace
}  // namespace cliphba::pipeline
