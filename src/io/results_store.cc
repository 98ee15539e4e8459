// The results store on top of io/h5.h.
//
// Parallel mode in brief: every HDF5 metadata operation (file create/flush/close, group, dataset
// and attribute creation, attribute writes) is made by every rank with identical arguments —
// arguments are checked by parallel::AgreeOnArguments and attribute/string values are broadcast
// from rank 0, so that a mistake throws on every rank instead of deadlocking or silently
// corrupting the file. Raw data go through collective MPI-IO transfers.
//
// Strings: variable-length UTF-8 everywhere (h5py reads them as str). Parallel HDF5 1.10 refuses to
// write VL data through the MPI-IO driver at all ("Parallel IO does not support writing VL or
// region reference datatypes yet", even independently from one rank), so in parallel mode
// WriteStrings creates the dataset collectively and defers the data: at Commit(), after the
// collective close, rank 0 reopens the partial file with the serial driver and writes them. The
// file layout is thus the same in serial and parallel mode. (VL string *attributes* are fine in
// parallel: they are metadata, written collectively.)
#include "io/results_store.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "core/error.h"
#include "core/fsync.h"
#include "core/version.h"
#include "io/h5.h"
#include "io/results_store_detail.h"
#include "parallel/collectives.h"
#include "parallel/comm.h"

