// The synthetic cohort (data/synth_cohort.h): determinism, the file formats, and that the planted
// ground truth can be recovered from the files alone (condition-mean correlation RDMs per
// timepoint computed here, independently of the meg module).
#include "data/synth_cohort.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "data/image.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "tests/data/common.h"

namespace cliphba::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path TestDir(const std::string& name) { return testing::TestDir("synth_cohort", name); }
using testing::ReadAll;
using testing::ReadJson;

config::SynthCohortOptions Options(const fs::path& dir, int64_t seed = 1) {
  config::SynthCohortOptions o;  // the defaults: the cohort users get
  o.out_dir = dir.string();
  o.seed = seed;
  return o;
}

// Every regular file under dir, relative, sorted.
std::set<std::string> ListFiles(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir).generic_string());
  return out;
}

// One participant's epochs, read through the generic results reader (the CONTRACTS format).
struct EpochsFile {
  at::Tensor data;       // (trials, sensors, times) float32
  at::Tensor condition;  // (trials) int64
  std::vector<std::string> names, channels;
  double sfreq = 0, tmin_ms = 0;
  std::string participant;
};

EpochsFile ReadEpochs(const fs::path& path) {
  io::ResultsReader r(path.string());
  EpochsFile e;
  e.data = r.ReadTensor("/epochs/data");
  e.condition = r.ReadTensor("/epochs/condition");
  e.names = r.ReadStrings("/epochs/condition_names");
  e.channels = r.ReadStrings("/epochs/channel_names");
  e.sfreq = r.ReadDoubleAttribute("/epochs", "sfreq");
  e.tmin_ms = r.ReadDoubleAttribute("/epochs", "tmin_ms");
  e.participant = r.ReadStringAttribute("/epochs", "participant");
  return e;
}

// Condition means: (C, sensors, times) float64.
at::Tensor ConditionMeans(const EpochsFile& e, int64_t n_conditions) {
  at::Tensor sums = at::zeros({n_conditions, e.data.size(1), e.data.size(2)}, at::kDouble);
  sums.index_add_(0, e.condition, e.data.to(at::kDouble));
  at::Tensor counts = at::bincount(e.condition, {}, n_conditions).to(at::kDouble);
  return sums / counts.view({-1, 1, 1});
}

// Correlation-distance RDM over objects of the condition means at every timepoint: (T, m).
at::Tensor MegRdms(const at::Tensor& means) {
  std::vector<at::Tensor> rows;
  for (int64_t t = 0; t < means.size(2); ++t)
    rows.push_back(
        rsa::ComputeRdm(means.select(2, t).contiguous(), rsa::RdmMetric::kCorrelation).values);
  return at::stack(rows);
}

// Pearson of every row of stack (T, m) with ref (m): (T).
std::vector<double> Curve(const at::Tensor& stack, const at::Tensor& ref) {
  std::vector<double> out;
  for (int64_t t = 0; t < stack.size(0); ++t) out.push_back(rsa::Pearson(stack[t], ref));
  return out;
}

int64_t ArgMax(const std::vector<double>& v) {
  return int64_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// The peak of a curve whose top may be flat (the RDM correlation saturates once the code is well
// above the noise): the middle of the contiguous run of timepoints around the maximum that stay
// within 80% of it, as a (fractional) index.
double PeakCentre(const std::vector<double>& v) {
  const int64_t k = ArgMax(v);
  const double threshold = 0.8 * v[k];
  int64_t a = k, b = k;
  while (a > 0 && v[a - 1] >= threshold) --a;
  while (b + 1 < int64_t(v.size()) && v[b + 1] >= threshold) ++b;
  return 0.5 * double(a + b);
}

at::Tensor JsonMatrix(const json& rows) {
  const int64_t r = int64_t(rows.size()), c = int64_t(rows[0].size());
  at::Tensor t = at::empty({r, c}, at::kDouble);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t[i][j] = rows[i][j].get<double>();
  return t;
}

// One default cohort shared by the read-only tests (generated once per process). Generated in
// SetUp, not SetUpTestSuite: an exception there fails the test (gtest reports a failing
// SetUpTestSuite as "skipped", which ctest would count as not run rather than failed).
class CohortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (summary_ != nullptr) return;
    dir_ = new fs::path(TestDir("default"));
    summary_ = new SynthCohortSummary(GenerateSynthCohort(Options(*dir_), false));
    truth_ = new json(ReadJson(*dir_ / "ground_truth.json"));
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    delete summary_;
    delete truth_;
  }
  static fs::path* dir_;
  static SynthCohortSummary* summary_;
  static json* truth_;
};
fs::path* CohortTest::dir_ = nullptr;
SynthCohortSummary* CohortTest::summary_ = nullptr;
json* CohortTest::truth_ = nullptr;

