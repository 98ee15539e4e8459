// The results store under MPI: every rank writes its share of the rows; the file must not depend on
// the number of ranks (CTest runs this with 1, 2 and 3 ranks and h5diffs the outputs).
//
// Usage: mpirun -np N results_store_mpi_test OUT.h5
// Exit code 0 only if every check passed on every rank.
#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/shard.h"
#include "io/results_store.h"
#include "mpi_check.h"
#include "parallel/comm.h"

namespace {

using cliphba::Range;
using cliphba::ShardRange;
using cliphba::io::ResultsReader;
using cliphba::io::ResultsStore;

double MatrixValue(int64_t row, int64_t col) { return 100.0 * row + col + 0.25; }
int64_t VectorValue(int64_t i) { return i * i - 3 * i - 1; }
float FewValue(int64_t row, int64_t col) { return static_cast<float>(row) - 0.5f * col; }
float CubeValue(int64_t t, int64_t i, int64_t j) { return float(100 * t + 10 * i + j) + 0.5f; }

// This rank's rows [range.begin, range.end) of a (n x cols) matrix f(row, col).
template <typename F>
at::Tensor Rows(Range range, int64_t cols, at::ScalarType dtype, F f) {
  at::Tensor t = at::empty({range.size(), cols}, at::kDouble);
  auto a = t.accessor<double, 2>();
  for (int64_t r = 0; r < range.size(); ++r) {
    for (int64_t c = 0; c < cols; ++c) a[r][c] = f(range.begin + r, c);
  }
  return t.to(dtype);
}

const std::vector<std::string> kNames = {"dog", "café", "東京", ""};

void Write(const std::string& path, int size) {
  ResultsStore store = ResultsStore::CreateParallel(path, cliphba::parallel::Comm(MPI_COMM_WORLD));
  TEST_CHECK(store.parallel());

  Range m = ShardRange(7, size, g_rank);
  store.WriteRows("/rows/matrix", {7, 5}, at::kDouble, m.begin,
                  Rows(m, 5, at::kDouble, MatrixValue));
  TEST_CHECK(store.last_io_was_collective());

  Range v = ShardRange(10, size, g_rank);
  at::Tensor vec = at::empty({v.size()}, at::kLong);
  for (int64_t i = 0; i < v.size(); ++i) vec[i] = VectorValue(v.begin + i);
  store.WriteRows("/rows/vector", {10}, at::kLong, v.begin, vec);
  TEST_CHECK(store.last_io_was_collective());

  // Fewer rows than ranks at -np 3: one rank owns nothing and selects none.
  Range few = ShardRange(2, size, g_rank);
  store.WriteRows("/rows/few", {2, 3}, at::kFloat, few.begin, Rows(few, 3, at::kFloat, FewValue));
  TEST_CHECK(store.last_io_was_collective());

  // Blocks: a (3, 7, 2) dataset filled in two calls, each rank writing its columns [c.begin,
  // c.end) of dim 1 (rank 2 of 3 owns nothing in the second call and passes an empty block).
  store.CreateDataset("/blocks/cube", {3, 7, 2}, at::kFloat);
  const Range c = ShardRange(7, size, g_rank);
  for (int64_t t0 : {int64_t(0), int64_t(2)}) {
    const int64_t count = t0 == 0 ? 2 : 1;
    Range w = c;  // at -np 3 the second call: rank 1 writes rank 2's columns too, rank 2 none
    if (t0 == 2 && size == 3 && g_rank == 1) w.end = 7;
    if (t0 == 2 && size == 3 && g_rank == 2) w.end = w.begin;
    at::Tensor block = at::empty({count, w.size(), 2}, at::kDouble);  // converted to float32
    for (int64_t t = 0; t < count; ++t)
      for (int64_t i = 0; i < w.size(); ++i)
        for (int64_t j = 0; j < 2; ++j) block[t][i][j] = CubeValue(t0 + t, w.begin + i, j);
    store.WriteBlock("/blocks/cube", {t0, w.begin, 0}, block);
    TEST_CHECK(store.last_io_was_collective());
  }
  {  // A block outside the dataset on one rank throws on every rank.
    bool threw = false;
    try {
      store.WriteBlock("/blocks/cube", {g_rank == 0 ? 3 : 0, 0, 0}, at::zeros({1, 1, 2}));
    } catch (const cliphba::DataError&) {
      threw = true;
    }
    TEST_CHECK(threw);
  }

  // Whole tensors: rank 0's data are written, every rank takes part.
  store.WriteTensor("/tensor/int32", at::arange(12, at::kInt).reshape({3, 4}));
  store.WriteTensor("/tensor/scalar", at::scalar_tensor(2.5, at::kDouble));
  store.WriteTensor("/tensor/int8", at::arange(-3, 3, at::kChar));
  store.WriteStrings("/objects/names", kNames);

  store.SetAttribute("/", "cliphba_version", std::string("0.1.0"));
  store.SetAttribute("/", "schema_version", int64_t{1});
  store.SetAttribute("/", "command", std::string("results_store_mpi_test"));
  store.SetAttribute("/rows/matrix", "scale", 0.5);
  store.SetAttribute("/rows/matrix", "bounds", std::vector<double>{0.0, 1.0});
  store.SetAttribute("/meta", "labels", std::vector<std::string>{"a", "ü"});
  store.SetAttribute("/meta", "overwritten", int64_t{1});
  store.SetAttribute("/meta", "overwritten", int64_t{2});

  // Arguments that differ between ranks throw on every rank (and write nothing).
  if (size > 1) {
    bool threw = false;
    try {
      store.WriteTensor(g_rank == 0 ? "/bad/a" : "/bad/b", at::zeros({2}));
    } catch (const cliphba::DataError&) {
      threw = true;
    }
    TEST_CHECK(threw);
  }

  TEST_CHECK(!std::filesystem::exists(path));
  store.Commit();
}

void Verify(const std::string& path) {
  ResultsReader r(path);
  at::Tensor m = r.ReadTensor("/rows/matrix");
  TEST_CHECK(m.scalar_type() == at::kDouble && m.sizes() == at::IntArrayRef({7, 5}));
  for (int64_t i = 0; i < 7; ++i) {
    for (int64_t j = 0; j < 5; ++j) TEST_CHECK(m[i][j].item<double>() == MatrixValue(i, j));
  }
  at::Tensor v = r.ReadTensor("/rows/vector");
  TEST_CHECK(v.scalar_type() == at::kLong && v.sizes() == at::IntArrayRef({10}));
  for (int64_t i = 0; i < 10; ++i) TEST_CHECK(v[i].item<int64_t>() == VectorValue(i));
  at::Tensor few = r.ReadTensor("/rows/few");
  TEST_CHECK(few.scalar_type() == at::kFloat && few.sizes() == at::IntArrayRef({2, 3}));
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) TEST_CHECK(few[i][j].item<float>() == FewValue(i, j));
  }
  at::Tensor cube = r.ReadTensor("/blocks/cube");
  TEST_CHECK(cube.scalar_type() == at::kFloat && cube.sizes() == at::IntArrayRef({3, 7, 2}));
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 2; ++j) TEST_CHECK(cube[t][i][j].item<float>() == CubeValue(t, i, j));
  TEST_CHECK(at::equal(r.ReadTensor("/tensor/int32"), at::arange(12, at::kInt).reshape({3, 4})));
  at::Tensor s = r.ReadTensor("/tensor/scalar");
  TEST_CHECK(s.dim() == 0 && s.item<double>() == 2.5);
  TEST_CHECK(at::equal(r.ReadTensor("/tensor/int8"), at::arange(-3, 3, at::kChar)));
  TEST_CHECK(r.ReadStrings("/objects/names") == kNames);
  TEST_CHECK(r.ReadStringAttribute("/", "cliphba_version") == "0.1.0");
  TEST_CHECK(r.ReadIntAttribute("/", "schema_version") == 1);
  TEST_CHECK(r.ReadStringAttribute("/", "command") == "results_store_mpi_test");
  TEST_CHECK(r.ReadDoubleAttribute("/rows/matrix", "scale") == 0.5);
  TEST_CHECK(r.ReadIntAttribute("/meta", "overwritten") == 2);
  TEST_CHECK(!r.Exists("/bad"));
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2) {
    if (g_rank == 0) std::fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const std::string path = argv[1];
  const std::string abandoned = path + ".abandoned.h5";
  if (g_rank == 0) {
    std::filesystem::remove(path);
    std::filesystem::remove(path + ".partial");
  }
  MPI_Barrier(MPI_COMM_WORLD);

  try {
    Write(path, size);
    TEST_CHECK(std::filesystem::exists(path));  // every rank sees the committed file
    TEST_CHECK(!std::filesystem::exists(path + ".partial"));

    {  // A store destroyed without Commit() leaves nothing behind.
      ResultsStore store =
          ResultsStore::CreateParallel(abandoned, cliphba::parallel::Comm(MPI_COMM_WORLD));
      Range m = ShardRange(7, size, g_rank);
      store.WriteRows("/x", {7, 5}, at::kDouble, m.begin, Rows(m, 5, at::kDouble, MatrixValue));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    TEST_CHECK(!std::filesystem::exists(abandoned));
    TEST_CHECK(!std::filesystem::exists(abandoned + ".partial"));

    {  // A missing directory throws IoError on every rank (no rank hangs).
      bool threw = false;
      try {
        ResultsStore::CreateParallel(path + ".no_such_dir/x.h5",
                                     cliphba::parallel::Comm(MPI_COMM_WORLD));
      } catch (const cliphba::IoError&) {
        threw = true;
      }
      TEST_CHECK(threw);
    }

    if (g_rank == 0) Verify(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] exception: %s\n", g_rank, e.what());
    ++g_failures;
  }

  int local = g_failures > 0 ? 1 : 0, any = 0;
  MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0)
    std::printf("results_store_mpi_test (%d ranks): %s\n", size, any ? "FAIL" : "PASS");
  MPI_Finalize();
  return any ? 1 : 0;
}
