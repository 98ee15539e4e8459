// Serial tests of the results store: round trips, strings, attributes, the partial-file protocol.
#include "io/results_store.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/h5.h"
#include "io/results_reader.h"

namespace cliphba::io {
namespace {

namespace fs = std::filesystem;

// A fresh, empty directory for the current test.
std::string TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(CLIPHBA_TEST_OUT_DIR) / "results_store_test" / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// A deterministic tensor of `dtype` and `shape` with distinct (small, exact) values.
at::Tensor Pattern(at::ScalarType dtype, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  at::Tensor t = at::arange(n, at::kDouble).mul(0.5).sub(3.0);
  if (at::isIntegralType(dtype, /*includeBool=*/false)) t = at::arange(n, at::kLong).sub(7);
  return t.to(dtype).reshape(shape);
}

std::vector<std::string> ReadStringsAttribute(const std::string& file, const std::string& object,
                                              const std::string& name) {
  H5File f = H5File::Open(file, H5F_ACC_RDONLY);
  H5Object o = h5::OpenObject(f.id(), object, file);
  H5Attribute a(h5::Check(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT), "H5Aopen", file));
  H5Dataspace space(H5Aget_space(a.id()));
  hssize_t n = H5Sget_simple_extent_npoints(space.id());
  std::vector<std::string> out;
  if (n == 0) return out;
  H5Datatype type = h5::Utf8StringType(file);
  std::vector<char*> ptrs(static_cast<size_t>(n));
  h5::Check(H5Aread(a.id(), type.id(), ptrs.data()), "H5Aread", file);
  for (char* p : ptrs) out.emplace_back(p);
  H5Dvlen_reclaim(type.id(), space.id(), H5P_DEFAULT, ptrs.data());
  return out;
}

std::vector<double> ReadDoublesAttribute(const std::string& file, const std::string& object,
                                         const std::string& name) {
  H5File f = H5File::Open(file, H5F_ACC_RDONLY);
  H5Object o = h5::OpenObject(f.id(), object, file);
  H5Attribute a(h5::Check(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT), "H5Aopen", file));
  H5Dataspace space(H5Aget_space(a.id()));
  std::vector<double> out(static_cast<size_t>(H5Sget_simple_extent_npoints(space.id())));
  if (!out.empty()) h5::Check(H5Aread(a.id(), H5T_NATIVE_DOUBLE, out.data()), "H5Aread", file);
  return out;
}

TEST(ResultsStoreTest, RoundTripsEveryDtypeAndRank) {
  const std::string path = TestDir() + "/t.h5";
  const std::vector<at::ScalarType> dtypes = {at::kFloat, at::kDouble, at::kLong, at::kInt,
                                              at::kChar};
  const std::vector<std::vector<int64_t>> shapes = {{},        {5},          {2, 3},
                                                    {2, 1, 3}, {2, 2, 1, 3}, {0, 3}};
  {
    ResultsStore store = ResultsStore::Create(path);
    EXPECT_FALSE(store.parallel());
    for (auto dt : dtypes) {
      for (size_t s = 0; s < shapes.size(); ++s) {
        store.WriteTensor("/t/" + std::string(c10::toString(dt)) + "/s" + std::to_string(s),
                          Pattern(dt, shapes[s]));
      }
    }
    // Non-contiguous input and WriteRows (one process owns every row).
    store.WriteTensor("nested/deeper/transposed", Pattern(at::kDouble, {3, 4}).t());
    store.WriteRows("/rows", {4, 2}, at::kLong, 0, Pattern(at::kLong, {4, 2}));
    store.Commit();
  }
  ResultsReader reader(path);
  for (auto dt : dtypes) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      const std::string ds = "/t/" + std::string(c10::toString(dt)) + "/s" + std::to_string(s);
      at::Tensor got = reader.ReadTensor(ds);
      at::Tensor want = Pattern(dt, shapes[s]);
      EXPECT_EQ(got.scalar_type(), dt) << ds;
      EXPECT_EQ(got.sizes(), want.sizes()) << ds;
      EXPECT_TRUE(got.is_contiguous()) << ds;
      EXPECT_TRUE(at::equal(got, want)) << ds;
    }
  }
  EXPECT_TRUE(at::equal(reader.ReadTensor("/nested/deeper/transposed"),
                        Pattern(at::kDouble, {3, 4}).t().contiguous()));
  EXPECT_TRUE(at::equal(reader.ReadTensor("rows"), Pattern(at::kLong, {4, 2})));
  EXPECT_TRUE(reader.Exists("/nested/deeper"));
  EXPECT_FALSE(reader.Exists("/nested/nothing/here"));

  // On disk: little-endian types, 0-D as a scalar dataspace.
  H5File f = H5File::Open(path, H5F_ACC_RDONLY);
  H5Dataset d(H5Dopen2(f.id(), "/t/Float/s0", H5P_DEFAULT));
  H5Datatype type(H5Dget_type(d.id()));
  EXPECT_GT(H5Tequal(type.id(), H5T_IEEE_F32LE), 0);
  H5Dataspace space(H5Dget_space(d.id()));
  EXPECT_EQ(H5Sget_simple_extent_type(space.id()), H5S_SCALAR);
}