TEST(SynthCohortTest, SameSeedGivesByteIdenticalFilesAndAnotherSeedDiffers) {
  const fs::path a = TestDir("seed_a"), b = TestDir("seed_b"), c = TestDir("seed_c");
  GenerateSynthCohort(Options(a, 7), false);
  GenerateSynthCohort(Options(b, 7), false);
  GenerateSynthCohort(Options(c, 8), false);
  const std::set<std::string> files = ListFiles(a);
  ASSERT_EQ(files, ListFiles(b));
  ASSERT_EQ(files, ListFiles(c));
  // Equal for any seed: the prompts and the object names.
  const std::set<std::string> seed_free = {"behavior/prompts.json", "behavior/rdm_names.txt",
                                           "behavior/heldout.txt"};
  for (const std::string& f : files) {
    EXPECT_EQ(seed_free.count(f) == 1, ReadAll(a / f) == ReadAll(c / f))
        << f << (seed_free.count(f) ? " differs" : " is equal") << " for seeds 7 and 8";
    if (f == "meg/rdm.h5") {  // its provenance holds the creation time: compare the data
      io::ResultsReader ra((a / f).string()), rb((b / f).string());
      EXPECT_TRUE(at::equal(ra.ReadTensor("/meg/rdm"), rb.ReadTensor("/meg/rdm")));
      continue;
    }
    EXPECT_EQ(ReadAll(a / f), ReadAll(b / f)) << f << " differs between two runs with seed 7";
  }
}

TEST_F(CohortTest, ManifestListsEveryFileWithSizeAndHash) {
  const json manifest = ReadJson(*dir_ / "cohort.json");
  std::set<std::string> listed;
  for (const auto& f : manifest["files"]) {
    const std::string rel = f["path"];
    listed.insert(rel);
    const std::string bytes = ReadAll(*dir_ / rel);
    EXPECT_EQ(f["bytes"].get<int64_t>(), int64_t(bytes.size())) << rel;
    if (rel == "meg/rdm.h5") {  // not hashed: its provenance holds the creation time
      EXPECT_TRUE(f["fnv1a64"].is_null());
      continue;
    }
    EXPECT_EQ(f["fnv1a64"].get<std::string>(), HashHex(bytes)) << rel;
  }
  listed.insert("cohort.json");
  EXPECT_EQ(listed, ListFiles(*dir_)) << "files on disk and in cohort.json differ";
  const config::SynthCohortOptions o = Options(*dir_);
  EXPECT_EQ(int64_t(listed.size()), o.n_objects * o.n_exemplars + 5 + o.n_participants + 3);
  EXPECT_EQ(summary_->files.back(), "cohort.json");
  EXPECT_EQ(manifest["config"]["seed"].get<int64_t>(), 1);
}

