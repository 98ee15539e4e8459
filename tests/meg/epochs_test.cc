// meg::ReadEpochsInfo / PlanEpochs / EpochsRdms / WriteMegRdms against
// scripts/reference/meg_reference.py (explicit NumPy loops), and the bad inputs.
#include "meg/epochs.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "tests/meg/common.h"

namespace cliphba::meg {
namespace {

using testing::MaxAbsDiff;
using testing::MessageOf;
using testing::OutPath;
using testing::ReadJson;
using testing::RefPath;

config::MegEpochsOptions CaseOptions(const std::string& name, const std::string& method) {
  const nlohmann::json c = ReadJson(RefPath("epochs.json"))["cases"][name];
  config::MegEpochsOptions o;
  o.files = {RefPath("epochs_p0.h5"), RefPath("epochs_p1.h5")};
  o.method = method;
  o.window_ms = c["window_ms"].get<double>();
  o.step_ms = c["step_ms"].get<double>();
  o.tmin_ms = c["tmin_ms"].get<double>();
  o.tmax_ms = c["tmax_ms"].get<double>();
  return o;
}

TEST(EpochsTest, HeaderOfTheReferenceFile) {
  EpochsInfo e = ReadEpochsInfo(RefPath("epochs_p0.h5"));
  EXPECT_EQ(e.channels, 6);
  EXPECT_EQ(e.samples, 50);
  EXPECT_EQ(e.condition_names.size(), 5u);
  EXPECT_EQ(e.condition_names[3], "image_3.jpg");
  EXPECT_DOUBLE_EQ(e.sfreq, 500);
  EXPECT_DOUBLE_EQ(e.tmin_ms, -20);
  EXPECT_EQ(e.participant, "sub-01");
  EXPECT_EQ(int64_t(e.condition.size()), e.trials);
}

class EpochsReferenceTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
};

TEST_P(EpochsReferenceTest, RdmsEqualNumpyAt1e10) {
  const auto& [name, method] = GetParam();
  const nlohmann::json c = ReadJson(RefPath("epochs.json"))["cases"][name];
  config::MegEpochsOptions o = CaseOptions(name, method);
  at::Tensor expect = io::ReadNpy(RefPath("epochs_" + method + "_" + name + ".npy"));
  for (int64_t p = 0; p < 2; ++p) {
    EpochsInfo info = ReadEpochsInfo(o.files[size_t(p)]);
    EpochsPlan plan = PlanEpochs(info, o);
    EXPECT_EQ(plan.axis.size, c["timepoints"].get<int64_t>());
    EXPECT_DOUBLE_EQ(plan.axis.start_ms, c["time_start_ms"].get<double>());
    EXPECT_DOUBLE_EQ(plan.axis.step_ms, c["time_step_ms"].get<double>());
    at::Tensor r = EpochsRdms(info, plan, method);
    ASSERT_EQ(r.sizes(), expect[p].sizes());
    const double d = MaxAbsDiff(r, expect[p]);
    EXPECT_LT(d, 1e-10) << name << " " << method << " participant " << p << " max|diff| " << d;
    // Streaming block size does not matter.
    EXPECT_LT(MaxAbsDiff(EpochsRdms(info, plan, method, /*block=*/3), r), 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, EpochsReferenceTest,
                         ::testing::Combine(::testing::Values("raw", "smooth"),
                                            ::testing::Values("correlation", "crossnobis")));

TEST(EpochsTest, WriteMegRdmsIsReadBackByRdmStack) {
  config::MegEpochsOptions o = CaseOptions("smooth", "crossnobis");
  o.out = OutPath("epochs_rdm.h5");
  MegRdmSummary s = WriteMegRdms(o, "0123456789abcdef", "meg: {}\n");
  EXPECT_EQ(s.participants, (std::vector<std::string>{"sub-01", "sub-02"}));
  config::MegRdmOptions ro;
  ro.path = o.out;
  RdmStack stack = RdmStack::Open(ro);
  EXPECT_TRUE(stack.condensed());
  EXPECT_EQ(stack.participant_labels(), s.participants);
  EXPECT_EQ(stack.names()[0], "image_0.jpg");
  EXPECT_DOUBLE_EQ(stack.time().start_ms, -10);
  EXPECT_DOUBLE_EQ(stack.time().step_ms, 4);
  at::Tensor expect = io::ReadNpy(RefPath("epochs_crossnobis_smooth.npy"));  // (P, T, m)
  io::ResultsReader reader(o.out);
  EXPECT_EQ(reader.ReadStringAttribute("/meg", "method"), "crossnobis");
  EXPECT_EQ(reader.ReadStringAttribute("/", "config_hash"), "0123456789abcdef");
  const double d = MaxAbsDiff(reader.ReadTensor("/meg/rdm"), expect);
  EXPECT_LT(d, 1e-6) << "float32 file max|diff| " << d;
  // The loader expands to square: entry (1, 3) = condensed pair index of (1, 3) for K = 5.
  at::Tensor sq = stack.ReadParticipant(1);
  EXPECT_NEAR(sq[2][1][3].item<float>(), expect[1][2][5].item<double>(), 1e-6);
  EXPECT_NEAR(sq[2][3][1].item<float>(), expect[1][2][5].item<double>(), 1e-6);
  // Participant labels from the config win over the file attribute.
  o.participants = {"A", "B"};
  EXPECT_EQ(WriteMegRdms(o, "h", "y").participants, o.participants);
}

// --- bad input --------------------------------------------------------------------------------

// A small epochs file: `per_condition` trials of each of 3 conditions, 4 channels, 10 samples.
std::string WriteSmallEpochs(const std::string& name, std::vector<int64_t> condition,
                             std::vector<std::string> names = {"a", "b", "c"},
                             double sfreq = 1000) {
  const std::string path = OutPath(name);
  io::ResultsStore store = io::ResultsStore::Create(path);
  store.WriteTensor("/epochs/data", at::randn({int64_t(condition.size()), 4, 10}));
  store.WriteTensor("/epochs/condition", at::tensor(condition, at::kLong));
  store.WriteStrings("/epochs/condition_names", names);
  store.SetAttribute("/epochs", "sfreq", sfreq);
  store.SetAttribute("/epochs", "tmin_ms", 0.0);
  store.Commit();
  return path;
}

TEST(EpochsBadInputTest, WindowLargerThanTheAxis) {
  config::MegEpochsOptions o = CaseOptions("raw", "correlation");
  o.window_ms = 200;  // 101 samples at 500 Hz > 50
  EpochsInfo info = ReadEpochsInfo(o.files[0]);
  std::string m = MessageOf<ConfigError>([&] { PlanEpochs(info, o); });
  EXPECT_NE(m.find("meg.epochs.window_ms"), std::string::npos) << m;
  EXPECT_NE(m.find(o.files[0]), std::string::npos) << m;
  EXPECT_NE(m.find("101 samples"), std::string::npos) << m;
  EXPECT_NE(m.find("50 samples"), std::string::npos) << m;
}

TEST(EpochsBadInputTest, StepThatIsNotAWholeNumberOfSamples) {
  config::MegEpochsOptions o = CaseOptions("raw", "correlation");
  o.step_ms = 3;  // 1.5 samples at 500 Hz
  EpochsInfo info = ReadEpochsInfo(o.files[0]);
  std::string m = MessageOf<ConfigError>([&] { PlanEpochs(info, o); });
  EXPECT_NE(m.find("meg.epochs.step_ms"), std::string::npos) << m;
  EXPECT_NE(m.find("1.5 sample periods"), std::string::npos) << m;
  o.step_ms = 0;
  o.tmin_ms = 500, o.tmax_ms = 600;  // after the epoch
  m = MessageOf<ConfigError>([&] { PlanEpochs(info, o); });
  EXPECT_NE(m.find("keep no sample"), std::string::npos) << m;
}

TEST(EpochsBadInputTest, CrossnobisNeedsTwoTrialsPerCondition) {
  const std::string path = WriteSmallEpochs("one_trial.h5", {0, 1, 2, 0, 1});
  config::MegEpochsOptions o;
  o.files = {path};
  o.method = "crossnobis";
  o.out = OutPath("one_trial_rdm.h5");
  std::remove(o.out.c_str());
  std::string m = MessageOf<DataError>([&] { WriteMegRdms(o, "h", "y"); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("condition 'c' has 1 trial"), std::string::npos) << m;
  EXPECT_FALSE(std::ifstream(o.out).good()) << "nothing half-written";
  EXPECT_FALSE(std::ifstream(o.out + ".partial").good()) << "nothing half-written";
  // A later participant with too few trials is found before anything is computed.
  o.files = {RefPath("epochs_p0.h5"), path};
  m = MessageOf<DataError>([&] { WriteMegRdms(o, "h", "y"); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  o.files = {path};
  o.method = "mahalanobis";
  EXPECT_THROW(WriteMegRdms(o, "h", "y"), ConfigError);
  o.method = "correlation";  // one trial is enough for condition means
  o.out = OutPath("one_trial_correlation_rdm.h5");
  EXPECT_NO_THROW(WriteMegRdms(o, "h", "y"));
}

TEST(EpochsBadInputTest, ParticipantsMustShareConditionsAndTimeAxis) {
  const std::string a = WriteSmallEpochs("share_a.h5", {0, 1, 2, 0, 1, 2});
  const std::string b = WriteSmallEpochs("share_b.h5", {0, 1, 2, 0, 1, 2}, {"a", "c", "b"});
  const std::string c = WriteSmallEpochs("share_c.h5", {0, 1, 2, 0, 1, 2}, {"a", "b", "c"}, 500);
  config::MegEpochsOptions o;
  o.out = OutPath("never_written.h5");
  o.files = {a, b};
  std::string m = MessageOf<DataError>([&] { WriteMegRdms(o, "h", "y"); });
  EXPECT_NE(m.find(b), std::string::npos) << m;
  EXPECT_NE(m.find("/epochs/condition_names differ"), std::string::npos) << m;
  o.files = {a, c};
  m = MessageOf<DataError>([&] { WriteMegRdms(o, "h", "y"); });
  EXPECT_NE(m.find("time axis"), std::string::npos) << m;
  o.files = {a, a};
  m = MessageOf<ConfigError>([&] { WriteMegRdms(o, "h", "y"); });  // same stem twice
  EXPECT_NE(m.find("used twice"), std::string::npos) << m;
}

TEST(EpochsBadInputTest, ConditionIndexOutOfRangeAndMissingDatasets) {
  const std::string path = WriteSmallEpochs("bad_condition.h5", {0, 1, 3});
  std::string m = MessageOf<DataError>([&] { ReadEpochsInfo(path); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("/epochs/condition[2] = 3"), std::string::npos) << m;
  const std::string empty_cond = WriteSmallEpochs("empty_condition.h5", {0, 1, 0});
  m = MessageOf<DataError>([&] { ReadEpochsInfo(empty_cond); });
  EXPECT_NE(m.find("condition 'c' (index 2) has no trials"), std::string::npos) << m;
  // An RDM file is not an epochs file.
  const std::string not_epochs = OutPath("not_epochs.h5");
  {
    io::ResultsStore s = io::ResultsStore::Create(not_epochs);
    s.WriteTensor("/meg/rdm", at::zeros({1, 1, 3}));
    s.Commit();
  }
  m = MessageOf<DataError>([&] { ReadEpochsInfo(not_epochs); });
  EXPECT_NE(m.find("/epochs/data"), std::string::npos) << m;
}

}  // namespace
}  // namespace cliphba::meg