TEST(ResultsStoreTest, RejectsBadTensors) {
  const std::string path = TestDir() + "/t.h5";
  ResultsStore store = ResultsStore::Create(path);
  EXPECT_THROW(store.WriteTensor("/b", at::zeros({2}, at::kBool)), DataError);
  EXPECT_THROW(store.WriteTensor("/f16", at::zeros({2}, at::kHalf)), DataError);
  EXPECT_THROW(store.WriteTensor("/r5", at::zeros({1, 1, 1, 1, 1})), DataError);
  EXPECT_THROW(store.WriteRows("/rows", {4, 2}, at::kDouble, 0, at::zeros({4, 3})), DataError);
  EXPECT_THROW(store.WriteRows("/rows", {4, 2}, at::kDouble, 0, at::zeros({3, 2})), DataError);
  store.WriteTensor("/x", at::zeros({2}));
  EXPECT_THROW(store.WriteTensor("/x", at::zeros({2})), IoError);
  store.Commit();
  EXPECT_THROW(store.WriteTensor("/y", at::zeros({2})), Error);
  EXPECT_THROW(store.Commit(), Error);
}

TEST(ResultsStoreTest, StringsAreVariableLengthUtf8) {
  const std::string path = TestDir() + "/s.h5";
  const std::vector<std::string> names = {
      "alpha", "", "Zürich", "日本語", "emoji \xF0\x9F\x98\x80", std::string(300, 'x')};
  {
    ResultsStore store = ResultsStore::Create(path);
    store.WriteStrings("/objects/names", names);
    store.WriteStrings("/objects/none", {});
    EXPECT_THROW(store.WriteStrings("/bad", {std::string("a\0b", 3)}), DataError);
    store.Commit();
  }
  ResultsReader reader(path);
  EXPECT_EQ(reader.ReadStrings("/objects/names"), names);
  EXPECT_TRUE(reader.ReadStrings("/objects/none").empty());
  EXPECT_THROW(reader.ReadTensor("/objects/names"), DataError);
  EXPECT_THROW(reader.ReadTensor("/objects"), DataError);

  H5File f = H5File::Open(path, H5F_ACC_RDONLY);
  H5Dataset d(H5Dopen2(f.id(), "/objects/names", H5P_DEFAULT));
  H5Datatype type(H5Dget_type(d.id()));
  EXPECT_GT(H5Tis_variable_str(type.id()), 0);
  EXPECT_EQ(H5Tget_cset(type.id()), H5T_CSET_UTF8);
}

