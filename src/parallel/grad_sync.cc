#include "parallel/grad_sync.h"

#include "core/error.h"

namespace cliphba::parallel {

namespace {

class MpiBackend : public AllreduceBackend {
 public:
  explicit MpiBackend(const Comm& comm) : comm_(comm) {}
  void SumInPlace(at::Tensor& flat) override {
    if (flat.device().is_cpu()) {
      comm_.AllreduceSum(flat);
      return;
    }
    at::Tensor host = flat.to(at::kCPU).contiguous();
    comm_.AllreduceSum(host);
    flat.copy_(host);
  }
  std::string name() const override { return "mpi"; }

 private:
  Comm comm_;
};

}  // namespace

std::unique_ptr<AllreduceBackend> MakeMpiBackend(const Comm& comm) {
  return std::make_unique<MpiBackend>(comm);
}

#ifndef CLIPHBA_WITH_NCCL
bool HaveNccl() { return false; }
NcclInfo QueryNccl() { return NcclInfo{}; }
std::unique_ptr<AllreduceBackend> MakeNcclBackend(const Comm&, int) {
  throw ConfigError(
      "dist.backend is nccl, but this cliphba was built without CUDA/NCCL "
      "(CMake did not find them); use dist.backend: mpi");
}
#endif

std::unique_ptr<AllreduceBackend> MakeBackend(BackendKind kind, const Comm& comm,
                                              const at::Device& device) {
  switch (kind) {
    case BackendKind::kMpi:
      return MakeMpiBackend(comm);
    case BackendKind::kNccl:
      // NCCL sums GPU tensors: refused at set-up rather than at the first all-reduce.
      if (!device.is_cuda())
        throw ConfigError(
            "dist.backend is nccl, but the gradients to sum live on the CPU (cliphba's trainers "
            "run on the CPU; NCCL sums GPU tensors): use dist.backend: mpi or auto");
      return MakeNcclBackend(comm, device.has_index() ? device.index() : 0);
    case BackendKind::kAuto:
      break;
  }
  if (device.is_cuda() && HaveNccl())
    return MakeNcclBackend(comm, device.has_index() ? device.index() : 0);
  return MakeMpiBackend(comm);
}

std::unique_ptr<AllreduceBackend> MakeBackend(const std::string& name, const Comm& comm,
                                              const at::Device& device) {
  if (name == "mpi") return MakeBackend(BackendKind::kMpi, comm, device);
  if (name == "nccl") return MakeBackend(BackendKind::kNccl, comm, device);
  if (name == "auto") return MakeBackend(BackendKind::kAuto, comm, device);
  throw ConfigError("dist.backend '" + name + "' is unknown; expected auto, mpi or nccl");
}

void AllreduceGradients(const std::vector<at::Tensor>& params, AllreduceBackend& backend,
                        int64_t bucket_bytes) {
  std::vector<at::Tensor> bucket;
  int64_t bucket_elems = 0;
  const int64_t limit = std::max<int64_t>(1, bucket_bytes / 4);
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<at::Tensor> pieces;
    for (auto& p : bucket) {
      at::Tensor g = p.grad().defined() ? p.grad().reshape({-1}).to(at::kFloat)
                                        : at::zeros({p.numel()}, p.options().dtype(at::kFloat));
      pieces.push_back(g);
    }
    at::Tensor flat = at::cat(pieces).contiguous();  // (bucket_elems) float32
    backend.SumInPlace(flat);
    int64_t offset = 0;
    for (auto& p : bucket) {
      at::Tensor slice = flat.narrow(0, offset, p.numel()).view(p.sizes()).to(p.scalar_type());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slice);
      } else {
        p.mutable_grad() = slice.clone();
      }
      offset += p.numel();
    }
    bucket.clear();
    bucket_elems = 0;
  };
  for (const at::Tensor& p : params) {
    if (!p.requires_grad()) continue;
    bucket.push_back(p);
    bucket_elems += p.numel();
    if (bucket_elems >= limit) flush();
  }
  flush();
}

}  // namespace cliphba::parallel
