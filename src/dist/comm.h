// MPI environment and communicator handles (RAII), and the few collectives the pipeline needs on
// ATen tensors. The only module besides io/ that sees MPI.
#pragma once

#include <ATen/ATen.h>
#include <mpi.h>

#include <string>

namespace cliphba::dist {

// Initialises MPI (MPI_THREAD_FUNNELED) on construction and finalises it on destruction, unless
// MPI was already initialised by someone else. One per process, in main(). Not copyable.
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

 private:
  bool owns_ = false;
};

// A non-owning view of a communicator with rank and size cached. (Owning split communicators
// arrive with the cohort pipeline.)
class Comm {
 public:
  explicit Comm(MPI_Comm comm = MPI_COMM_WORLD);
  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // Collective: sums a contiguous CPU int64 or float64 tensor elementwise across ranks, in place.
  void AllreduceSum(at::Tensor& t) const;
  // Collective: elementwise maximum of a contiguous CPU float64 tensor, in place.
  void AllreduceMax(at::Tensor& t) const;
  // Collective: logical OR of a flag (true if any rank passes true).
  bool AnyTrue(bool flag) const;
  // Collective: rank 0's string on every rank.
  std::string Broadcast(const std::string& value) const;
  void Barrier() const;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

// Collective, for errors after which ranks may disagree: if any rank failed, every rank learns it.
// Returns rank-0-first error text of the failing rank with the lowest rank, or "" if none failed.
std::string AgreeOnError(const Comm& comm, const std::string& local_error);

}  // namespace cliphba::dist
