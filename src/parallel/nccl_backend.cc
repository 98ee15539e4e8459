// NCCL all-reduce backend, compiled only when CMake finds CUDA and NCCL (CLIPHBA_WITH_NCCL).
// Debian's libtorch is CPU-only: this file is compile-tested there and run-tested on GPU machines.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "parallel/grad_sync.h"

namespace cliphba::parallel {

namespace {

void CheckCuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess)
    throw Error(ExitCode::kInternal, std::string(what) + " failed: " + cudaGetErrorString(rc));
}
void CheckNccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess)
    throw Error(ExitCode::kInternal, std::string(what) + " failed: " + ncclGetErrorString(rc));
}

// Owns the NCCL communicator and a CUDA stream; the unique id travels over MPI from rank 0.
class NcclBackend : public AllreduceBackend {
 public:
  NcclBackend(const Comm& comm, int device) : device_(device) {
    CheckCuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    if (comm.rank() == 0) CheckNccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::string bytes(reinterpret_cast<const char*>(&id), sizeof id);
    bytes = comm.Broadcast(bytes);  // collective over MPI
    std::memcpy(&id, bytes.data(), sizeof id);
    CheckNccl(ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()), "ncclCommInitRank");
    CheckCuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }
  ~NcclBackend() override {
    if (stream_) cudaStreamDestroy(stream_);
    if (nccl_) ncclCommDestroy(nccl_);
  }
  NcclBackend(const NcclBackend&) = delete;
  NcclBackend& operator=(const NcclBackend&) = delete;

  void SumInPlace(at::Tensor& flat) override {
    TORCH_CHECK(flat.is_cuda() && flat.is_contiguous() && flat.scalar_type() == at::kFloat,
                "the NCCL backend sums contiguous float32 CUDA tensors");
    CheckNccl(ncclAllReduce(flat.data_ptr(), flat.data_ptr(), size_t(flat.numel()), ncclFloat,
                            ncclSum, nccl_, stream_),
              "ncclAllReduce");
    CheckCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  std::string name() const override { return "nccl"; }

 private:
  int device_;
  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

bool HaveNccl() { return true; }

NcclInfo QueryNccl() {
  NcclInfo info;
  info.built = true;
  auto dotted = [](int v, int major_div) {  // CUDA: 13000 -> "13.0"
    return std::to_string(v / major_div) + "." + std::to_string(v % major_div / 10);
  };
  int v = 0;
  if (ncclGetVersion(&v) == ncclSuccess)  // 22707 -> 2.27.7 (NCCL_VERSION_CODE layout)
    info.nccl = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                std::to_string(v % 100);
  if (cudaRuntimeGetVersion(&v) == cudaSuccess) info.cuda_runtime = dotted(v, 1000);
  if (cudaDriverGetVersion(&v) == cudaSuccess && v > 0) info.cuda_driver = dotted(v, 1000);
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    info.error = cudaGetErrorString(rc);
    return info;
  }
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f GiB", double(p.totalGlobalMem) / double(1 << 30));
    info.gpus.push_back(std::string(p.name) + ", " + mem + ", sm_" + std::to_string(p.major) +
                        std::to_string(p.minor));
  }
  return info;
}

std::unique_ptr<AllreduceBackend> MakeNcclBackend(const Comm& comm, int device_index) {
  return std::make_unique<NcclBackend>(comm, device_index);
}

}  // namespace cliphba::parallel