TEST_F(CohortTest, BehaviourFilesHaveTheirShapesAndRanges) {
  const config::SynthCohortOptions o = Options(*dir_);
  const io::EmbeddingTable emb = io::ReadEmbeddingCsv((*dir_ / "behavior/embedding.csv").string());
  ASSERT_EQ(emb.values.sizes().vec(), (std::vector<int64_t>{o.n_objects, o.n_dims}));
  EXPECT_GE(emb.values.min().item<double>(), 0.0);
  const double zeros = (emb.values == 0).to(at::kDouble).mean().item<double>();
  EXPECT_GT(zeros, 0.5) << "the embedding should be sparse";
  EXPECT_LT(zeros, 0.9);
  EXPECT_TRUE((emb.values.sum(1) > 0).all().item<bool>()) << "every object has some dimension";
  const std::vector<std::string> names =
      io::ReadNameList((*dir_ / "behavior/rdm_names.txt").string());
  EXPECT_EQ(names, emb.names);
  EXPECT_EQ(names[0], "obj0000_01.png");
  const std::vector<std::string> heldout =
      io::ReadNameList((*dir_ / "behavior/heldout.txt").string());
  EXPECT_EQ(heldout, std::vector<std::string>(names.end() - o.n_heldout, names.end()));
  const json prompts = ReadJson(*dir_ / "behavior/prompts.json");
  ASSERT_EQ(int64_t(prompts.size()), o.n_dims);
  EXPECT_EQ(prompts[0], "red; warm");
  const at::Tensor rdm = io::ReadNpy((*dir_ / "behavior/rdm.npy").string());
  ASSERT_EQ(rdm.sizes().vec(), (std::vector<int64_t>{o.n_objects, o.n_objects}));
  EXPECT_TRUE(at::equal(rdm, rdm.t()));
  EXPECT_EQ(rdm.diagonal().abs().max().item<double>(), 0.0);
  EXPECT_GE(rdm.min().item<double>(), 0.0);
  EXPECT_LE(rdm.max().item<double>(), 1.0);
  // The simulated choices follow the SPoSE rule: the RDM approaches its expectation.
  const rsa::CondensedRdm expected = rsa::ComputeRdm(emb.values, rsa::RdmMetric::kSpose);
  const rsa::CondensedRdm observed = rsa::CondenseSquare(rdm, "rdm.npy");
  const double r = rsa::Pearson(observed.values, expected.values);
  EXPECT_GT(r, 0.9) << "simulated vs expected SPoSE RDM";
  // Images: n x E PNGs of the configured size.
  for (int64_t i : {int64_t(0), o.n_objects - 1}) {
    for (int64_t e = 0; e < o.n_exemplars; ++e) {
      char name[32];
      std::snprintf(name, sizeof name, "obj%04lld_%02lld.png", static_cast<long long>(i),
                    static_cast<long long>(e + 1));
      const at::Tensor img = DecodeImage((*dir_ / "images" / name).string());
      EXPECT_EQ(img.sizes().vec(), (std::vector<int64_t>{o.image_size, o.image_size, 3})) << name;
      EXPECT_GT(img.to(at::kFloat).std().item<float>(), 10.0f) << name << " looks blank";
    }
  }
}

TEST_F(CohortTest, EpochsFilesFollowTheContractsFormat) {
  const config::SynthCohortOptions o = Options(*dir_);
  const std::vector<std::string> names =
      io::ReadNameList((*dir_ / "behavior/rdm_names.txt").string());
  for (int64_t p = 0; p < o.n_participants; ++p) {
    char label[32];
    std::snprintf(label, sizeof label, "sub-%02lld", static_cast<long long>(p + 1));
    const EpochsFile e = ReadEpochs(*dir_ / "meg" / (std::string(label) + "_epochs.h5"));
    ASSERT_EQ(e.data.scalar_type(), at::kFloat);
    ASSERT_EQ(e.data.sizes().vec(),
              (std::vector<int64_t>{o.n_objects * o.n_trials, o.n_sensors, o.n_times}));
    ASSERT_EQ(e.condition.scalar_type(), at::kLong);
    EXPECT_TRUE(at::equal(at::bincount(e.condition, {}, o.n_objects),
                          at::full({o.n_objects}, o.n_trials, at::kLong)))
        << "every object n_trials times";
    EXPECT_EQ(e.names, names);
    EXPECT_EQ(int64_t(e.channels.size()), o.n_sensors);
    EXPECT_EQ(e.sfreq, o.sfreq);
    EXPECT_EQ(e.tmin_ms, o.tmin_ms);
    EXPECT_EQ(e.participant, label);
    EXPECT_TRUE(at::isfinite(e.data).all().item<bool>());
    // Before stimulus onset there is only noise of the configured sd.
    const double sd = e.data.select(2, 0).std().item<double>();
    EXPECT_NEAR(sd, o.noise, 0.05 * o.noise);
  }
}

// The cohort was written in a staging folder and moved into place (core/staged_folder.h): no file
// may record the staging path (meg/rdm.h5's /meg@sources names the epochs files).
TEST_F(CohortTest, NoFileRecordsTheStagingFolder) {
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(*dir_)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string bytes = ReadAll(e.path());
    EXPECT_EQ(bytes.find(".synth.partial"), std::string::npos) << e.path();
  }
  EXPECT_GT(files, 5);
  const std::string rdm = (*dir_ / "meg/rdm.h5").string();
  const std::string bytes = ReadAll(rdm);
  EXPECT_NE(bytes.find((*dir_ / "meg/").string()), std::string::npos)
      << rdm << " does not name the epochs files under their final folder";
}

