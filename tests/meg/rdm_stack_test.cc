// meg::RdmStack, RescaleMinMax, IndicesOfNames, TimeAxis against
// scripts/reference/meg_reference.py (tests/data_files/meg_reference), and the bad inputs.
#include "meg/rdm_stack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "tests/meg/common.h"

namespace cliphba::meg {
namespace {

using testing::MaxAbsDiff;
using testing::MessageOf;
using testing::OutPath;
using testing::RefPath;

const std::vector<int64_t> kIdx = {6, 1, 3, 0, 7, 4};

config::MegRdmOptions NpyOptions(const std::string& path) {
  config::MegRdmOptions o;
  o.path = path;
  o.names = RefPath("names.txt");
  o.time_start_ms = -20;
  o.time_step_ms = 5;
  return o;
}

// The float64 reference stack, participant p, timepoints [t0, t0 + count), objects idx.
at::Tensor Expected(int64_t p, int64_t t0, int64_t count, const std::vector<int64_t>& idx) {
  at::Tensor all = io::ReadNpy(RefPath("stack.npy"));
  at::Tensor i = at::tensor(idx, at::kLong);
  return all[p].narrow(0, t0, count).index_select(1, i).index_select(2, i);
}

std::vector<std::string> ReadNames() {
  std::vector<std::string> names;
  std::ifstream f(RefPath("names.txt"));
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) names.push_back(line);
  return names;
}

// An HDF5 MEG RDM file as `cliphba meg rdm` writes it (data may be square or condensed).
void WriteH5(const std::string& path, const at::Tensor& data, bool with_time = true,
             int64_t n_names = 8) {
  io::ResultsStore store = io::ResultsStore::Create(path);
  store.WriteTensor("/meg/rdm", data);
  std::vector<std::string> names = ReadNames();
  names.resize(size_t(n_names), "extra");
  store.WriteStrings("/meg/names", names);
  store.WriteStrings("/meg/participants", {"sub-01", "sub-02", "sub-03"});
  if (with_time) {
    store.SetAttribute("/meg", "time_start_ms", -20.0);
    store.SetAttribute("/meg", "time_step_ms", 5.0);
  }
  store.Commit();
}

TEST(TimeAxisTest, PythonFloorDivisionSemantics) {
  TimeAxis a{-100, 5, 281};
  EXPECT_EQ(a.IndexOf(0), 20);
  EXPECT_EQ(a.IndexOf(-100), 0);
  EXPECT_EQ(a.IndexOf(-101), -1);  // floor, not truncation
  EXPECT_EQ(a.IndexOf(102), 40);
  EXPECT_EQ(a.ZeroMsPosition(), 21);
  EXPECT_DOUBLE_EQ(a.TimeAt(20), 0.0);
  TimeAxis b{-20, 5, 40};
  EXPECT_EQ(b.ZeroMsPosition(), 5);
  TimeAxis c{10, 5, 4};
  EXPECT_EQ(c.ZeroMsPosition(), -1);  // (0 - 10) // 5 + 1
  // Python float //, not floor(a / b): 1.0 // 0.1 == 9.0 while 1.0 / 0.1 == 10.0 exactly.
  TimeAxis d{0, 0.1, 100};
  EXPECT_EQ(d.IndexOf(1.0), 9);
  EXPECT_EQ(d.IndexOf(0.3), 2);     // 0.3 // 0.1 == 2.0
  EXPECT_EQ(d.IndexOf(-0.05), -1);  // -0.05 // 0.1 == -1.0
  EXPECT_EQ(d.IndexOf(0.0), 0);
}

TEST(RdmStackTest, SquareNpyReadsTheReferenceSelection) {
  RdmStack s = RdmStack::Open(NpyOptions(RefPath("stack_f32.npy")));
  EXPECT_EQ(s.participants(), 3);
  EXPECT_EQ(s.timepoints(), 40);
  EXPECT_EQ(s.objects(), 8);
  EXPECT_FALSE(s.condensed());
  EXPECT_EQ(s.names()[6], "object_06.jpg");
  EXPECT_EQ(s.participant_labels(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_DOUBLE_EQ(s.time().start_ms, -20);
  EXPECT_DOUBLE_EQ(s.time().step_ms, 5);
  EXPECT_EQ(s.time().size, 40);
  at::Tensor r = s.Read(1, 3, 10, kIdx);
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{10, 6, 6}));
  EXPECT_EQ(r.scalar_type(), at::kFloat);
  const double d = MaxAbsDiff(r, Expected(1, 3, 10, kIdx));
  EXPECT_LT(d, 1e-6) << "max|diff| " << d;  // float32 storage
}

// meg.rdm.smooth_ms: the reference's smoothen_rdm (keep timepoint 0, then means of w following
// samples, remainder dropped), written out here from the float64 reference stack.
TEST(RdmStackTest, SmoothingIsTheReferenceBlockMean) {
  config::MegRdmOptions o = NpyOptions(RefPath("stack_f32.npy"));
  o.smooth_ms = 15;  // w = 3 samples of 5 ms: 40 -> 1 + 39 / 3 = 14 timepoints, none dropped
  for (double smooth : {15.0, 10.0}) {
    o.smooth_ms = smooth;
    const int64_t w = int64_t(smooth / 5);
    RdmStack s = RdmStack::Open(o);
    const int64_t t_out = 1 + 39 / w;
    ASSERT_EQ(s.timepoints(), t_out);
    EXPECT_DOUBLE_EQ(s.time().start_ms, -20);
    EXPECT_DOUBLE_EQ(s.time().step_ms, smooth);
    EXPECT_EQ(s.time().size, t_out);
    const at::Tensor raw = Expected(2, 0, 40, kIdx);  // float64
    std::vector<at::Tensor> want{raw[0]};
    for (int64_t g = 0; g < 39 / w; ++g) want.push_back(raw.narrow(0, 1 + g * w, w).mean(0));
    const at::Tensor full = s.Read(2, 0, t_out, kIdx);
    EXPECT_LT(MaxAbsDiff(full, at::stack(want)), 1e-6);
    // A window of the smoothed axis reads the same values (offsets into the file).
    EXPECT_LT(MaxAbsDiff(s.Read(2, 3, 5, kIdx), full.narrow(0, 3, 5)), 1e-7);
    EXPECT_LT(MaxAbsDiff(s.Read(2, 0, 1, kIdx), full.narrow(0, 0, 1)), 1e-7);
    EXPECT_THROW(s.Read(2, t_out - 1, 2, kIdx), ConfigError);
  }
  o.smooth_ms = 7;  // not a whole multiple of 5 ms
  const std::string m = MessageOf<ConfigError>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find("meg.rdm.smooth_ms"), std::string::npos) << m;
  EXPECT_NE(m.find("5 ms"), std::string::npos) << m;
  o.smooth_ms = 200;  // 40 samples: 1 + 40 needed
  EXPECT_THROW(RdmStack::Open(o), DataError);
}

