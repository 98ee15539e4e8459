// The results store: HDF5 files of results written serially or collectively over MPI-IO through
// one interface, never left looking complete after a crash.
//
// A store writes to `path + ".partial"`; Commit() closes it and renames it to `path`. A store that
// is destroyed without Commit() (an exception, a failed rank) removes its partial file, and a
// killed process leaves only the ".partial" name behind, so a file under the final name is always
// complete. The layout of cliphba's files is documented in results/README.md.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "io/results_reader.h"

namespace cliphba::parallel {
class Comm;  // parallel/comm.h (MPI stays out of this header)
}

namespace cliphba::io {

class H5File;     // io/h5.h
class H5Dataset;  // io/h5.h

class ResultsStore {
 public:
  // Creates a store written by this process alone (HDF5 sec2 driver). Replaces an existing
  // `path` only at Commit(). Throws IoError naming the path.
  static ResultsStore Create(const std::string& path);

  // Collective: every rank of `comm` must call with the same path. All ranks open one file with
  // the MPI-IO driver; every subsequent Write*/SetAttribute call is collective too (all ranks, same
  // arguments except the `local` rows of WriteRows).
  // REQUIRES: comm.is_mpi() (a serial communicator: use Create()).
  static ResultsStore CreateParallel(const std::string& path, const parallel::Comm& comm);

  ResultsStore(ResultsStore&&) noexcept;
  ResultsStore& operator=(ResultsStore&&) noexcept;
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;
  // Without Commit(): closes and deletes the partial file. Never throws.
  ~ResultsStore();

  // Writes a whole dataset at `dataset_path` (e.g. "/behavior/rdm/correlation"); intermediate
  // groups are created. dtype float32, float64, int64, int32 or int8; any rank <= 4 (0-D = scalar).
  // Parallel mode: collective; every rank passes the same tensor, rank 0's data are written.
  void WriteTensor(const std::string& dataset_path, const at::Tensor& tensor);

  // Collective in parallel mode: creates a dataset of `full_shape` and `dtype`, and each rank
  // writes its `local` block of rows [row_offset, row_offset + local.size(0)) along dim 0 with a
  // collective MPI-IO transfer. A rank may own zero rows (local.size(0) == 0). Serial mode: the one
  // process owns all rows (row_offset 0, local == the whole dataset). REQUIRES: the dataset does
  // not exist.
  void WriteRows(const std::string& dataset_path, const std::vector<int64_t>& full_shape,
                 at::ScalarType dtype, int64_t row_offset, const at::Tensor& local);

  // Collective in parallel mode: creates a dataset of `full_shape` (1-4 dims) and `dtype` (as
  // WriteRows) to be filled by WriteBlock calls. Contiguous layout; parts never written read as 0.
  // REQUIRES: the dataset does not exist.
  void CreateDataset(const std::string& dataset_path, const std::vector<int64_t>& full_shape,
                     at::ScalarType dtype);

  // Collective in parallel mode (every rank calls, in the same order for the same datasets): each
  // rank writes its block `local` (same number of dimensions as the dataset, any supported dtype,
  // converted to the dataset's) at `start`, in one collective MPI-IO transfer; a rank with nothing
  // to write passes an empty block. Blocks of different ranks must not overlap (not checked).
  // Throws DataError (on every rank) if any rank's block lies outside the dataset.
  void WriteBlock(const std::string& dataset_path, const std::vector<int64_t>& start,
                  const at::Tensor& local);

  // A 1-D variable-length UTF-8 string dataset (object names, labels).
  void WriteStrings(const std::string& dataset_path, const std::vector<std::string>& values);

  // Attributes on a group or dataset ("/" is the root); the object must exist (groups are created).
  void SetAttribute(const std::string& object_path, const std::string& name,
                    const std::string& value);
  void SetAttribute(const std::string& object_path, const std::string& name, double value);
  void SetAttribute(const std::string& object_path, const std::string& name, int64_t value);
  void SetAttribute(const std::string& object_path, const std::string& name,
                    const std::vector<double>& values);
  void SetAttribute(const std::string& object_path, const std::string& name,
                    const std::vector<std::string>& values);

  // Flushes, closes and atomically renames the partial file to its final name.
  // Collective in parallel mode (rank 0 renames after a barrier). Throws IoError (e.g. disk full).
  // Copies the object at `object_path` of the HDF5 file `source` (a group with everything under it,
  // or a dataset, with their attributes: H5Ocopy) to the same path here, creating missing groups.
  // Serial stores only. Throws IoError (unreadable source, missing object, existing target) and
  // Error(kInternal) on a parallel store.
  void CopyObject(const std::string& source, const std::string& object_path);

  void Commit();

  const std::string& path() const { return path_; }
  bool parallel() const;
  // For tests: whether this rank's last WriteRows transfer really was collective MPI-IO
  // (H5Pget_mpio_actual_io_mode != H5D_MPIO_NO_COLLECTIVE). Always false in serial mode.
  bool last_io_was_collective() const { return last_io_collective_; }

 private:
  ResultsStore(std::string path, const parallel::Comm& comm);
  // results_store_blocks.cc: t (contiguous, mem_type) into dset at start (+ row_offset on dim 0).
  // mem_type is an hid_t (int64_t in HDF5 1.10; hdf5.h stays out of this header).
  void TransferBlock(const H5Dataset& dset, const std::string& ds, int64_t mem_type,
                     const std::vector<int64_t>& start, int64_t row_offset, const at::Tensor& t);
  std::string path_;
  std::string partial_path_;
  std::unique_ptr<parallel::Comm> comm_;  // Comm::Serial() in serial mode
  int rank_ = 0;
  AtomicFile out_;  // the partial file: renamed at Commit(), removed without it (rank 0 owns it)
  std::unique_ptr<H5File> file_;
  bool committed_ = false;
  bool last_io_collective_ = false;
  // Parallel mode only, rank 0: variable-length string datasets created collectively but written
  // at Commit() (HDF5 1.10 cannot write VL data through MPI-IO); see results_store.cc.
  std::vector<std::pair<std::string, std::vector<std::string>>> deferred_strings_;
};

// The root attributes every cliphba results file carries (results/README.md): cliphba_version,
// schema_version, config_hash, config_yaml, command and created_utc (ISO 8601, UTC).
// Collective in parallel mode, like every SetAttribute.
void WriteProvenance(ResultsStore* store, const std::string& command,
                     const std::string& config_hash, const std::string& config_yaml,
                     int64_t schema_version = 1);

}  // namespace cliphba::io
