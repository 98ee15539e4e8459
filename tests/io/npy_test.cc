#include "io/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"

namespace cliphba::io {
namespace {

const std::string kThings = std::string(CLIPHBA_SHARED_DIR) + "/data/things/";

// Scratch files are prefixed so that tests of other modules sharing the folder never collide.
std::string Out(const std::string& name) {
  return std::string(CLIPHBA_TEST_OUT_DIR) + "/npy_" + name;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// An NPY file with header text `dict` (padded like numpy) followed by `data`.
std::string NpyBytes(const std::string& dict, const std::string& data, int major = 1) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  const size_t prefix = 8 + len_bytes;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (size_t k = 0; k < len_bytes; ++k)
    out.push_back(static_cast<char>((header.size() >> (8 * k)) & 0xff));
  return out + header + data;
}

template <typename T>
std::string Bytes(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(&s[0], values.begin(), s.size());
  return s;
}

// Runs `fn`, expecting an exception of type E whose message contains every phrase.
template <typename E, typename Fn>
void ExpectError(Fn fn, std::initializer_list<std::string> phrases) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << *phrases.begin() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : phrases) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// Writes a crafted file and expects ReadNpy (and ReadNpyHeader) to refuse it with a DataError that
// names the file and contains `phrase`.
void ExpectBadNpy(const std::string& name, const std::string& bytes, const std::string& phrase) {
  SCOPED_TRACE(name);
  const std::string path = Out(name);
  WriteRaw(path, bytes);
  ExpectError<DataError>([&] { ReadNpy(path); }, {name, phrase});
  ExpectError<DataError>([&] { ReadNpyHeader(path); }, {name, phrase});
}

TEST(NpyRealData, Rdm48IsFortranOrderAndRefusedOnlyWhenOptedOut) {
  NpyReadOptions strict;
  strict.allow_fortran_order = false;
  ExpectError<DataError>([&] { ReadNpy(kThings + "RDM48_triplet.npy", strict); },
                         {"RDM48_triplet.npy", "'fortran_order' is True", "C-order"});
  // The default reads it, converted: the same tensor as the explicit opt-in below.
  NpyReadOptions opt_in;
  opt_in.allow_fortran_order = true;
  EXPECT_TRUE(at::equal(ReadNpy(kThings + "RDM48_triplet.npy"),
                        ReadNpy(kThings + "RDM48_triplet.npy", opt_in)));
}

TEST(NpyFortran, RowReadsOfAFortranFileEqualTheCOrderRows) {
  // A (4, 3, 2) array written in Fortran order (element (i, j, k) at i + 4 j + 12 k) and in C
  // order: every block of rows reads the same.
  std::vector<double> f(24), c(24);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) {
        const double v = 100 * i + 10 * j + k;
        f[i + 4 * j + 12 * k] = v;
        c[(i * 3 + j) * 2 + k] = v;
      }
  const std::string pf = Out("rows_f.npy"), pc = Out("rows_c.npy");
  auto raw = [](const std::vector<double>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
  };
  WriteRaw(pf, NpyBytes("{'descr': '<f8', 'fortran_order': True, 'shape': (4, 3, 2), }", raw(f)));
  WriteRaw(pc, NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3, 2), }", raw(c)));
  const NpyHeader hf = ReadNpyHeader(pf), hc = ReadNpyHeader(pc);
  ASSERT_TRUE(hf.fortran_order);
  for (int64_t first = 0; first < 4; ++first)
    for (int64_t count = 0; first + count <= 4; ++count) {
      const at::Tensor a = ReadNpyRows(pf, hf, first, count), b = ReadNpyRows(pc, hc, first, count);
      ASSERT_EQ(a.sizes(), b.sizes());
      EXPECT_TRUE(at::equal(a, b)) << first << "+" << count;
    }
  EXPECT_TRUE(at::equal(ReadNpy(pf), ReadNpy(pc)));
}