namespace cliphba::io {

namespace detail {

using h5::Check;

bool DtypeOf(at::ScalarType t, Dtype* out) {
  switch (t) {
    case at::kFloat:
      *out = {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
      return true;
    case at::kDouble:
      *out = {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
      return true;
    case at::kLong:
      *out = {H5T_STD_I64LE, H5T_NATIVE_INT64};
      return true;
    case at::kInt:
      *out = {H5T_STD_I32LE, H5T_NATIVE_INT32};
      return true;
    case at::kChar:
      *out = {H5T_STD_I8LE, H5T_NATIVE_INT8};
      return true;
    default:
      return false;
  }
}

std::string ShapeString(at::IntArrayRef shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

void RequireOpen(const std::unique_ptr<H5File>& file, bool committed, const std::string& path,
                 const char* op) {
  if (committed || !file) {
    throw Error(ExitCode::kInternal, std::string("results store '") + path + "': " + op +
                                         " called after Commit() or on a moved-from store");
  }
}

H5Dataspace MakeSpace(const std::vector<hsize_t>& dims, bool scalar, const std::string& file) {
  if (scalar) return H5Dataspace(Check(H5Screate(H5S_SCALAR), "H5Screate", file));
  return H5Dataspace(Check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                           "H5Screate_simple", file));
}

// Collective in parallel mode. Creates `path` (missing groups included).
H5Dataset CreateDataset(const H5File& file, const std::string& path, hid_t file_type,
                        const H5Dataspace& space) {
  if (h5::PathExists(file.id(), path, file.path())) {
    throw IoError("cannot create dataset '" + path + "' in '" + file.path() +
                  "': an object of that name already exists");
  }
  H5PropertyList lcpl = h5::IntermediateGroupsLcpl(file.path());
  return H5Dataset(Check(H5Dcreate2(file.id(), path.c_str(), file_type, space.id(), lcpl.id(),
                                    H5P_DEFAULT, H5P_DEFAULT),
                         "H5Dcreate2", file.path(), path));
}

}  // namespace detail

namespace {

using detail::Dtype;
using detail::DtypeOf;
using detail::MakeSpace;
using detail::RequireOpen;
using detail::ShapeString;
using h5::Check;

// ---- broadcasts of attribute values (rank 0's are written) ----

template <typename T>
T BroadcastScalar(const parallel::Comm& comm, T value) {
  at::Tensor t = at::full({1}, value, std::is_same_v<T, double> ? at::kDouble : at::kLong);
  comm.Broadcast(t);
  return t.item<T>();
}

std::vector<double> BroadcastDoubles(const parallel::Comm& comm, const std::vector<double>& v) {
  at::Tensor n = at::full({1}, int64_t(v.size()), at::kLong);
  comm.Broadcast(n);
  at::Tensor t = at::zeros({n.item<int64_t>()}, at::kDouble);
  if (comm.rank() == 0 && !v.empty()) std::copy(v.begin(), v.end(), t.data_ptr<double>());
  comm.Broadcast(t);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

// ---- HDF5 helpers ----

void WriteVlStrings(const H5Dataset& ds, const std::vector<std::string>& values,
                    const std::string& file, const std::string& path) {
  if (values.empty()) return;
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  H5Datatype type = h5::Utf8StringType(file);
  Check(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "H5Dwrite", file,
        path);
}

std::string StringsError(const std::vector<std::string>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].find('\0') != std::string::npos) {
      return what + ": value " + std::to_string(i) +
             " contains a NUL character (HDF5 strings are NUL-terminated)";
    }
  }
  return "";
}

// Closes an uncommitted file and removes its partial file (rank 0 / serial). Never throws. The
// file is detached first, so that its closing flush cannot fail on a full disk (see h5.h).
void Abandon(std::unique_ptr<H5File>& file, AtomicFile& out) noexcept {
  if (!file) return;
  h5::DetachFromDisk(out.partial_path());
  file->reset();  // collective in parallel mode
  file.reset();
  out.Abandon();  // rank 0 removes the partial file
}

}  // namespace

// ================================ ResultsStore ================================

ResultsStore::ResultsStore(std::string path, const parallel::Comm& comm)
    : path_(std::move(path)),
      partial_path_(path_ + ".partial"),
      comm_(std::make_unique<parallel::Comm>(comm)),
      rank_(comm.rank()),
      out_(path_, "results file", comm.rank() == 0) {}

bool ResultsStore::parallel() const { return comm_ && comm_->is_mpi(); }

ResultsStore ResultsStore::Create(const std::string& path) {
  if (path.empty()) throw IoError("results store: empty output path");
  ResultsStore store(path, parallel::Comm::Serial());
  try {
    store.file_ = std::make_unique<H5File>(H5File::Create(store.partial_path_));
  } catch (const IoError& e) {
    // H5Fcreate may fail after creating the file (disk full while writing the superblock).
    store.out_.Abandon();
    throw IoError("cannot create results file '" + path + "': " + e.what());
  }
  return store;
}

ResultsStore ResultsStore::CreateParallel(const std::string& path, const parallel::Comm& comm) {
  if (!comm.is_mpi()) throw IoError("results store '" + path + "': a serial communicator given");
  ResultsStore store(path, comm);
  parallel::AgreeOnArguments(comm, "ResultsStore::CreateParallel('" + path + "')", path,
                             path.empty() ? "results store: empty output path" : "");
  try {
    H5PropertyList fapl = h5::CreatePlist(H5P_FILE_ACCESS, store.partial_path_);
    Check(H5Pset_fapl_mpio(fapl.id(), comm.get(), MPI_INFO_NULL), "H5Pset_fapl_mpio",
          store.partial_path_);
    // Collective (MPI_File_open); fails on every rank alike (e.g. missing directory).
    store.file_ = std::make_unique<H5File>(H5File::Create(store.partial_path_, fapl.id()));
  } catch (const IoError& e) {
    store.out_.Abandon();  // rank 0; see Create
    throw IoError("cannot create results file '" + path + "': " + e.what());
  }
  return store;
}

ResultsStore::ResultsStore(ResultsStore&& other) noexcept
    : path_(std::move(other.path_)),
      partial_path_(std::move(other.partial_path_)),
      comm_(std::move(other.comm_)),
      rank_(other.rank_),
      out_(std::move(other.out_)),
      file_(std::move(other.file_)),
      committed_(other.committed_),
      last_io_collective_(other.last_io_collective_),
      deferred_strings_(std::move(other.deferred_strings_)) {}

ResultsStore& ResultsStore::operator=(ResultsStore&& other) noexcept {
  if (this != &other) {
    if (!committed_) Abandon(file_, out_);
    path_ = std::move(other.path_);
    partial_path_ = std::move(other.partial_path_);
    comm_ = std::move(other.comm_);
    rank_ = other.rank_;
    out_ = std::move(other.out_);
    file_ = std::move(other.file_);
    committed_ = other.committed_;
    last_io_collective_ = other.last_io_collective_;
    deferred_strings_ = std::move(other.deferred_strings_);
  }
  return *this;
}

ResultsStore::~ResultsStore() {
  // In parallel mode closing is collective: every rank must destroy its store (a single failing
  // rank should MPI_Abort rather than unwind alone).
  if (!committed_) Abandon(file_, out_);
}

void ResultsStore::WriteTensor(const std::string& dataset_path, const at::Tensor& tensor) {
  RequireOpen(file_, committed_, path_, "WriteTensor");
  const std::string ds = h5::NormalizeObjectPath(dataset_path);
  const std::string what = "WriteTensor('" + ds + "') to '" + path_ + "'";
  at::Tensor t = tensor.defined() ? tensor.detach().to(at::kCPU).contiguous() : at::Tensor();
  Dtype dt{};
  std::string error;
  if (!t.defined()) {
    error = what + ": undefined tensor";
  } else if (!DtypeOf(t.scalar_type(), &dt)) {
    error = what + ": unsupported dtype " + std::string(c10::toString(t.scalar_type())) +
            " (expected float32, float64, int64, int32 or int8)";
  } else if (t.dim() > 4) {
    error = what + ": rank " + std::to_string(t.dim()) + " > 4";
  }
  std::string signature = ds;
  if (error.empty()) {
    signature += std::string("|") + c10::toString(t.scalar_type()) + ShapeString(t.sizes());
  }
  parallel::AgreeOnArguments(*comm_, what, signature, error);

  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  H5Dataspace space = MakeSpace(dims, t.dim() == 0, partial_path_);
  H5Dataset dset = detail::CreateDataset(*file_, ds, dt.file_type, space);  // collective
  if (t.numel() == 0) return;  // identical on every rank: nothing to transfer

  H5PropertyList dxpl = h5::CreatePlist(H5P_DATASET_XFER, partial_path_);
  hid_t mem_space = H5S_ALL, file_space = H5S_ALL;
  H5Dataspace mem, filesp;
  if (parallel()) {
    // Collective transfer; rank 0 writes everything, the others take part with empty selections.
    Check(H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", partial_path_);
    mem = MakeSpace(dims, t.dim() == 0, partial_path_);
    filesp = H5Dataspace(Check(H5Dget_space(dset.id()), "H5Dget_space", partial_path_, ds));
    if (rank_ != 0) {
      Check(H5Sselect_none(mem.id()), "H5Sselect_none", partial_path_, ds);
      Check(H5Sselect_none(filesp.id()), "H5Sselect_none", partial_path_, ds);
    }
    mem_space = mem.id();
    file_space = filesp.id();
  }
  // A collective write can fail on some ranks only (a full disk): every rank throws alike (when
  // every rank gets back from H5Dwrite; HDF5 1.10 may leave the others in MPI-IO's set_view).
  parallel::RunOnAll(*comm_, [&] {
    Check(H5Dwrite(dset.id(), dt.mem_type, mem_space, file_space, dxpl.id(), t.data_ptr()),
          "H5Dwrite", partial_path_, ds);
  });
}

void ResultsStore::CopyObject(const std::string& source, const std::string& object_path) {
  RequireOpen(file_, committed_, path_, "CopyObject");
  if (parallel())
    throw Error(ExitCode::kInternal, "results store '" + path_ + "': CopyObject is serial only");
  const std::string obj = h5::NormalizeObjectPath(object_path);
  H5File in = H5File::Open(source, H5F_ACC_RDONLY);
  if (!h5::PathExists(in.id(), obj, source))
    throw IoError(source + ": no object '" + obj + "' to copy");
  if (h5::PathExists(file_->id(), obj, partial_path_))
    throw IoError(path_ + ": '" + obj + "' exists; CopyObject does not replace it");
  H5PropertyList lcpl = h5::IntermediateGroupsLcpl(partial_path_);
  Check(H5Ocopy(in.id(), obj.c_str(), file_->id(), obj.c_str(), H5P_DEFAULT, lcpl.id()),
        "H5Ocopy", path_, obj);
}

void ResultsStore::WriteStrings(const std::string& dataset_path,
                                const std::vector<std::string>& values) {
  RequireOpen(file_, committed_, path_, "WriteStrings");
  const std::string ds = h5::NormalizeObjectPath(dataset_path);
  const std::string what = "WriteStrings('" + ds + "') to '" + path_ + "'";
  std::vector<std::string> v = comm_->Broadcast(values);  // rank 0's values are written
  parallel::AgreeOnArguments(*comm_, what, ds, StringsError(v, what));

  H5Datatype type = h5::Utf8StringType(partial_path_);
  H5Dataspace space = MakeSpace({static_cast<hsize_t>(v.size())}, false, partial_path_);
  H5Dataset dset = detail::CreateDataset(*file_, ds, type.id(), space);  // collective
  if (!parallel()) {
    WriteVlStrings(dset, v, partial_path_, ds);
  } else if (rank_ == 0 && !v.empty()) {
    deferred_strings_.emplace_back(ds, std::move(v));  // written at Commit(), see the top
  }
}

namespace {

// Collective in parallel mode. `kind` distinguishes the overloads in the argument check.
void WriteAttribute(const H5File& file, const parallel::Comm& comm, const std::string& object_path,
                    const std::string& name, const char* kind, hid_t file_type, hid_t mem_type,
                    const std::vector<hsize_t>* dims, const void* buf) {
  const std::string obj = h5::NormalizeObjectPath(object_path);
  const std::string what = "SetAttribute('" + obj + "', '" + name + "') on '" + file.path() + "'";
  parallel::AgreeOnArguments(comm, what, obj + "|" + name + "|" + kind,
                             name.empty() ? what + ": empty name" : "");
  const std::string& f = file.path();
  if (!h5::PathExists(file.id(), obj, f)) {  // create the group (and its parents)
    H5PropertyList lcpl = h5::IntermediateGroupsLcpl(f);
    H5Group g(Check(H5Gcreate2(file.id(), obj.c_str(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
                    "H5Gcreate2", f, obj));
  }
  H5Object o = h5::OpenObject(file.id(), obj, f);
  const std::string object = obj + "@" + name;
  if (Check(H5Aexists(o.id(), name.c_str()), "H5Aexists", f, object) > 0) {
    Check(H5Adelete(o.id(), name.c_str()), "H5Adelete", f, object);
  }
  H5Dataspace space = dims ? MakeSpace(*dims, false, f) : MakeSpace({}, true, f);
  H5Attribute attr(
      Check(H5Acreate2(o.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
            "H5Acreate2", f, object));
  static const char kNothing = 0;
  Check(H5Awrite(attr.id(), mem_type, buf ? buf : &kNothing), "H5Awrite", f, object);
}

}  // namespace

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                const std::string& value) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  const std::string v = comm_->Broadcast(value);
  if (v.find('\0') != std::string::npos) {
    throw DataError("SetAttribute('" + object_path + "', '" + name + "') on '" + path_ +
                    "': the value contains a NUL character");
  }
  H5Datatype type = h5::Utf8StringType(partial_path_);
  const char* ptr = v.c_str();
  WriteAttribute(*file_, *comm_, object_path, name, "string", type.id(), type.id(), nullptr, &ptr);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                double value) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  value = BroadcastScalar(*comm_, value);
  WriteAttribute(*file_, *comm_, object_path, name, "double", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                 nullptr, &value);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                int64_t value) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  value = BroadcastScalar(*comm_, value);
  WriteAttribute(*file_, *comm_, object_path, name, "int64", H5T_STD_I64LE, H5T_NATIVE_INT64,
                 nullptr, &value);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                const std::vector<double>& values) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  std::vector<double> v = BroadcastDoubles(*comm_, values);
  std::vector<hsize_t> dims = {static_cast<hsize_t>(v.size())};
  WriteAttribute(*file_, *comm_, object_path, name, "double[]", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                 &dims, v.empty() ? nullptr : v.data());
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                const std::vector<std::string>& values) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  const std::vector<std::string> v = comm_->Broadcast(values);
  std::string error =
      StringsError(v, "SetAttribute('" + object_path + "', '" + name + "') on '" + path_ + "'");
  if (!error.empty()) throw DataError(error);
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  H5Datatype type = h5::Utf8StringType(partial_path_);
  std::vector<hsize_t> dims = {static_cast<hsize_t>(v.size())};
  WriteAttribute(*file_, *comm_, object_path, name, "string[]", type.id(), type.id(), &dims,
                 ptrs.empty() ? nullptr : ptrs.data());
}

