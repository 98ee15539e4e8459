#include "data/synth_behavior.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/csv.h"
#include "io/npy.h"
#include "rsa/behavior.h"

namespace cliphba::data {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

config::SynthBehaviorOptions Options(const std::string& name, int64_t seed) {
  config::SynthBehaviorOptions o;
  o.out_dir = std::string(CLIPHBA_TEST_OUT_DIR) + "/synth/" + name;
  std::filesystem::remove_all(o.out_dir);
  o.n_objects = 30;
  o.seed = seed;
  return o;
}

TEST(SynthBehaviorTest, DeterministicBySeed) {
  auto a = GenerateSynthBehavior(Options("a", 3));
  auto b = GenerateSynthBehavior(Options("b", 3));
  auto c = GenerateSynthBehavior(Options("c", 4));
  ASSERT_EQ(a.files.size(), 6u);
  for (size_t i = 0; i + 1 < a.files.size(); ++i) {  // ground_truth.json names no paths either
    EXPECT_EQ(Slurp(a.files[i]), Slurp(b.files[i])) << a.files[i];
  }
  EXPECT_NE(Slurp(a.files[2]), Slurp(c.files[2]));  // rdm.npy
  EXPECT_FALSE(std::filesystem::exists(a.files.back() + ".partial"));
}

// The planted structure is recoverable: the true embedding's SPoSE RDM predicts the simulated human
// RDM much better than chance, and better than the noisy "model" embedding does.
TEST(SynthBehaviorTest, HumanRdmReflectsTheLatentEmbedding) {
  auto s = GenerateSynthBehavior(Options("truth", 1));
  const std::string dir = s.out_dir + "/";
  io::EmbeddingTable truth = io::ReadEmbeddingCsv(dir + "embedding.csv");
  io::EmbeddingTable model = io::ReadEmbeddingCsv(dir + "model_embedding.csv");
  std::vector<std::string> names = io::ReadNameList(dir + "rdm_names.txt");
  EXPECT_NE(names, truth.names) << "RDM rows should be shuffled relative to the CSV";
  at::Tensor rdm = io::ReadNpy(dir + "rdm.npy");
  rsa::CondensedRdm ref = rsa::CondenseSquare(rdm, "rdm.npy", {0.0});  // exactly symmetric
  auto rows = rsa::AlignByName(truth.names, names, "embedding.csv", "rdm_names.txt");
  at::Tensor idx = at::tensor(rows, at::kLong);
  at::Tensor x = truth.values.index_select(0, idx), xm = model.values.index_select(0, idx);
  double rho_truth = rsa::Spearman(rsa::ComputeRdm(x, rsa::RdmMetric::kSpose).values, ref.values);
  double rho_model = rsa::Spearman(rsa::ComputeRdm(xm, rsa::RdmMetric::kSpose).values, ref.values);
  EXPECT_GT(rho_truth, 0.8);
  EXPECT_GT(rho_truth, rho_model);
  EXPECT_GT(rho_model, 0.3);
  // Behavioural choices: the true embedding predicts them well above chance (1/3).
  at::Tensor triplets = io::ReadNpy(dir + "triplets.npy");
  ASSERT_EQ(triplets.size(0), 2000);
  rsa::TripletResult r = rsa::TripletAccuracyChoices(rsa::DotSimilarity(x), triplets);
  EXPECT_GT(r.accuracy, 0.5);
  EXPECT_EQ(r.n_used + r.n_tied, 2000);
}

TEST(SynthBehaviorTest, UnwritableFolderIsAnIoError) {
  config::SynthBehaviorOptions o;
  o.out_dir = "/proc/cliphba-cannot-write-here";
  EXPECT_THROW(GenerateSynthBehavior(o), IoError);
}

}  // namespace
}  // namespace cliphba::data