// meg/rdm.h5 (meg::WriteMegRdms) holds the correlation RDMs of the condition means computed here.
TEST_F(CohortTest, MegRdmStackEqualsTheConditionMeanRdmsOfTheEpochs) {
  const config::SynthCohortOptions o = Options(*dir_);
  io::ResultsReader r((*dir_ / "meg/rdm.h5").string());
  const at::Tensor stack = r.ReadTensor("/meg/rdm");  // (P, T, m)
  const int64_t m = o.n_objects * (o.n_objects - 1) / 2;
  ASSERT_EQ(stack.sizes().vec(), (std::vector<int64_t>{o.n_participants, o.n_times, m}));
  EXPECT_EQ(r.ReadStrings("/meg/names"),
            io::ReadNameList((*dir_ / "behavior/rdm_names.txt").string()));
  EXPECT_EQ(r.ReadDoubleAttribute("/meg", "time_start_ms"), o.tmin_ms);
  EXPECT_NEAR(r.ReadDoubleAttribute("/meg", "time_step_ms"), 1000.0 / o.sfreq, 1e-9);
  const std::vector<std::string> labels = r.ReadStrings("/meg/participants");
  ASSERT_EQ(int64_t(labels.size()), o.n_participants);
  double worst = 0;
  for (int64_t p = 0; p < o.n_participants; ++p) {
    const EpochsFile e = ReadEpochs(*dir_ / "meg" / (labels[p] + "_epochs.h5"));
    const at::Tensor mine = MegRdms(ConditionMeans(e, o.n_objects));
    worst = std::max(worst, (stack[p].to(at::kDouble) - mine).abs().max().item<double>());
  }
  std::printf("meg/rdm.h5 vs condition-mean correlation RDMs: max|diff| %.3g\n", worst);
  EXPECT_LT(worst, 1e-5);  // float32 storage
}

// The behaviour RDM is matched best around each participant's planted semantic latency; the
// low-level visual RDM earlier, around the visual latency.
TEST_F(CohortTest, SemanticCodePeaksAtThePlantedLatencyAndTheVisualCodeEarlier) {
  const config::SynthCohortOptions o = Options(*dir_);
  const double step = 1000.0 / o.sfreq;
  const at::Tensor behaviour =
      rsa::CondenseSquare(io::ReadNpy((*dir_ / "behavior/rdm.npy").string()), "rdm").values;
  // Visual RDM: correlation distance of the exemplar-averaged standardised low-level features.
  const at::Tensor features =
      JsonMatrix((*truth_)["visual_features"]).view({o.n_objects, o.n_exemplars, -1}).mean(1);
  const at::Tensor visual = rsa::ComputeRdm(features, rsa::RdmMetric::kCorrelation).values;
  std::vector<double> mean_sem(o.n_times, 0.0), mean_vis(o.n_times, 0.0);
  double mean_lat_s = 0, mean_lat_v = 0;
  for (int64_t p = 0; p < o.n_participants; ++p) {
    const json& truth = (*truth_)["participants"][p];
    const std::string label = truth["label"];
    const EpochsFile e = ReadEpochs(*dir_ / "meg" / (label + "_epochs.h5"));
    const at::Tensor rdms = MegRdms(ConditionMeans(e, o.n_objects));  // (T, m)
    const std::vector<double> sem = Curve(rdms, behaviour), vis = Curve(rdms, visual);
    const double lat_s = truth["semantic_latency_ms"], lat_v = truth["visual_latency_ms"];
    const double peak_s = o.tmin_ms + step * PeakCentre(sem);
    const double peak_v = o.tmin_ms + step * PeakCentre(vis);
    std::printf(
        "%s: semantic peak %.0f ms (planted %.1f, r %.3f), visual peak %.0f ms (planted "
        "%.1f, r %.3f)\n",
        label.c_str(), peak_s, lat_s, sem[ArgMax(sem)], peak_v, lat_v, vis[ArgMax(vis)]);
    EXPECT_NEAR(peak_s, lat_s, 2 * step) << label;
    EXPECT_NEAR(peak_v, lat_v, 2 * step) << label;
    EXPECT_GT(sem[ArgMax(sem)], 0.5) << label;
    for (int64_t t = 0; t < o.n_times; ++t) mean_sem[t] += sem[t] / o.n_participants;
    for (int64_t t = 0; t < o.n_times; ++t) mean_vis[t] += vis[t] / o.n_participants;
    mean_lat_s += lat_s / o.n_participants;
    mean_lat_v += lat_v / o.n_participants;
  }
  const double peak_s = o.tmin_ms + step * PeakCentre(mean_sem);
  const double peak_v = o.tmin_ms + step * PeakCentre(mean_vis);
  std::printf("mean curves: semantic peak %.0f ms (planted mean %.1f), visual %.0f (%.1f)\n",
              peak_s, mean_lat_s, peak_v, mean_lat_v);
  EXPECT_NEAR(peak_s, mean_lat_s, 1.5 * step);
  EXPECT_NEAR(peak_v, mean_lat_v, 1.5 * step);
  EXPECT_LT(peak_v + 50, peak_s);
  // Before onset nothing matches.
  EXPECT_LT(std::fabs(mean_sem[0]), 0.2);
}

