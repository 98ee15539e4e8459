// Data-parallel gradient sync under mpirun -np 1, 2, 3: with each rank's loss taken as the sum over
// its shard of the global batch divided by the global batch size, the all-reduced gradients equal
// the single-process gradient of the global-batch mean (rank-count invariant training).
#include <ATen/ATen.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/shard.h"
#include "parallel/comm.h"
#include "parallel/grad_sync.h"

using namespace cliphba;

int main(int argc, char** argv) {
  parallel::MpiEnvironment env(&argc, &argv);
  parallel::Comm comm(MPI_COMM_WORLD);
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "rank %d: FAILED: %s\n", comm.rank(), what);
      ++failures;
    }
  };

  // A linear model y = x W^T + b on a fixed global batch of 12 samples (the same on every rank).
  at::manual_seed(7);
  at::Tensor x = at::randn({12, 5});
  at::Tensor y = at::randn({12, 3});
  at::Tensor w0 = at::randn({3, 5}), b0 = at::randn({3});
  at::Tensor frozen = at::randn({4}).set_requires_grad(false);  // never synchronised

  // Reference: one process, whole batch, loss = mean over samples of |y_hat - y|^2.
  at::Tensor w_ref = w0.clone().set_requires_grad(true), b_ref = b0.clone().set_requires_grad(true);
  ((at::matmul(x, w_ref.t()) + b_ref - y).pow(2).sum(1).sum() / 12.0).backward();

  // This rank's shard, loss scaled by the global batch size, then bucketed all-reduce (tiny
  // buckets: several collectives).
  Range shard = ShardRange(12, comm.size(), comm.rank());
  at::Tensor w = w0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
  at::Tensor xs = x.narrow(0, shard.begin, shard.size()),
             ys = y.narrow(0, shard.begin, shard.size());
  ((at::matmul(xs, w.t()) + b - ys).pow(2).sum(1).sum() / 12.0).backward();
  auto backend = parallel::MakeBackend("auto", comm, at::Device(at::kCPU));
  parallel::AllreduceGradients({w, frozen, b}, *backend, /*bucket_bytes=*/32);

  expect(backend->name() == "mpi", "auto picks mpi for CPU tensors");
  expect(at::allclose(w.grad(), w_ref.grad(), 1e-5, 1e-6), "weight gradient equals 1 process");
  expect(at::allclose(b.grad(), b_ref.grad(), 1e-5, 1e-6), "bias gradient equals 1 process");
  expect(!frozen.grad().defined(), "frozen parameter untouched");

  // Every rank now holds identical gradients (bitwise).
  at::Tensor mine = at::cat({w.grad().reshape({-1}), b.grad()}).to(at::kDouble).contiguous();
  at::Tensor maxv = mine.clone(), minv = -mine;
  comm.AllreduceMax(maxv);
  comm.AllreduceMax(minv);
  expect(at::equal(maxv, -minv), "gradients identical on all ranks");

  // NCCL for CPU tensors (what a CPU trainer with dist.backend: nccl would ask for) is refused at
  // set-up with a ConfigError that names the key, not at the first all-reduce.
  try {
    parallel::MakeBackend("nccl", comm, at::Device(at::kCPU));
    expect(false, "nccl for CPU tensors is refused");
  } catch (const ConfigError& e) {
    expect(std::string(e.what()).find("dist.backend is nccl") != std::string::npos,
           "the refusal names dist.backend");
  }

  int total = failures;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (comm.rank() == 0)
    std::printf("grad sync on %d rank(s): %s\n", comm.size(), total == 0 ? "OK" : "FAILED");
  return total == 0 ? 0 : 1;
}