TEST(ResultsStoreTest, AttributesRoundTripAndOverwrite) {
  const std::string path = TestDir() + "/a.h5";
  {
    ResultsStore store = ResultsStore::Create(path);
    store.WriteTensor("/data/x", at::ones({3}));
    store.SetAttribute("/", "cliphba_version", std::string("0.1.0"));
    store.SetAttribute("/", "schema_version", int64_t{2});
    store.SetAttribute("/", "note", std::string("café ☕"));
    store.SetAttribute("/data/x", "scale", 0.125);
    store.SetAttribute("/data/x", "bounds", std::vector<double>{-1.5, 2.5, 1e300});
    store.SetAttribute("/data/x", "empty", std::vector<double>{});
    store.SetAttribute("/meta/sub", "labels", std::vector<std::string>{"a", "bé", ""});
    // Overwrites replace the value (and the type).
    store.SetAttribute("/", "schema_version", int64_t{3});
    store.SetAttribute("/data/x", "scale", std::string("log"));
    EXPECT_THROW(store.SetAttribute("/", "", 1.0), DataError);
    store.Commit();
  }
  ResultsReader reader(path);
  EXPECT_EQ(reader.ReadStringAttribute("/", "cliphba_version"), "0.1.0");
  EXPECT_EQ(reader.ReadIntAttribute("/", "schema_version"), 3);
  EXPECT_EQ(reader.ReadStringAttribute("/", "note"), "café ☕");
  EXPECT_EQ(reader.ReadStringAttribute("/data/x", "scale"), "log");
  EXPECT_DOUBLE_EQ(reader.ReadDoubleAttribute("/", "schema_version"), 3.0);
  EXPECT_TRUE(reader.Exists("/meta/sub"));
  EXPECT_EQ(ReadDoublesAttribute(path, "/data/x", "bounds"),
            (std::vector<double>{-1.5, 2.5, 1e300}));
  EXPECT_TRUE(ReadDoublesAttribute(path, "/data/x", "empty").empty());
  EXPECT_EQ(ReadStringsAttribute(path, "/meta/sub", "labels"),
            (std::vector<std::string>{"a", "bé", ""}));
  EXPECT_THROW(reader.ReadIntAttribute("/data/x", "scale"), DataError);
  EXPECT_THROW(reader.ReadDoubleAttribute("/data/x", "bounds"), DataError);
  EXPECT_THROW(reader.ReadStringAttribute("/", "missing"), DataError);
  EXPECT_THROW(reader.ReadStringAttribute("/nowhere", "x"), DataError);
}

TEST(ResultsStoreTest, BlocksFillADatasetPieceByPiece) {
  const std::string path = TestDir() + "/blocks.h5";
  ResultsStore store = ResultsStore::Create(path);
  store.CreateDataset("/b/m", {3, 4}, at::kFloat);
  const at::Tensor want = at::arange(12, at::kFloat).reshape({3, 4}).add(0.25);
  store.WriteBlock("/b/m", {0, 0}, want.slice(0, 0, 2).slice(1, 0, 3).to(at::kDouble));
  store.WriteBlock("/b/m", {0, 3}, want.slice(0, 0, 2).slice(1, 3, 4));
  store.WriteBlock("/b/m", {2, 0}, want.slice(0, 2, 3));
  store.WriteBlock("/b/m", {0, 0}, at::zeros({0, 4}));  // an empty block writes nothing
  EXPECT_THROW(store.WriteBlock("/b/m", {2, 1}, at::zeros({1, 4})), DataError);   // outside
  EXPECT_THROW(store.WriteBlock("/b/m", {0}, at::zeros({4})), DataError);         // rank
  EXPECT_THROW(store.WriteBlock("/b/nope", {0, 0}, at::zeros({1, 1})), DataError);  // missing
  EXPECT_THROW(store.CreateDataset("/b/m", {1}, at::kFloat), IoError);              // exists
  store.Commit();
  ResultsReader r(path);
  EXPECT_TRUE(at::equal(r.ReadTensor("/b/m"), want));
}