TEST(NpyRealData, Rdm48ReadsWithFortranOptIn) {
  NpyReadOptions opts;
  opts.allow_fortran_order = true;
  const at::Tensor rdm = ReadNpy(kThings + "RDM48_triplet.npy", opts);
  ASSERT_EQ(rdm.scalar_type(), at::kDouble);
  ASSERT_EQ(rdm.sizes(), (std::vector<int64_t>{48, 48}));
  ASSERT_TRUE(rdm.is_contiguous());
  EXPECT_TRUE(at::equal(rdm, rdm.t()));
  EXPECT_EQ(at::diagonal(rdm).abs().max().item<double>(), 0.0);
  // Values checked once with numpy.load.
  EXPECT_DOUBLE_EQ(rdm[0][1].item<double>(), 0.8307692307692307);
  EXPECT_DOUBLE_EQ(rdm[3][7].item<double>(), 0.7333333333333334);
  EXPECT_DOUBLE_EQ(rdm[47][46].item<double>(), 0.24545454545454548);
  EXPECT_GE(rdm.min().item<double>(), 0.0);
  EXPECT_LE(rdm.max().item<double>(), 0.99);

  const NpyHeader h = ReadNpyHeader(kThings + "RDM48_triplet.npy", /*allow_fortran_order=*/true);
  EXPECT_TRUE(h.fortran_order);
  EXPECT_EQ(h.descr, "<f8");
  EXPECT_EQ(h.data_offset, 128);
  EXPECT_EQ(h.data_bytes, 48 * 48 * 8);
}

TEST(NpyRealData, Triplet48IndexIsInt64) {
  const at::Tensor idx = ReadNpy(kThings + "triplet48_index.npy");
  ASSERT_EQ(idx.scalar_type(), at::kLong);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{48}));
  const std::vector<int64_t> first = {1192, 107, 951, 1626, 361};
  for (size_t k = 0; k < first.size(); ++k) EXPECT_EQ(idx[k].item<int64_t>(), first[k]);
  EXPECT_EQ(idx[45].item<int64_t>(), 897);
  EXPECT_EQ(idx[47].item<int64_t>(), 209);
  EXPECT_EQ(std::get<0>(at::_unique(idx)).numel(), 48);
}

TEST(NpyRealData, WriteIsByteIdenticalToNumpy) {
  const at::Tensor idx = ReadNpy(kThings + "triplet48_index.npy");
  const std::string path = Out("triplet48_copy.npy");
  WriteNpy(path, idx);
  EXPECT_EQ(Slurp(path), Slurp(kThings + "triplet48_index.npy"));
}

TEST(NpyFortran, ConvertsToCOrder) {
  // Fortran order (2, 3): element (i, j) is stored at i + 2 j.
  const std::string path = Out("fortran23.npy");
  WriteRaw(path, NpyBytes("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
                          Bytes<int32_t>({0, 10, 1, 11, 2, 12})));
  NpyReadOptions opts;
  opts.allow_fortran_order = true;
  opts.mmap_threshold_bytes = 1;  // Fortran arrays are copied, never mapped
  const at::Tensor t = ReadNpy(path, opts);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(t.is_contiguous());
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_EQ(t[i][j].item<int32_t>(), 10 * i + j);
  }
}

std::vector<int64_t> ShapeOfRank(int rank) {
  const std::vector<int64_t> dims = {3, 2, 4, 5};
  return std::vector<int64_t>(dims.begin(), dims.begin() + rank);
}

at::Tensor Sample(at::ScalarType type, const std::vector<int64_t>& shape) {
  if (at::isFloatingType(type)) return at::randn(shape, at::TensorOptions().dtype(type));
  if (type == at::kByte) return at::randint(0, 256, shape, at::TensorOptions().dtype(type));
  if (type == at::kChar) return at::randint(-128, 128, shape, at::TensorOptions().dtype(type));
  return at::randint(-1000000, 1000000, shape, at::TensorOptions().dtype(type));
}