TEST(RdmStackTest, CondensedNpyEqualsSquare) {
  RdmStack sq = RdmStack::Open(NpyOptions(RefPath("stack_f32.npy")));
  RdmStack co = RdmStack::Open(NpyOptions(RefPath("stack_condensed.npy")));
  EXPECT_TRUE(co.condensed());
  EXPECT_EQ(co.objects(), 8);
  EXPECT_TRUE(at::equal(co.Read(2, 0, 40, kIdx), sq.Read(2, 0, 40, kIdx)));
  EXPECT_TRUE(at::equal(co.ReadParticipant(0), sq.ReadParticipant(0)));
}

TEST(RdmStackTest, Float64NpyMatchesAt1e10BeforeTheFloat32Output) {
  RdmStack s = RdmStack::Open(NpyOptions(RefPath("stack.npy")));
  at::Tensor r = s.Read(0, 0, 40, kIdx);
  EXPECT_LT(MaxAbsDiff(r, Expected(0, 0, 40, kIdx).to(at::kFloat)), 1e-10);
}

TEST(RdmStackTest, HdfSquareAndCondensedDatasets) {
  at::Tensor sq = io::ReadNpy(RefPath("stack_f32.npy"));
  at::Tensor co = io::ReadNpy(RefPath("stack_condensed.npy"));
  WriteH5(OutPath("square.h5"), sq);
  WriteH5(OutPath("condensed.h5"), co);
  config::MegRdmOptions o;
  o.path = OutPath("square.h5");
  RdmStack a = RdmStack::Open(o);
  o.path = OutPath("condensed.h5");
  RdmStack b = RdmStack::Open(o);
  for (const RdmStack* s : {&a, &b}) {
    EXPECT_EQ(s->participants(), 3);
    EXPECT_EQ(s->timepoints(), 40);
    EXPECT_EQ(s->participant_labels()[1], "sub-02");
    EXPECT_DOUBLE_EQ(s->time().start_ms, -20);
    EXPECT_DOUBLE_EQ(s->time().step_ms, 5);
    EXPECT_LT(MaxAbsDiff(s->Read(2, 5, 7, kIdx), Expected(2, 5, 7, kIdx)), 1e-6);
  }
  EXPECT_TRUE(b.condensed());
  // ReadMean = mean of the participants' reads.
  at::Tensor mean = a.ReadMean({0, 2}, 0, 40, kIdx);
  at::Tensor expect = (Expected(0, 0, 40, kIdx) + Expected(2, 0, 40, kIdx)) / 2;
  EXPECT_LT(MaxAbsDiff(mean, expect), 1e-6);
}

