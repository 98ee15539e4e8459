// MPI environment and communicator handles (RAII), and the few collectives the pipeline needs on
// ATen tensors and strings. With io/'s MPI-IO (inside io/*.cc only), the only code that sees MPI.
#pragma once

#include <ATen/ATen.h>
#include <mpi.h>

#include <string>
#include <utility>
#include <vector>

namespace cliphba::parallel {

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

// A non-owning view of a communicator with rank and size cached, or the single-process
// communicator (Serial()) for runs without an MPI launcher: rank 0 of 1, collectives are
// identities and no MPI function is called. (Split communicators: OwnedComm below.)
class Comm {
 public:
  // REQUIRES: MPI is initialised.
  explicit Comm(MPI_Comm comm);
  static Comm Serial() { return Comm(); }
  // MPI_COMM_WORLD. REQUIRES: MPI is initialised.
  static Comm World() { return Comm(MPI_COMM_WORLD); }
  // False for Serial(): MPI is not used (and may not be initialised).
  bool is_mpi() const { return comm_ != MPI_COMM_NULL; }
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
  // Collective: the string of rank `root` on every rank.
  std::string Broadcast(const std::string& value, int root = 0) const;
  // Collective: rank 0's strings on every rank.
  std::vector<std::string> Broadcast(const std::vector<std::string>& values) const;
  // Collective: rank 0's values in place on every rank. `t` is a contiguous CPU float32, float64 or
  // int64 tensor of the same shape and dtype on every rank.
  void Broadcast(at::Tensor& t) const;
  void Barrier() const;
  // Collective: rows (R x ...) contiguous CPU float32/float64/int64; rank r owns the block of
  // counts[r] rows following the blocks of ranks < r (sum(counts) == R); afterwards every rank
  // holds all rows. In place.
  void AllgatherRows(at::Tensor& rows, const std::vector<int64_t>& counts) const;

 private:
  Comm() : comm_(MPI_COMM_NULL) {}
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

// Owner of a communicator made by MPI_Comm_split: frees it on destruction (RAII), so a split
// communicator cannot leak. Movable, not copyable. comm() is the non-owning view the trainers take.
class OwnedComm {
 public:
  // Collective over parent: ranks with the same color form one communicator, ordered by key.
  // For the serial parent (no MPI) the result is the serial communicator.
  static OwnedComm Split(const Comm& parent, int color, int key);
  OwnedComm(OwnedComm&& other) noexcept;
  OwnedComm& operator=(OwnedComm&& other) noexcept;
  OwnedComm(const OwnedComm&) = delete;
  OwnedComm& operator=(const OwnedComm&) = delete;
  ~OwnedComm();
  const Comm& comm() const { return comm_; }

 private:
  OwnedComm() : comm_(Comm::Serial()) {}
  MPI_Comm owned_ = MPI_COMM_NULL;  // freed by the destructor
  Comm comm_;
};

// The MPI library's version line (MPI_Get_library_version, callable before MPI_Init): its first
// line, without trailing separators or NUL bytes.
std::string MpiLibraryVersion();

// Under an MPI job of more than one rank: aborts every rank with `code` (MPI_Abort), so that a rank
// that failed alone does not leave the others waiting in a collective. No-op otherwise (serial, or
// MPI not initialised).
void AbortWorld(int code);

// Ends this rank's MPI part after an error, printing `line` (one line, no newline) to stderr:
// - every rank failed within grace_s (the usual case: all ranks read and check the same inputs,
//   or all stop together on SIGTERM): rank 0 prints its line, another rank only a line that
//   differs from rank 0's, and MPI is finalised; the caller then exits with its own code. The
//   user sees one line (under `mpirun -q`; plain mpirun adds its note on the non-zero exit,
//   srun one line per task);
// - some rank carries on (this rank failed alone): this rank prints its line and calls
//   AbortWorld(code), which ends every rank (with Open MPI's MPI_ABORT banner).
// The agreement runs on a communicator of its own (MpiEnvironment's), so it never matches a
// collective that another rank is in. Serial or MPI not initialised: prints the line.
void EndAfterError(const std::string& line, int code, double grace_s = 5.0);

// True if an MPI launcher (mpirun/mpiexec, srun with several tasks) started this process, i.e.
// MPI_Init is needed; a plain `cliphba ...` runs without MPI (saves ~0.4 s of start-up).
bool LaunchedByMpi();

// The error agreement, RunOnRoot and argument checks: parallel/collectives.h.

}  // namespace cliphba::parallel
