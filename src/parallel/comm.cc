#include "parallel/comm.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/error.h"

namespace cliphba::parallel {

namespace {
void Check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(ExitCode::kInternal, std::string(what) + " failed: " + std::string(msg, len));
  }
}

MPI_Datatype TypeOf(const at::Tensor& t) {
  if (t.scalar_type() == at::kLong) return MPI_INT64_T;
  if (t.scalar_type() == at::kDouble) return MPI_DOUBLE;
  if (t.scalar_type() == at::kFloat) return MPI_FLOAT;
  TORCH_CHECK(false, "MPI collectives support int64, float32 and float64 tensors");
}
// EndAfterError's communicator (a duplicate of MPI_COMM_WORLD made by MpiEnvironment).
MPI_Comm g_error_comm = MPI_COMM_NULL;
}  // namespace

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    Check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
  if (g_error_comm == MPI_COMM_NULL)
    Check(MPI_Comm_dup(MPI_COMM_WORLD, &g_error_comm), "MPI_Comm_dup");
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (g_error_comm != MPI_COMM_NULL) MPI_Comm_free(&g_error_comm);
  if (owns_) MPI_Finalize();
}

void EndAfterError(const std::string& line, int code, double grace_s) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (!initialized || finalized || size == 1 || g_error_comm == MPI_COMM_NULL) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return;
  }
  // Did every rank fail? A non-blocking barrier on the error communicator, polled until grace_s.
  MPI_Request request;
  int all_failed = 0;
  MPI_Ibarrier(g_error_comm, &request);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (true) {
    MPI_Test(&request, &all_failed, MPI_STATUS_IGNORE);
    if (all_failed || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!all_failed) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
    AbortWorld(code);  // does not return
    return;
  }
  // Rank 0's line to every rank; each prints only what rank 0 has not said.
  int rank = 0;
  MPI_Comm_rank(g_error_comm, &rank);
  int len = int(line.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, g_error_comm);
  std::string root_line = rank == 0 ? line : std::string(size_t(len), '\0');
  MPI_Bcast(root_line.data(), len, MPI_CHAR, 0, g_error_comm);
  if (rank == 0 || line != root_line) std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  MPI_Comm_free(&g_error_comm);
  MPI_Finalize();
}

std::string MpiLibraryVersion() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(text, &len);  // allowed before MPI_Init
  std::string v(text, size_t(len));
  if (auto end = v.find_first_of(std::string("\r\n\0", 3)); end != std::string::npos) v.resize(end);
  while (!v.empty() && (v.back() == ',' || v.back() == ' ')) v.pop_back();
  return v;
}

void AbortWorld(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

bool LaunchedByMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(var) != nullptr) return true;
  const char* tasks = std::getenv("SLURM_NTASKS");
  return std::getenv("SLURM_STEP_ID") != nullptr && tasks != nullptr && std::atoi(tasks) > 1;
}

Comm::Comm(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

void Comm::AllreduceSum(at::Tensor& t) const {
  if (!is_mpi()) return;
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(),
              "AllreduceSum needs a contiguous CPU tensor");
  Check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), TypeOf(t), MPI_SUM, comm_),
        "MPI_Allreduce(sum)");
}

void Comm::AllreduceMax(at::Tensor& t) const {
  if (!is_mpi()) return;
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(),
              "AllreduceMax needs a contiguous CPU tensor");
  Check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), TypeOf(t), MPI_MAX, comm_),
        "MPI_Allreduce(max)");
}

bool Comm::AnyTrue(bool flag) const {
  if (!is_mpi()) return flag;
  int local = flag ? 1 : 0, global = 0;
  Check(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, comm_), "MPI_Allreduce(or)");
  return global != 0;
}

std::string Comm::Broadcast(const std::string& value, int root) const {
  if (!is_mpi()) return value;
  long long len = static_cast<long long>(value.size());
  Check(MPI_Bcast(&len, 1, MPI_LONG_LONG, root, comm_), "MPI_Bcast");
  std::string out = value;
  out.resize(size_t(len));
  Check(MPI_Bcast(out.data(), int(len), MPI_CHAR, root, comm_), "MPI_Bcast");
  return out;
}

std::vector<std::string> Comm::Broadcast(const std::vector<std::string>& values) const {
  if (!is_mpi()) return values;
  long long n = static_cast<long long>(values.size());
  Check(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, comm_), "MPI_Bcast");
  std::vector<std::string> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) out[i] = Broadcast(rank_ == 0 ? values[i] : "");
  return out;
}

void Comm::Broadcast(at::Tensor& t) const {
  if (!is_mpi()) return;
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(), "Broadcast needs a contiguous CPU tensor");
  Check(MPI_Bcast(t.data_ptr(), int(t.numel()), TypeOf(t), 0, comm_), "MPI_Bcast");
}

void Comm::Barrier() const {
  if (is_mpi()) Check(MPI_Barrier(comm_), "MPI_Barrier");
}

void Comm::AllgatherRows(at::Tensor& rows, const std::vector<int64_t>& counts) const {
  if (!is_mpi()) return;
  TORCH_CHECK(rows.is_contiguous() && rows.device().is_cpu() && rows.dim() >= 1,
              "AllgatherRows needs contiguous CPU rows");
  TORCH_CHECK(int64_t(counts.size()) == size_, "AllgatherRows needs one count per rank");
  const int64_t row_elems = rows.dim() == 1 ? 1 : rows.numel() / rows.size(0);
  MPI_Datatype row;
  Check(MPI_Type_contiguous(int(row_elems), TypeOf(rows), &row), "MPI_Type_contiguous");
  MPI_Type_commit(&row);
  std::vector<int> cnt(size_), displ(size_);
  int64_t offset = 0;
  for (int r = 0; r < size_; ++r)
    cnt[r] = int(counts[r]), displ[r] = int(offset), offset += counts[r];
  int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows.data_ptr(), cnt.data(),
                          displ.data(), row, comm_);
  MPI_Type_free(&row);
  Check(rc, "MPI_Allgatherv");
}

OwnedComm OwnedComm::Split(const Comm& parent, int color, int key) {
  OwnedComm out;
  if (!parent.is_mpi()) return out;
  MPI_Comm split = MPI_COMM_NULL;
  Check(MPI_Comm_split(parent.get(), color, key, &split), "MPI_Comm_split");
  out.owned_ = split;
  out.comm_ = Comm(split);
  return out;
}

OwnedComm::OwnedComm(OwnedComm&& other) noexcept : owned_(other.owned_), comm_(other.comm_) {
  other.owned_ = MPI_COMM_NULL;
  other.comm_ = Comm::Serial();
}

OwnedComm& OwnedComm::operator=(OwnedComm&& other) noexcept {
  if (this != &other) {
    OwnedComm gone(std::move(*this));  // frees our communicator at the end of this scope
    owned_ = other.owned_;
    comm_ = other.comm_;
    other.owned_ = MPI_COMM_NULL;
    other.comm_ = Comm::Serial();
  }
  return *this;
}

OwnedComm::~OwnedComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owned_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&owned_);
}

}  // namespace cliphba::parallel