TEST(RdmStackTest, RescaleMinMaxIsTheReferenceLoadRdm) {
  RdmStack s = RdmStack::Open(NpyOptions(RefPath("stack.npy")));
  at::Tensor r = RescaleMinMax(s.Read(0, 0, 40, kIdx));
  at::Tensor expect = io::ReadNpy(RefPath("rescaled_p0.npy"));
  const double d = MaxAbsDiff(r, expect);
  EXPECT_LT(d, 1e-6) << "max|diff| " << d;
  EXPECT_EQ(r.diagonal(0, 1, 2).abs().max().item<float>(), 0.0f);
  EXPECT_THROW(RescaleMinMax(at::zeros({2, 3, 3})), DataError);
}

TEST(RdmStackTest, ValueRangeAndRescaleByTheWholeFileAsLoadRdm) {
  const nlohmann::json j = testing::ReadJson(RefPath("curves.json"));
  RdmStack s = RdmStack::Open(NpyOptions(RefPath("stack.npy")));
  RdmStack::Range r = s.ValueRange(/*chunk=*/7);
  EXPECT_NEAR(r.min, j["stack_min"].get<double>(), 1e-7);  // Read returns float32
  EXPECT_NEAR(r.max, j["stack_max"].get<double>(), 1e-7);
  at::Tensor x = RescaleMinMax(s.Read(0, 0, 40, kIdx), r.min, r.max);
  const double d = MaxAbsDiff(x, io::ReadNpy(RefPath("rescaled_global_p0.npy")));
  EXPECT_LT(d, 1e-6) << "max|diff| " << d;
  EXPECT_THROW(RescaleMinMax(s.Read(0, 0, 1, kIdx), 1.0, 1.0), DataError);
}

TEST(RdmStackTest, IndicesOfNamesListsWhatIsMissing) {
  std::vector<std::string> names = {"a.jpg", "b.jpg", "c.jpg"};
  EXPECT_EQ(IndicesOfNames(names, {"c.jpg", "a.jpg"}, "rdm.h5", "images/"),
            (std::vector<int64_t>{2, 0}));
  std::string m = MessageOf<DataError>([&] {
    IndicesOfNames(names, {"a.jpg", "x.jpg", "y.jpg"}, "rdm.h5", "images/");
  });
  EXPECT_NE(m.find("2 of the 3 names of images/"), std::string::npos) << m;
  EXPECT_NE(m.find("'x.jpg', 'y.jpg'"), std::string::npos) << m;
  EXPECT_NE(m.find("rdm.h5"), std::string::npos) << m;
}

// --- bad input --------------------------------------------------------------------------------

at::Tensor Stack() { return io::ReadNpy(RefPath("stack_f32.npy")).clone(); }