// Each participant weights the semantic dimensions differently: the RDM of the embedding under
// participant q's planted weights fits participant q's MEG RDMs better than the others'.
TEST_F(CohortTest, ParticipantsDifferAndEachFitsItsOwnPlantedWeightsBest) {
  const config::SynthCohortOptions o = Options(*dir_);
  const double step = 1000.0 / o.sfreq;
  const io::EmbeddingTable emb = io::ReadEmbeddingCsv((*dir_ / "behavior/embedding.csv").string());
  const int64_t P = o.n_participants;
  std::vector<at::Tensor> meg(P);  // mean RDM over the semantic window, (m)
  std::vector<at::Tensor> model(P);
  for (int64_t p = 0; p < P; ++p) {
    const json& truth = (*truth_)["participants"][p];
    const EpochsFile e =
        ReadEpochs(*dir_ / "meg" / (truth["label"].get<std::string>() + "_epochs.h5"));
    const at::Tensor rdms = MegRdms(ConditionMeans(e, o.n_objects));
    const int64_t c =
        int64_t(std::floor((truth["semantic_latency_ms"].get<double>() - o.tmin_ms) / step));
    meg[p] = rdms.slice(0, c - 2, c + 3).mean(0);
    const std::vector<double> w = truth["semantic_weights"];
    at::Tensor wt = at::tensor(w, at::kDouble);
    model[p] = rsa::ComputeRdm(emb.values * wt, rsa::RdmMetric::kCorrelation).values;
  }
  // fit[q][p]: model q vs participant p's data (Spearman).
  std::vector<std::vector<double>> fit(P, std::vector<double>(P));
  for (int64_t q = 0; q < P; ++q)
    for (int64_t p = 0; p < P; ++p) fit[q][p] = rsa::Spearman(model[q], meg[p]);
  // Own-vs-other statistic (CONTRACTS OwnVsOtherTest): mean own - mean other, exact null over
  // all P! assignments of models to participants.
  auto statistic = [&](const std::vector<int64_t>& own_of) {
    double own = 0, all = 0;
    for (int64_t q = 0; q < P; ++q) {
      own += fit[q][own_of[q]];
      for (int64_t p = 0; p < P; ++p) all += fit[q][p];
    }
    return own / P - (all - own) / (P * (P - 1));
  };
  std::vector<int64_t> perm(P);
  for (int64_t p = 0; p < P; ++p) perm[p] = p;
  const double observed = statistic(perm);
  int64_t at_least = 0, total = 0;
  do {
    at_least += statistic(perm) >= observed - 1e-12;
    ++total;
  } while (std::next_permutation(perm.begin(), perm.end()));
  const double p_value = double(at_least) / double(total);
  int64_t own_best = 0;
  for (int64_t p = 0; p < P; ++p) {
    bool best = true;
    for (int64_t q = 0; q < P; ++q) best = best && (q == p || fit[p][p] > fit[q][p]);
    own_best += best;
  }
  double between = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = p + 1; q < P; ++q) between += rsa::Pearson(meg[p], meg[q]) / (P * (P - 1) / 2);
  std::printf(
      "own-vs-other statistic %.4f, exact p %.4f (%lld orders), own best for %lld of %lld, "
      "between-participant r %.3f\n",
      observed, p_value, static_cast<long long>(total), static_cast<long long>(own_best),
      static_cast<long long>(P), between);
  EXPECT_GT(observed, 0.0);
  EXPECT_LT(p_value, 0.01);
  EXPECT_GE(own_best, P - 2);
  EXPECT_LT(between, 0.9) << "participants' RDMs should differ";
  EXPECT_GT(between, 0.2) << "but share the behavioural structure";
}

