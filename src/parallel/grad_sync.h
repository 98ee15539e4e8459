// Data-parallel gradient synchronisation: the trainable parameters' gradients are summed over
// ranks in buckets (one collective per bucket, not per parameter).
//
// Convention that makes training rank-count invariant: every rank computes its loss on its shard of
// the global batch as sum over its samples / global batch size, so the SUM of the ranks' gradients
// is the gradient of the global-batch mean. Backends: MPI all-reduce on CPU tensors; NCCL on device
// tensors when cliphba is built with CUDA and NCCL (CLIPHBA_WITH_NCCL; the unique id is broadcast
// over MPI). `dist.backend: auto | mpi | nccl` chooses (auto: nccl for CUDA tensors, else mpi).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/comm.h"

namespace cliphba::parallel {

// Sums a contiguous float32 tensor over all ranks, in place. Collective.
class AllreduceBackend {
 public:
  virtual ~AllreduceBackend() = default;
  virtual void SumInPlace(at::Tensor& flat) = 0;
  virtual std::string name() const = 0;
};

// MPI_Allreduce on CPU tensors (device tensors are staged through host memory).
std::unique_ptr<AllreduceBackend> MakeMpiBackend(const Comm& comm);

// NCCL all-reduce on CUDA tensors of device `device_index`. Collective over comm (NCCL id broadcast
// from rank 0). Throws ConfigError when cliphba was built without CUDA/NCCL.
std::unique_ptr<AllreduceBackend> MakeNcclBackend(const Comm& comm, int device_index);

// True if this build has the NCCL backend.
bool HaveNccl();

// What this build and machine offer for NCCL (`cliphba version`, scripts/gpu_check.sh): the NCCL
// and CUDA runtime/driver versions and the GPUs the CUDA runtime sees. Fields stay empty when the
// build has no NCCL; `error` says why the GPUs could not be listed (no driver, no device).
struct NcclInfo {
  bool built = false;         // HaveNccl()
  std::string nccl;           // "2.27.7"
  std::string cuda_runtime;   // "13.0"
  std::string cuda_driver;    // "13.0": the newest CUDA the driver supports
  std::vector<std::string> gpus;  // "NVIDIA H200, 139.8 GiB, sm_90"
  std::string error;
};
NcclInfo QueryNccl();

// The `dist.backend` choice. kAuto: NCCL for CUDA tensors when this build has it, else MPI.
enum class BackendKind { kAuto, kMpi, kNccl };

// A backend of `kind` for tensors on `device`. Collective over comm for NCCL. Throws ConfigError
// (kNccl in a build without NCCL, or for a CPU device).
std::unique_ptr<AllreduceBackend> MakeBackend(BackendKind kind, const Comm& comm,
                                              const at::Device& device);

// "auto" | "mpi" | "nccl" -> MakeBackend of that kind. Throws ConfigError for another name.
std::unique_ptr<AllreduceBackend> MakeBackend(const std::string& name, const Comm& comm,
                                              const at::Device& device);

// Sums the gradients of `params` (those with requires_grad and a defined grad) over ranks, packing
// them into buckets of about bucket_bytes (float32) so that each bucket is one collective.
// Parameters without a gradient on this rank contribute zeros (so every rank packs the same
// buckets). REQUIRES: the same parameter list, in the same order, on every rank. Collective.
void AllreduceGradients(const std::vector<at::Tensor>& params, AllreduceBackend& backend,
                        int64_t bucket_bytes = int64_t(25) << 20);

}  // namespace cliphba::parallel