void ResultsStore::Commit() {
  RequireOpen(file_, committed_, path_, "Commit");
  // 1. Reserve the disk space the closing flush writes into (rank 0), then close (collective). A
  // close that failed for want of space would leave HDF5 crashing at exit (h5.h); without the
  // space, every rank closes the file into memory instead. No H5Fflush: its MPI_File_sync can fail
  // on one rank alone and leave the others waiting (Open MPI's OMPIO, after a full disk). The close
  // writes everything; then every rank fsyncs what it wrote (a rank of another node may hold data
  // of its own), and AtomicFile::Commit fsyncs again before the rename. Errors are gathered so
  // that every rank throws alike.
  std::string error;
  uint64_t reserved = 0;
  const uint64_t extent = h5::CloseExtent(file_->id(), partial_path_);  // every rank alike
  if (rank_ == 0) {
    try {
      reserved = h5::ReserveDiskSpace(partial_path_, extent);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (comm_->AnyTrue(!error.empty())) {
    if (error.empty()) error = "reserving its space failed on rank 0";
    h5::DetachFromDisk(partial_path_);
    file_->reset();  // collective in parallel mode
  } else {
    try {
      h5::SilenceErrorStack();
      if (file_->Close() < 0) h5::ThrowError("H5Fclose", partial_path_, "");
      if (parallel() && rank_ != 0) error = SyncByName(partial_path_);
    } catch (const IoError& e) {
      error = e.what();
    }
  }
  file_.reset();
  // Also the barrier before the rename.
  if (comm_->AnyTrue(!error.empty()) && error.empty()) error = "closing it failed on another rank";
  if (rank_ == 0) h5::ReleaseReservation(partial_path_, reserved);
  // 2. Rank 0: deferred string data (parallel mode), fsync, rename.
  if (error.empty() && rank_ == 0) {
    try {
      if (!deferred_strings_.empty()) {
        H5File serial = H5File::Open(partial_path_, H5F_ACC_RDWR);
        {
          h5::DetachOnUnwind guard(partial_path_);  // a failed write: close into memory
          for (const auto& [ds, values] : deferred_strings_) {
            H5Dataset dset(Check(H5Dopen2(serial.id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2",
                                 partial_path_, ds));
            WriteVlStrings(dset, values, partial_path_, ds);
          }
        }
        h5::CloseWritten(serial, partial_path_);
      }
    } catch (const IoError& e) {
      error = e.what();
    }
    if (error.empty()) {
      try {
        out_.Commit();  // fsync, rename
      } catch (const IoError& e) {
        error = e.what();
      }
    }
  }
  deferred_strings_.clear();
  error = comm_->Broadcast(error);  // every rank throws, or none
  if (!error.empty()) {
    out_.Abandon();
    committed_ = true;  // nothing left to clean up
    throw IoError("cannot commit results file '" + path_ + "': " + error);
  }
  committed_ = true;
}

void WriteProvenance(ResultsStore* store, const std::string& command,
                     const std::string& config_hash, const std::string& config_yaml,
                     int64_t schema_version) {
  std::time_t now = std::time(nullptr);
  char utc[32];
  std::strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  store->SetAttribute("/", "cliphba_version", std::string(Version()));
  store->SetAttribute("/", "schema_version", schema_version);
  store->SetAttribute("/", "config_hash", config_hash);
  store->SetAttribute("/", "config_yaml", config_yaml);
  store->SetAttribute("/", "command", command);
  store->SetAttribute("/", "created_utc", std::string(utc));
}

}  // namespace cliphba::io