TEST(SynthCohortTest, RefusesAForeignFolderUnlessForcedAndRegeneratesItsOwn) {
  const fs::path dir = TestDir("refuse");
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "someone else's file\n";
  try {
    GenerateSynthCohort(Options(dir), false);
    ADD_FAILURE() << "a foreign non-empty folder was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "cohort.json"));
  GenerateSynthCohort(Options(dir), true);
  EXPECT_TRUE(fs::exists(dir / "notes.txt")) << "--force removes only cohort files";
  const std::string first = ReadAll(dir / "meg/sub-01_epochs.h5");
  // The same settings again: accepted without --force, same bytes.
  GenerateSynthCohort(Options(dir), false);
  EXPECT_EQ(ReadAll(dir / "meg/sub-01_epochs.h5"), first);
  // Other settings: refused; forced, the old cohort's files are replaced.
  config::SynthCohortOptions small = Options(dir, 2);
  small.n_objects = 8;
  small.n_heldout = 2;
  EXPECT_THROW(GenerateSynthCohort(small, false), ConfigError);
  EXPECT_TRUE(fs::exists(dir / "cohort.json")) << "a refused run must leave the cohort intact";
  GenerateSynthCohort(small, true);
  EXPECT_FALSE(fs::exists(dir / "images/obj0031_01.png")) << "stale image of the old cohort";
  EXPECT_EQ(ReadJson(dir / "cohort.json")["config"]["n_objects"].get<int64_t>(), 8);
}

// Behaviour-only objects come first and the MEG conditions are the last n_objects; named
// dimensions are computed from each object's planted latents in the order given.
TEST(SynthCohortTest, BehaviourOnlyObjectsAndNamedDimensions) {
  const fs::path dir = TestDir("behavior_only");
  config::SynthCohortOptions o = Options(dir, 3);
  o.n_objects = 8;
  o.behavior_only_objects = 6;
  o.n_heldout = 10;  // more than the MEG objects: every MEG object is held out
  o.dimensions = {"green", "large", "red"};
  o.n_participants = 2;
  o.n_times = 12;
  const SynthCohortSummary summary = GenerateSynthCohort(o, false);
  EXPECT_EQ(summary.n_objects, 8);
  EXPECT_EQ(summary.n_images, 14 * o.n_exemplars);
  EXPECT_EQ(summary.n_dims, 3);
  const io::EmbeddingTable emb = io::ReadEmbeddingCsv((dir / "behavior/embedding.csv").string());
  ASSERT_EQ(emb.values.sizes().vec(), (std::vector<int64_t>{14, 3}));
  EXPECT_EQ(emb.names.front(), "obj0000_01.png");
  EXPECT_EQ(emb.names.back(), "obj0013_01.png");
  const json prompts = ReadJson(dir / "behavior/prompts.json");
  EXPECT_EQ(prompts, json({"green; natural", "large; heavy", "red; warm"}));
  EXPECT_EQ(io::ReadNpy((dir / "behavior/rdm.npy").string()).sizes().vec(),
            (std::vector<int64_t>{14, 14}));
  EXPECT_EQ(io::ReadNameList((dir / "behavior/heldout.txt").string()),
            std::vector<std::string>(emb.names.end() - 10, emb.names.end()));
  EXPECT_TRUE(fs::exists(dir / "images/obj0013_02.png"));
  // The MEG conditions: the last 8 objects, in object order.
  const EpochsFile ep = ReadEpochs(dir / "meg/sub-01_epochs.h5");
  EXPECT_EQ(ep.names, std::vector<std::string>(emb.names.begin() + 6, emb.names.end()));
  // Each column is its named dimension of the planted latents (ground_truth.json).
  const json truth = ReadJson(dir / "ground_truth.json");
  ASSERT_EQ(truth["objects"].size(), 14u);
  EXPECT_EQ(truth["visual_features"].size(), size_t(8 * o.n_exemplars)) << "MEG exemplars only";
  for (int64_t i = 0; i < 14; ++i) {
    const json& obj = truth["objects"][size_t(i)];
    EXPECT_EQ(obj["meg"].get<bool>(), i >= 6) << i;
    const double hue = obj["hue"], size = obj["size"];
    auto colour = [&](double centre) {
      const double dist = std::min(std::fabs(hue - centre), 1.0 - std::fabs(hue - centre));
      return 2.0 * std::max(0.0, 1.0 - dist / 0.12);
    };
    EXPECT_NEAR(emb.values[i][0].item<double>(), colour(0.33), 1e-9) << i;
    EXPECT_NEAR(emb.values[i][1].item<double>(), 2.0 * std::max(0.0, (size - 0.475) / 0.125),
                1e-9)
        << i;
    EXPECT_NEAR(emb.values[i][2].item<double>(), colour(0.0), 1e-9) << i;
  }
  ASSERT_EQ(config::CohortDimensionNames().size(), CohortDimensionPrompts().size());
  // An unknown name is refused, naming the key.
  config::SynthCohortOptions bad = Options(TestDir("behavior_only_bad"), 3);
  bad.dimensions = {"red", "mauve"};
  try {
    GenerateSynthCohort(bad, false);
    ADD_FAILURE() << "an unknown dimension was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("synth.cohort.dimensions"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mauve"), std::string::npos) << e.what();
  }
}

