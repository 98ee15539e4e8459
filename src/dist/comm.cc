#include "dist/comm.h"

#include <vector>

#include "core/error.h"

namespace cliphba::dist {

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
  TORCH_CHECK(false, "MPI reductions support int64 and float64 tensors");
}
}  // namespace

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    Check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

Comm::Comm(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

void Comm::AllreduceSum(at::Tensor& t) const {
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(),
              "AllreduceSum needs a contiguous CPU tensor");
  Check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), TypeOf(t), MPI_SUM, comm_),
        "MPI_Allreduce(sum)");
}

void Comm::AllreduceMax(at::Tensor& t) const {
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(),
              "AllreduceMax needs a contiguous CPU tensor");
  Check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), TypeOf(t), MPI_MAX, comm_),
        "MPI_Allreduce(max)");
}

bool Comm::AnyTrue(bool flag) const {
  int local = flag ? 1 : 0, global = 0;
  Check(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, comm_), "MPI_Allreduce(or)");
  return global != 0;
}

std::string Comm::Broadcast(const std::string& value) const {
  long long len = static_cast<long long>(value.size());
  Check(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm_), "MPI_Bcast");
  std::string out = value;
  out.resize(size_t(len));
  Check(MPI_Bcast(out.data(), int(len), MPI_CHAR, 0, comm_), "MPI_Bcast");
  return out;
}

void Comm::Barrier() const { Check(MPI_Barrier(comm_), "MPI_Barrier"); }

std::string AgreeOnError(const Comm& comm, const std::string& local_error) {
  int mine = local_error.empty() ? comm.size() : comm.rank(), first = 0;
  Check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm.get()), "MPI_Allreduce(min)");
  if (first == comm.size()) return "";
  long long len = static_cast<long long>(local_error.size());
  Check(MPI_Bcast(&len, 1, MPI_LONG_LONG, first, comm.get()), "MPI_Bcast");
  std::string out = local_error;
  out.resize(size_t(len));
  Check(MPI_Bcast(out.data(), int(len), MPI_CHAR, first, comm.get()), "MPI_Bcast");
  return "rank " + std::to_string(first) + ": " + out;
}

}  // namespace cliphba::dist