TEST(ResultsStoreTest, FinalFileAppearsOnlyAtCommit) {
  const std::string path = TestDir() + "/c.h5";
  ResultsStore store = ResultsStore::Create(path);
  store.WriteTensor("/x", at::ones({2, 2}));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".partial"));
  store.Commit();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(ResultsStoreTest, UncommittedStoreLeavesNothing) {
  const std::string path = TestDir() + "/u.h5";
  {
    ResultsStore store = ResultsStore::Create(path);
    store.WriteTensor("/x", at::ones({2, 2}));
    ResultsStore moved = std::move(store);  // the moved-from store must not clean up
    moved.SetAttribute("/", "a", 1.0);
    EXPECT_TRUE(fs::exists(path + ".partial"));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(ResultsStoreTest, MissingDirectoryThrowsIoErrorNamingThePath) {
  const std::string path = TestDir() + "/no/such/dir/r.h5";
  try {
    ResultsStore::Create(path);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(ResultsStoreTest, AbandonedStoreKeepsExistingFile) {
  const std::string path = TestDir() + "/keep.h5";
  {
    ResultsStore store = ResultsStore::Create(path);
    store.SetAttribute("/", "generation", int64_t{1});
    store.Commit();
  }
  {
    ResultsStore store = ResultsStore::Create(path);
    store.SetAttribute("/", "generation", int64_t{2});
    EXPECT_EQ(ResultsReader(path).ReadIntAttribute("/", "generation"), 1);
  }  // abandoned
  EXPECT_EQ(ResultsReader(path).ReadIntAttribute("/", "generation"), 1);
  EXPECT_FALSE(fs::exists(path + ".partial"));
  {
    ResultsStore store = ResultsStore::Create(path);
    store.SetAttribute("/", "generation", int64_t{3});
    store.Commit();  // replaces
  }
  EXPECT_EQ(ResultsReader(path).ReadIntAttribute("/", "generation"), 3);
}

TEST(ResultsStoreTest, ReaderErrorsNameFileAndObject) {
  const std::string dir = TestDir();
  try {
    ResultsReader reader(dir + "/missing.h5");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/missing.h5"), std::string::npos) << e.what();
  }
  {
    std::FILE* f = std::fopen((dir + "/garbage.h5").c_str(), "w");
    std::fputs("not hdf5", f);
    std::fclose(f);
  }
  EXPECT_THROW(ResultsReader(dir + "/garbage.h5"), IoError);

  const std::string path = dir + "/r.h5";
  {
    ResultsStore store = ResultsStore::Create(path);
    store.WriteTensor("/x", at::ones({2}));
    store.Commit();
  }
  ResultsReader reader(path);
  try {
    reader.ReadTensor("/group/missing");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/group/missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(reader.ReadStrings("/x"), DataError);
}

TEST(H5Test, CheckReportsHdf5ErrorStack) {
  h5::SilenceErrorStack();
  try {
    h5::Check(H5Fopen("/nonexistent/file.h5", H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen",
              "/nonexistent/file.h5", "/");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("H5Fopen"), std::string::npos) << m;
    EXPECT_NE(m.find("/nonexistent/file.h5"), std::string::npos) << m;
    EXPECT_NE(m.find("File accessibility"), std::string::npos) << m;  // the major message
  }
  H5PropertyList a = h5::CreatePlist(H5P_DATASET_XFER, "x");
  H5PropertyList b = std::move(a);
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(b.valid());
}

// CopyObject copies a group tree (datasets, nested groups, attributes) from another file to the
// same path, creating the missing parents; a missing source object or an existing target is an
// IoError, and the store still commits what it had.
TEST(ResultsStoreTest, CopyObjectCopiesAGroupTreeWithItsAttributes) {
  const std::string dir = TestDir();
  const std::string src = dir + "/src.h5", dst = dir + "/dst.h5";
  {
    ResultsStore s = ResultsStore::Create(src);
    s.WriteTensor("/compare/meg/a_vs_b/mean", Pattern(at::kDouble, {5}));
    s.WriteTensor("/compare/meg/a_vs_b/significant", Pattern(at::kChar, {5}));
    s.SetAttribute("/compare/meg/a_vs_b", "delta_auc", 0.25);
    s.SetAttribute("/compare/meg/a_vs_b", "model_a", std::string("group"));
    s.WriteStrings("/compare/meg/c_vs_d/names", {"x", "y"});
    s.WriteTensor("/other", Pattern(at::kFloat, {2}));
    s.Commit();
  }
  {
    ResultsStore d = ResultsStore::Create(dst);
    d.WriteTensor("/kept", Pattern(at::kLong, {3}));
    d.CopyObject(src, "/compare/meg");
    EXPECT_THROW(d.CopyObject(src, "/compare/meg"), IoError);    // exists
    EXPECT_THROW(d.CopyObject(src, "/not/there"), IoError);      // missing
    EXPECT_THROW(d.CopyObject(dir + "/none.h5", "/other"), IoError);  // no file
    d.Commit();
  }
  ResultsReader r(dst);
  EXPECT_TRUE(at::equal(r.ReadTensor("/compare/meg/a_vs_b/mean"), Pattern(at::kDouble, {5})));
  EXPECT_TRUE(
      at::equal(r.ReadTensor("/compare/meg/a_vs_b/significant"), Pattern(at::kChar, {5})));
  EXPECT_EQ(r.ReadDoubleAttribute("/compare/meg/a_vs_b", "delta_auc"), 0.25);
  EXPECT_EQ(r.ReadStringAttribute("/compare/meg/a_vs_b", "model_a"), "group");
  EXPECT_EQ(r.ReadStrings("/compare/meg/c_vs_d/names"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(at::equal(r.ReadTensor("/kept"), Pattern(at::kLong, {3})));
  EXPECT_FALSE(r.Exists("/other"));
}

}  // namespace
}  // namespace cliphba::io