TEST(NpyRoundTrip, EveryDtypeAndRank) {
  at::manual_seed(7);
  const std::vector<std::pair<at::ScalarType, std::string>> types = {
      {at::kFloat, "<f4"}, {at::kDouble, "<f8"}, {at::kLong, "<i8"},
      {at::kInt, "<i4"},   {at::kChar, "|i1"},   {at::kByte, "|u1"}};
  for (const auto& [type, descr] : types) {
    for (int rank = 0; rank <= 4; ++rank) {
      SCOPED_TRACE(descr + " rank " + std::to_string(rank));
      const at::Tensor t = Sample(type, ShapeOfRank(rank));
      const std::string path =
          Out("rt_" + std::to_string(static_cast<int>(type)) + "_" + std::to_string(rank) + ".npy");
      WriteNpy(path, t);
      EXPECT_FALSE(Exists(path + ".partial"));

      const NpyHeader h = ReadNpyHeader(path);
      EXPECT_EQ(h.descr, descr);
      EXPECT_EQ(h.dtype, type);
      EXPECT_EQ(h.shape, ShapeOfRank(rank));
      EXPECT_EQ(h.data_offset % 64, 0);
      EXPECT_EQ(h.data_bytes, t.numel() * t.element_size());
      EXPECT_EQ(Slurp(path)[h.data_offset - 1], '\n');

      const at::Tensor read = ReadNpy(path);
      EXPECT_EQ(read.scalar_type(), type);
      EXPECT_TRUE(at::equal(read, t));

      NpyReadOptions mmap_opts;
      mmap_opts.mmap_threshold_bytes = 1;
      const at::Tensor mapped = ReadNpy(path, mmap_opts);
      EXPECT_EQ(mapped.sizes(), t.sizes());
      EXPECT_TRUE(at::equal(mapped, read));
    }
  }
}

TEST(NpyRoundTrip, HeaderTextMatchesNumpy) {
  const std::string path = Out("header_1d.npy");
  WriteNpy(path, at::arange(5, at::kDouble));
  const std::string bytes = Slurp(path);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(bytes.find("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }"),
            std::string::npos);
  EXPECT_EQ(bytes.size(), 128u + 5 * 8);

  WriteNpy(path, at::scalar_tensor(2.5, at::kDouble));
  EXPECT_NE(Slurp(path).find("'shape': (), }"), std::string::npos);
  const at::Tensor s = ReadNpy(path);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<double>(), 2.5);
}

TEST(NpyRoundTrip, EmptyAndNonContiguous) {
  const std::string path = Out("empty.npy");
  WriteNpy(path, at::zeros({0, 3}, at::kFloat));
  NpyReadOptions mmap_opts;
  mmap_opts.mmap_threshold_bytes = 0;  // zero bytes of data: read, not mapped
  const at::Tensor e = ReadNpy(path, mmap_opts);
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{0, 3}));

  const at::Tensor t = at::arange(12, at::kLong).reshape({3, 4}).t();  // not contiguous
  WriteNpy(path, t);
  EXPECT_TRUE(at::equal(ReadNpy(path), t));
}

TEST(NpyMmap, MappedTensorOutlivesItsSourceAndMatchesRead) {
  const at::Tensor t = at::randn({64, 33}, at::kDouble);
  const std::string path = Out("mmap.npy");
  WriteNpy(path, t);
  NpyReadOptions opts;
  opts.mmap_threshold_bytes = 64 * 33 * 8;  // exactly the data size: mapped
  at::Tensor view;
  {
    const at::Tensor mapped = ReadNpy(path, opts);
    EXPECT_NE(Slurp("/proc/self/maps").find(path), std::string::npos) << "not memory-mapped";
    view = mapped.slice(0, 10, 20);
  }
  EXPECT_TRUE(at::equal(view, t.slice(0, 10, 20)));
  view.reset();  // the last reference: the deleter unmaps the file
  EXPECT_EQ(Slurp("/proc/self/maps").find(path), std::string::npos) << "mapping leaked";
  opts.mmap_threshold_bytes += 1;  // one byte more than the data: read, not mapped
  const at::Tensor read = ReadNpy(path, opts);
  EXPECT_EQ(Slurp("/proc/self/maps").find(path), std::string::npos);
  EXPECT_TRUE(at::equal(read, t));
  EXPECT_TRUE(at::equal(ReadNpy(path, opts), ReadNpy(path)));
}