TEST(RdmStackBadInputTest, AsymmetricRdmNamesFileParticipantTimepointAndEntry) {
  at::Tensor a = Stack();
  a[0][2][1][3] += 0.1f;
  const std::string path = OutPath("asymmetric.npy");
  io::WriteNpy(path, a);
  RdmStack s = RdmStack::Open(NpyOptions(path));
  std::string m = MessageOf<DataError>([&] { s.Read(0, 0, 40, {0, 1, 2, 3}); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("not symmetric"), std::string::npos) << m;
  EXPECT_NE(m.find("participant 0"), std::string::npos) << m;
  EXPECT_NE(m.find("timepoint 2"), std::string::npos) << m;
  EXPECT_NE(m.find("(1, 3)"), std::string::npos) << m;
  EXPECT_NE(m.find("meg.rdm.symmetry_tolerance"), std::string::npos) << m;
  // Objects that avoid the bad pair read fine: only the selection is validated.
  EXPECT_NO_THROW(s.Read(0, 0, 40, {0, 2, 4}));
}

TEST(RdmStackBadInputTest, NanIsAnErrorUnlessThePolicyIsZero) {
  at::Tensor a = Stack();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  a[1][4][2][5] = nan;
  a[1][4][5][2] = nan;
  const std::string path = OutPath("nan.npy");
  io::WriteNpy(path, a);
  config::MegRdmOptions o = NpyOptions(path);
  RdmStack s = RdmStack::Open(o);
  std::string m = MessageOf<DataError>([&] { s.ReadParticipant(1); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("2 NaN/Inf"), std::string::npos) << m;
  EXPECT_NE(m.find("timepoint 4"), std::string::npos) << m;
  EXPECT_NE(m.find("(2, 5)"), std::string::npos) << m;
  EXPECT_NE(m.find("meg.rdm.nan_policy"), std::string::npos) << m;
  o.nan_policy = "zero";
  RdmStack z = RdmStack::Open(o);
  at::Tensor r = z.ReadParticipant(1);
  EXPECT_EQ(r[4][2][5].item<float>(), 0.0f);
  EXPECT_EQ(r[4][5][2].item<float>(), 0.0f);
  EXPECT_TRUE(r.isfinite().all().item<bool>());
  EXPECT_EQ(r[4][2][4].item<float>(), a[1][4][2][4].item<float>());  // nothing else changed
}

TEST(RdmStackBadInputTest, NonZeroDiagonal) {
  at::Tensor a = Stack();
  a[2][7][3][3] = 0.5f;
  const std::string path = OutPath("diagonal.npy");
  io::WriteNpy(path, a);
  RdmStack s = RdmStack::Open(NpyOptions(path));
  std::string m = MessageOf<DataError>([&] { s.ReadParticipant(2); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("diagonal is not zero"), std::string::npos) << m;
  EXPECT_NE(m.find("timepoint 7"), std::string::npos) << m;
  EXPECT_NE(m.find("(3, 3)"), std::string::npos) << m;
}

TEST(RdmStackBadInputTest, WrongNamesCount) {
  const std::string names = OutPath("seven_names.txt");
  {
    std::ofstream f(names);
    for (int i = 0; i < 7; ++i) f << "o" << i << "\n";
  }
  config::MegRdmOptions o = NpyOptions(RefPath("stack_f32.npy"));
  o.names = names;
  std::string m = MessageOf<DataError>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find(names), std::string::npos) << m;
  EXPECT_NE(m.find("meg.rdm.names"), std::string::npos) << m;
  EXPECT_NE(m.find("lists 7 object names"), std::string::npos) << m;
  EXPECT_NE(m.find("has 8 objects"), std::string::npos) << m;
  // HDF5: /meg/names with 9 entries.
  WriteH5(OutPath("nine_names.h5"), Stack(), true, 9);
  config::MegRdmOptions h;
  h.path = OutPath("nine_names.h5");
  m = MessageOf<DataError>([&] { RdmStack::Open(h); });
  EXPECT_NE(m.find("/meg/names"), std::string::npos) << m;
  EXPECT_NE(m.find("lists 9 object names"), std::string::npos) << m;
}

TEST(RdmStackBadInputTest, DuplicateNames) {
  const std::string names = OutPath("dup_names.txt");
  {
    std::ofstream f(names);
    for (int i = 0; i < 8; ++i) f << "o" << (i == 5 ? 2 : i) << "\n";
  }
  config::MegRdmOptions o = NpyOptions(RefPath("stack_f32.npy"));
  o.names = names;
  std::string m = MessageOf<Error>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find(names), std::string::npos) << m;
  EXPECT_NE(m.find("o2"), std::string::npos) << m;
}

TEST(RdmStackBadInputTest, WrongDatasetRank) {
  const std::string h5 = OutPath("rank2.h5");
  WriteH5(h5, at::zeros({8, 8}));
  config::MegRdmOptions o;
  o.path = h5;
  std::string m = MessageOf<DataError>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find(h5), std::string::npos) << m;
  EXPECT_NE(m.find("'/meg/rdm'"), std::string::npos) << m;
  EXPECT_NE(m.find("rank 2"), std::string::npos) << m;
  const std::string npy = OutPath("rank2.npy");
  io::WriteNpy(npy, at::zeros({8, 8}));
  m = MessageOf<DataError>([&] { RdmStack::Open(NpyOptions(npy)); });
  EXPECT_NE(m.find(npy), std::string::npos) << m;
  EXPECT_NE(m.find("rank 2"), std::string::npos) << m;
  // Condensed length that is no n (n - 1) / 2.
  const std::string bad_m = OutPath("bad_pairs.npy");
  io::WriteNpy(bad_m, at::zeros({1, 2, 27}));
  m = MessageOf<DataError>([&] { RdmStack::Open(NpyOptions(bad_m)); });
  EXPECT_NE(m.find("not a number of pairs"), std::string::npos) << m;
  // Not square.
  const std::string rect = OutPath("rect.npy");
  io::WriteNpy(rect, at::zeros({1, 2, 8, 7}));
  m = MessageOf<DataError>([&] { RdmStack::Open(NpyOptions(rect)); });
  EXPECT_NE(m.find("square"), std::string::npos) << m;
  // A dataset that is not there.
  o.path = OutPath("square.h5");
  WriteH5(o.path, Stack());
  o.dataset = "/meg/other";
  m = MessageOf<DataError>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find("'/meg/other' (meg.rdm.dataset)"), std::string::npos) << m;
}