// A null cohort (no weight spread, jitter or amplitude spread) has one geometry for everyone only
// with shared sensor patterns: noise-free, every participant's MEG RDM stack is then the same,
// while per-participant patterns alone make them differ (the 20-of-100 null rejections of
// results/BENCHMARKS.md, session 13).
TEST(SynthCohortTest, SharedSensorPatternsLeaveNullCohortsNoIndividualGeometry) {
  auto make = [](const std::string& name, bool shared) {
    const fs::path dir = TestDir(name);
    config::SynthCohortOptions o = Options(dir, 5);
    o.weight_design = config::WeightDesign::kRanked;  // the quickstart's design, spread 0
    o.weight_spread = 0;
    o.cohort_weight_spread = 0.5;
    o.n_objects = 10;
    o.n_heldout = 2;
    o.n_dims = 6;
    o.n_participants = 3;
    o.n_times = 12;
    o.tmin_ms = 200;  // around the semantic peak (250 ms) and after the visual one
    o.n_trials = 2;
    o.latency_jitter_ms = 0;
    o.amplitude_spread = 0;
    o.noise = 0;
    o.shared_sensor_patterns = shared;
    GenerateSynthCohort(o, false);
    io::ResultsReader r((dir / "meg/rdm.h5").string());
    return std::make_pair(r.ReadTensor("/meg/rdm").to(at::kDouble),  // (P, T, m)
                          testing::ReadJson(dir / "ground_truth.json"));
  };
  const auto [own, own_truth] = make("own_patterns", false);
  const auto [shared, shared_truth] = make("shared_patterns", true);
  EXPECT_FALSE(own_truth["config"].contains("shared_sensor_patterns"));
  EXPECT_EQ(shared_truth["config"]["shared_sensor_patterns"], true);
  double own_gap = 0;
  for (int64_t p = 1; p < 3; ++p) {
    for (const char* key : {"visual_pattern", "semantic_pattern"}) {
      EXPECT_EQ(shared_truth["participants"][size_t(p)][key],
                shared_truth["participants"][0][key]) << key << ", participant " << p;
      EXPECT_NE(own_truth["participants"][size_t(p)][key], own_truth["participants"][0][key]);
    }
    EXPECT_LT((shared[p] - shared[0]).abs().max().item<double>(), 1e-6) << "participant " << p;
    own_gap = std::max(own_gap, (own[p] - own[0]).abs().max().item<double>());
  }
  EXPECT_GT(own_gap, 0.05) << "per-participant patterns should give distinct noise-free RDMs";
}

}  // namespace
}  // namespace cliphba::data