TEST(NpyHeaderParsing, AcceptsNumpyVariants) {
  struct Case {
    std::string name, dict;
    int major;
    std::vector<int64_t> shape;
  };
  const std::string data = Bytes<float>({1, 2, 3, 4, 5, 6});
  const std::vector<Case> cases = {
      {"v1.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1, {6}},
      {"v2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, {2, 3}},
      {"v3.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 3, {3, 2}},
      {"order.npy", "{ 'shape' : ( 1 , 6 ) ,'fortran_order':False,   'descr':'<f4'}", 1, {1, 6}},
      {"dq.npy", "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", 1, {6}},
      {"py2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 1, {2, 3}},
      {"rank3.npy", "{'descr':'<f4','fortran_order':False,'shape':(1,2,3,)}", 1, {1, 2, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = Out(c.name);
    WriteRaw(path, NpyBytes(c.dict, data, c.major));
    const at::Tensor t = ReadNpy(path);
    EXPECT_EQ(t.sizes(), c.shape);
    EXPECT_TRUE(at::equal(t.flatten(), at::arange(1, 7, at::kFloat)));
  }

  const std::string zero_d = Out("zero_d.npy");
  WriteRaw(zero_d, NpyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                            Bytes<int64_t>({-42})));
  EXPECT_EQ(ReadNpy(zero_d).dim(), 0);
  EXPECT_EQ(ReadNpy(zero_d).item<int64_t>(), -42);

  // Byte order is meaningless for 1-byte types: '<', '=', '|' all accepted.
  for (const std::string descr : {"|u1", "<u1", "=u1", ">u1"}) {
    const std::string path = Out("u1.npy");
    WriteRaw(path, NpyBytes("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3,), }",
                            std::string("\x01\x02\xff", 3)));
    const at::Tensor t = ReadNpy(path);
    EXPECT_EQ(t.scalar_type(), at::kByte) << descr;
    EXPECT_EQ(t[2].item<uint8_t>(), 255) << descr;
  }
  const std::string i1 = Out("i1.npy");
  WriteRaw(i1, NpyBytes("{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }",
                        std::string("\x7f\x80", 2)));
  EXPECT_EQ(ReadNpy(i1)[1].item<int8_t>(), -128);
}

TEST(NpyErrors, RefusesBadFiles) {
  const std::string f8x4 = Bytes<double>({1, 2, 3, 4});
  // (A well-formed Fortran-order file is read, converted: NpyFortran and NpyRealData tests.)
  ExpectBadNpy("bad_bigendian.npy",
               NpyBytes("{'descr': '>f8', 'fortran_order': False, 'shape': (4,), }", f8x4),
               "big-endian");
  ExpectBadNpy("bad_object.npy",
               NpyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", f8x4),
               "object arrays");
  ExpectBadNpy("bad_structured.npy",
               NpyBytes("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, "
                        "'shape': (4,), }",
                        f8x4),
               "structured");
  ExpectBadNpy("bad_complex.npy",
               NpyBytes("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", f8x4),
               "unsupported dtype");
  ExpectBadNpy("bad_bool.npy",
               NpyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", "abcd"),
               "unsupported dtype");
  ExpectBadNpy(
      "bad_5d.npy",
      NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 2, 2), }", f8x4),
      "5 dimensions");
  ExpectBadNpy(
      "bad_truncated.npy",
      NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", f8x4.substr(0, 30)),
      "truncated: header promises 32 bytes of data, file has 30");
  ExpectBadNpy("bad_trailing.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", f8x4 + "xyz"),
               "header lies about the size");
  std::string bad_magic =
      NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", f8x4);
  bad_magic[1] = 'P';
  ExpectBadNpy("bad_magic.npy", bad_magic, "bad magic");
  ExpectBadNpy("bad_tiny.npy", "\x93NU", "not an NPY file");
  ExpectBadNpy("bad_notdict.npy", NpyBytes("['descr', '<f8']", f8x4), "dict literal");
  ExpectBadNpy("bad_missingkey.npy", NpyBytes("{'descr': '<f8', 'fortran_order': False}", f8x4),
               "missing the key 'shape'");
  ExpectBadNpy("bad_extrakey.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'x': 1}", f8x4),
               "unexpected key 'x'");
  ExpectBadNpy("bad_unclosed.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,)", f8x4),
               "malformed NPY header");
  ExpectBadNpy("bad_shape_int.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': 4}", f8x4),
               "'shape' is an integer");
  ExpectBadNpy("bad_shape_neg.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-4,)}", f8x4),
               "non-negative");
  ExpectBadNpy("bad_fortran_type.npy",
               NpyBytes("{'descr': '<f8', 'fortran_order': 0, 'shape': (4,)}", f8x4),
               "expected True or False");
  ExpectBadNpy("bad_multibyte_pipe.npy",
               NpyBytes("{'descr': '|f8', 'fortran_order': False, 'shape': (4,)}", f8x4),
               "byte order");
  std::string bad_version =
      NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", f8x4);
  bad_version[6] = 4;
  ExpectBadNpy("bad_version.npy", bad_version, "version 4.0");
  std::string bad_len = NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", "");
  bad_len[8] = '\xff';
  bad_len[9] = '\x7f';
  ExpectBadNpy("bad_headerlen.npy", bad_len, "truncated NPY file");
}