TEST(RdmStackBadInputTest, ParticipantOutOfRange) {
  RdmStack s = RdmStack::Open(NpyOptions(RefPath("stack_f32.npy")));
  std::string m = MessageOf<ConfigError>([&] { s.Read(3, 0, 1, kIdx); });
  EXPECT_NE(m.find(RefPath("stack_f32.npy")), std::string::npos) << m;
  EXPECT_NE(m.find("participant index 3"), std::string::npos) << m;
  EXPECT_NE(m.find("has 3 participants"), std::string::npos) << m;
  EXPECT_THROW(s.Read(0, 35, 10, kIdx), ConfigError);  // past the last timepoint
  EXPECT_THROW(s.Read(0, 0, 1, {0, 8}), ConfigError);  // object 8 of 8
  EXPECT_THROW(s.ReadMean({}, 0, 1, kIdx), ConfigError);
}

TEST(RdmStackBadInputTest, MissingTimeAttributesAndNames) {
  const std::string h5 = OutPath("no_time.h5");
  WriteH5(h5, Stack(), /*with_time=*/false);
  config::MegRdmOptions o;
  o.path = h5;
  std::string m = MessageOf<DataError>([&] { RdmStack::Open(o); });
  EXPECT_NE(m.find(h5), std::string::npos) << m;
  EXPECT_NE(m.find("time_start_ms"), std::string::npos) << m;
  // NPY without names: a configuration error naming the key.
  config::MegRdmOptions n = NpyOptions(RefPath("stack_f32.npy"));
  n.names.clear();
  m = MessageOf<ConfigError>([&] { RdmStack::Open(n); });
  EXPECT_NE(m.find("meg.rdm.names"), std::string::npos) << m;
  // Missing file: IoError naming the key.
  config::MegRdmOptions missing = NpyOptions(OutPath("does_not_exist.npy"));
  m = MessageOf<IoError>([&] { RdmStack::Open(missing); });
  EXPECT_NE(m.find("meg.rdm.path"), std::string::npos) << m;
}

}  // namespace
}  // namespace cliphba::meg