TEST(NpyErrors, MissingFileIsIoError) {
  ExpectError<IoError>([] { ReadNpy(Out("no_such_file.npy")); },
                       {"no_such_file.npy", "cannot open"});
  ExpectError<IoError>([] { ReadNpyHeader(Out("no_such_file.npy")); }, {"no_such_file.npy"});
}

TEST(NpyWrite, AtomicAndLeavesNothingOnFailure) {
  const std::string path = Out("atomic.npy");
  std::remove(path.c_str());
  WriteNpy(path, at::ones({4}, at::kFloat));
  EXPECT_TRUE(Exists(path));
  EXPECT_FALSE(Exists(path + ".partial"));
  // Overwriting replaces the file.
  WriteNpy(path, at::zeros({2}, at::kLong));
  EXPECT_EQ(ReadNpy(path).scalar_type(), at::kLong);
  EXPECT_FALSE(Exists(path + ".partial"));

  const std::string missing_dir = Out("no_such_dir/x.npy");
  ExpectError<IoError>([&] { WriteNpy(missing_dir, at::ones({4})); }, {"no_such_dir/x.npy"});
  EXPECT_FALSE(Exists(missing_dir));
  EXPECT_FALSE(Exists(missing_dir + ".partial"));
}

TEST(NpyWrite, DiskFullIsIoErrorAndLeavesNothing) {
  if (!Exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  // A ".partial" that is a symlink to /dev/full makes every write fail with ENOSPC.
  const std::string path = Out("full.npy");
  std::remove(path.c_str());
  std::remove((path + ".partial").c_str());
  ASSERT_EQ(symlink("/dev/full", (path + ".partial").c_str()), 0);
  ExpectError<IoError>([&] { WriteNpy(path, at::ones({100000}, at::kDouble)); },
                       {"full.npy", "No space left"});
  EXPECT_FALSE(Exists(path));
  std::remove((path + ".partial").c_str());
}

TEST(NpyWrite, RefusesUnsupportedTensors) {
  const std::string path = Out("unsupported.npy");
  ExpectError<DataError>([&] { WriteNpy(path, at::ones({2}, at::kBool)); },
                         {"unsupported.npy", "cannot write dtype"});
  ExpectError<DataError>(
      [&] {
        WriteNpy(path, at::ones({1, 1, 1, 1, 2}));
      },
      {"unsupported.npy", "5-D"});
  ExpectError<DataError>([&] { WriteNpy(path, at::Tensor()); }, {"unsupported.npy", "undefined"});
  EXPECT_FALSE(Exists(path + ".partial"));
}

}  // namespace
}  // namespace cliphba::io

namespace cliphba::io {
namespace {

TEST(NpyRows, ReadsAnySubRangeOfDimZeroWithoutTheRest) {
  at::Tensor stack = at::arange(5 * 4 * 4, at::kFloat).view({5, 4, 4});
  const std::string path = Out("rows.npy");
  WriteNpy(path, stack);
  NpyHeader h = ReadNpyHeader(path);
  EXPECT_TRUE(at::equal(ReadNpyRows(path, h, 1, 3), stack.narrow(0, 1, 3)));
  EXPECT_TRUE(at::equal(ReadNpyRows(path, h, 4, 1), stack.narrow(0, 4, 1)));
  EXPECT_EQ(ReadNpyRows(path, h, 5, 0).size(0), 0);
  EXPECT_THROW(ReadNpyRows(path, h, 4, 2), DataError);
  EXPECT_THROW(ReadNpyRows(path, h, -1, 1), DataError);
}

}  // namespace
}  // namespace cliphba::io
