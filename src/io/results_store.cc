// The results store on top of io/h5.h.
//
// Parallel mode in brief: every HDF5 metadata operation (file create/flush/close, group, dataset
// and attribute creation, attribute writes) is made by every rank with identical arguments —
// arguments are checked with one MPI_Allreduce per call and attribute/string values are broadcast
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
#include "core/version.h"
#include "io/h5.h"

namespace cliphba::io {

namespace {

using h5::Check;

// ---- dtypes ----

struct Dtype {
  hid_t file_type;  // little-endian on disk, whatever the host
  hid_t mem_type;   // native
};

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

// "/a/b" for "a/b" and "/a/b"; "/" stays "/".
std::string Normalize(const std::string& path) {
  if (path.empty() || path[0] != '/') return "/" + path;
  return path;
}

// ---- MPI helpers (comm == MPI_COMM_NULL means serial; then they are trivial) ----

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Collective in parallel mode. Throws DataError on every rank if any rank has a non-empty
// `local_error` or if the ranks disagree on `signature` (the arguments that must be identical).
void Agree(MPI_Comm comm, const std::string& what, const std::string& signature,
           const std::string& local_error) {
  if (comm == MPI_COMM_NULL) {
    if (!local_error.empty()) throw DataError(local_error);
    return;
  }
  uint64_t h = Fnv1a(signature);
  uint64_t in[3] = {h, ~h, local_error.empty() ? 0u : 1u}, out[3];
  MPI_Allreduce(in, out, 3, MPI_UINT64_T, MPI_MAX, comm);
  if (!local_error.empty()) throw DataError(local_error);
  if (out[2] != 0) throw DataError(what + ": invalid arguments on another rank (see its error)");
  if (out[0] != h || out[1] != ~h) {
    throw DataError(what + ": the ranks passed different arguments to a collective call");
  }
}

void BroadcastString(MPI_Comm comm, std::string* s) {
  if (comm == MPI_COMM_NULL) return;
  uint64_t n = s->size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm);
  s->resize(n);
  if (n > 0) MPI_Bcast(s->data(), static_cast<int>(n), MPI_CHAR, 0, comm);
}

void BroadcastStrings(MPI_Comm comm, std::vector<std::string>* v) {
  if (comm == MPI_COMM_NULL) return;
  uint64_t n = v->size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm);
  v->resize(n);
  for (auto& s : *v) BroadcastString(comm, &s);
}

void BroadcastDoubles(MPI_Comm comm, std::vector<double>* v) {
  if (comm == MPI_COMM_NULL) return;
  uint64_t n = v->size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm);
  v->resize(n);
  if (n > 0) MPI_Bcast(v->data(), static_cast<int>(n), MPI_DOUBLE, 0, comm);
}

// ---- HDF5 helpers ----

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

// Closes an uncommitted file and removes its partial file (rank 0 / serial). Never throws.
void Abandon(std::unique_ptr<H5File>& file, int rank, const std::string& partial_path) noexcept {
  if (!file) return;
  file->reset();  // collective in parallel mode
  file.reset();
  if (rank == 0) std::remove(partial_path.c_str());
}

// Makes the file's data durable before the rename makes it visible. Returns "" or an error.
std::string Fsync(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "cannot open '" + path + "' to sync it: " + std::strerror(errno);
  std::string err;
  if (::fsync(fd) != 0) err = "cannot sync '" + path + "' to disk: " + std::strerror(errno);
  ::close(fd);
  return err;
}

}  // namespace

// ================================ ResultsStore ================================

ResultsStore::ResultsStore(std::string path, MPI_Comm comm)
    : path_(std::move(path)), partial_path_(path_ + ".partial"), comm_(comm) {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_rank(comm_, &rank_);
}

ResultsStore ResultsStore::Create(const std::string& path) {
  if (path.empty()) throw IoError("results store: empty output path");
  ResultsStore store(path, MPI_COMM_NULL);
  try {
    store.file_ = std::make_unique<H5File>(H5File::Create(store.partial_path_));
  } catch (const IoError& e) {
    // H5Fcreate may fail after creating the file (disk full while writing the superblock).
    std::remove(store.partial_path_.c_str());
    throw IoError("cannot create results file '" + path + "': " + e.what());
  }
  return store;
}

ResultsStore ResultsStore::CreateParallel(const std::string& path, MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) throw IoError("results store '" + path + "': MPI_COMM_NULL given");
  ResultsStore store(path, comm);
  Agree(comm, "ResultsStore::CreateParallel('" + path + "')", path,
        path.empty() ? "results store: empty output path" : "");
  try {
    H5PropertyList fapl = h5::CreatePlist(H5P_FILE_ACCESS, store.partial_path_);
    Check(H5Pset_fapl_mpio(fapl.id(), comm, MPI_INFO_NULL), "H5Pset_fapl_mpio",
          store.partial_path_);
    // Collective (MPI_File_open); fails on every rank alike (e.g. missing directory).
    store.file_ = std::make_unique<H5File>(H5File::Create(store.partial_path_, fapl.id()));
  } catch (const IoError& e) {
    if (store.rank_ == 0) std::remove(store.partial_path_.c_str());  // see Create
    throw IoError("cannot create results file '" + path + "': " + e.what());
  }
  return store;
}

ResultsStore::ResultsStore(ResultsStore&& other) noexcept
    : path_(std::move(other.path_)),
      partial_path_(std::move(other.partial_path_)),
      comm_(other.comm_),
      rank_(other.rank_),
      file_(std::move(other.file_)),
      committed_(other.committed_),
      last_io_collective_(other.last_io_collective_),
      deferred_strings_(std::move(other.deferred_strings_)) {}

ResultsStore& ResultsStore::operator=(ResultsStore&& other) noexcept {
  if (this != &other) {
    if (!committed_) Abandon(file_, rank_, partial_path_);
    path_ = std::move(other.path_);
    partial_path_ = std::move(other.partial_path_);
    comm_ = other.comm_;
    rank_ = other.rank_;
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
  if (!committed_) Abandon(file_, rank_, partial_path_);
}

namespace {
void RequireOpen(const std::unique_ptr<H5File>& file, bool committed, const std::string& path,
                 const char* op) {
  if (committed || !file) {
    throw Error(ExitCode::kInternal, std::string("results store '") + path + "': " + op +
                                         " called after Commit() or on a moved-from store");
  }
}
}  // namespace

void ResultsStore::WriteTensor(const std::string& dataset_path, const at::Tensor& tensor) {
  RequireOpen(file_, committed_, path_, "WriteTensor");
  const std::string ds = Normalize(dataset_path);
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
  Agree(comm_, what, signature, error);

  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  H5Dataspace space = MakeSpace(dims, t.dim() == 0, partial_path_);
  H5Dataset dset = CreateDataset(*file_, ds, dt.file_type, space);  // collective
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
  Check(H5Dwrite(dset.id(), dt.mem_type, mem_space, file_space, dxpl.id(), t.data_ptr()),
        "H5Dwrite", partial_path_, ds);
}

void ResultsStore::WriteRows(const std::string& dataset_path,
                             const std::vector<int64_t>& full_shape, at::ScalarType dtype,
                             int64_t row_offset, const at::Tensor& local) {
  RequireOpen(file_, committed_, path_, "WriteRows");
  const std::string ds = Normalize(dataset_path);
  const std::string what = "WriteRows('" + ds + "') to '" + path_ + "'";
  Dtype dt{};
  std::string error;
  at::Tensor t;
  const int64_t ndim = static_cast<int64_t>(full_shape.size());
  if (!DtypeOf(dtype, &dt)) {
    error = what + ": unsupported dtype " + std::string(c10::toString(dtype)) +
            " (expected float32, float64, int64, int32 or int8)";
  } else if (ndim < 1 || ndim > 4) {
    error = what + ": full_shape must have 1 to 4 dimensions, got " + std::to_string(ndim);
  } else if (std::any_of(full_shape.begin(), full_shape.end(), [](int64_t d) { return d < 0; })) {
    error = what + ": negative dimension in full_shape " + ShapeString(full_shape);
  } else if (!local.defined() || local.dim() != ndim) {
    error = what + ": local block must have " + std::to_string(ndim) + " dimensions, got " +
            (local.defined() ? std::to_string(local.dim()) : std::string("an undefined tensor"));
  } else {
    for (int64_t i = 1; i < ndim; ++i) {
      if (local.size(i) != full_shape[i]) {
        error = what + ": local block of shape " + ShapeString(local.sizes()) +
                " does not match full_shape " + ShapeString(full_shape) + " beyond dim 0";
      }
    }
    if (error.empty() && (row_offset < 0 || row_offset + local.size(0) > full_shape[0])) {
      error = what + ": rows [" + std::to_string(row_offset) + ", " +
              std::to_string(row_offset + local.size(0)) + ") outside [0, " +
              std::to_string(full_shape[0]) + ")";
    }
  }
  std::string signature = ds + "|" + c10::toString(dtype) + ShapeString(full_shape);
  Agree(comm_, what, signature, error);

  // The rows of all ranks must tile [0, n) exactly (no gap, no overlap): same check on all ranks.
  const int64_t rows = local.size(0);
  std::vector<int64_t> blocks = {row_offset, rows};
  if (parallel()) {
    int size = 1;
    MPI_Comm_size(comm_, &size);
    blocks.resize(2 * static_cast<size_t>(size));
    int64_t mine[2] = {row_offset, rows};
    MPI_Allgather(mine, 2, MPI_INT64_T, blocks.data(), 2, MPI_INT64_T, comm_);
  }
  std::vector<std::pair<int64_t, int64_t>> sorted;
  for (size_t i = 0; i < blocks.size(); i += 2) {
    if (blocks[i + 1] > 0) sorted.emplace_back(blocks[i], blocks[i + 1]);
  }
  std::sort(sorted.begin(), sorted.end());
  int64_t covered = 0;
  for (const auto& [begin, n] : sorted) {
    if (begin != covered) break;
    covered += n;
  }
  if (covered != full_shape[0]) {
    throw DataError(what + ": the ranks' row blocks do not cover rows [0, " +
                    std::to_string(full_shape[0]) + ") exactly once");
  }

  t = local.detach().to(at::kCPU).to(dtype).contiguous();
  std::vector<hsize_t> dims(full_shape.begin(), full_shape.end());
  H5Dataspace space = MakeSpace(dims, false, partial_path_);
  H5Dataset dset = CreateDataset(*file_, ds, dt.file_type, space);  // collective

  if (!parallel()) {
    last_io_collective_ = false;
    if (t.numel() == 0) return;
    Check(H5Dwrite(dset.id(), dt.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), "H5Dwrite",
          partial_path_, ds);
    return;
  }

  // Parallel: one collective transfer; a rank without rows selects nothing but still takes part.
  H5PropertyList dxpl = h5::CreatePlist(H5P_DATASET_XFER, partial_path_);
  Check(H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", partial_path_);
  std::vector<hsize_t> local_dims(t.sizes().begin(), t.sizes().end());
  H5Dataspace mem = MakeSpace(local_dims, false, partial_path_);
  H5Dataspace filesp(Check(H5Dget_space(dset.id()), "H5Dget_space", partial_path_, ds));
  if (t.numel() == 0) {
    Check(H5Sselect_none(mem.id()), "H5Sselect_none", partial_path_, ds);
    Check(H5Sselect_none(filesp.id()), "H5Sselect_none", partial_path_, ds);
  } else {
    std::vector<hsize_t> start(dims.size(), 0);
    start[0] = static_cast<hsize_t>(row_offset);
    Check(H5Sselect_hyperslab(filesp.id(), H5S_SELECT_SET, start.data(), nullptr, local_dims.data(),
                              nullptr),
          "H5Sselect_hyperslab", partial_path_, ds);
  }
  static const char kNothing = 0;  // HDF5 wants a non-null buffer even for empty selections
  const void* buf = t.numel() > 0 ? t.data_ptr() : &kNothing;
  Check(H5Dwrite(dset.id(), dt.mem_type, mem.id(), filesp.id(), dxpl.id(), buf), "H5Dwrite",
        partial_path_, ds);
  H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
  Check(H5Pget_mpio_actual_io_mode(dxpl.id(), &mode), "H5Pget_mpio_actual_io_mode", partial_path_);
  last_io_collective_ = mode != H5D_MPIO_NO_COLLECTIVE;
}

void ResultsStore::WriteStrings(const std::string& dataset_path,
                                const std::vector<std::string>& values) {
  RequireOpen(file_, committed_, path_, "WriteStrings");
  const std::string ds = Normalize(dataset_path);
  const std::string what = "WriteStrings('" + ds + "') to '" + path_ + "'";
  std::vector<std::string> v = values;
  BroadcastStrings(comm_, &v);  // rank 0's values are written
  Agree(comm_, what, ds, StringsError(v, what));

  H5Datatype type = h5::Utf8StringType(partial_path_);
  H5Dataspace space = MakeSpace({static_cast<hsize_t>(v.size())}, false, partial_path_);
  H5Dataset dset = CreateDataset(*file_, ds, type.id(), space);  // collective
  if (!parallel()) {
    WriteVlStrings(dset, v, partial_path_, ds);
  } else if (rank_ == 0 && !v.empty()) {
    deferred_strings_.emplace_back(ds, std::move(v));  // written at Commit(), see the top
  }
}

namespace {

// Collective in parallel mode. `kind` distinguishes the overloads in the argument check.
void WriteAttribute(const H5File& file, MPI_Comm comm, const std::string& object_path,
                    const std::string& name, const char* kind, hid_t file_type, hid_t mem_type,
                    const std::vector<hsize_t>* dims, const void* buf) {
  const std::string obj = Normalize(object_path);
  const std::string what = "SetAttribute('" + obj + "', '" + name + "') on '" + file.path() + "'";
  Agree(comm, what, obj + "|" + name + "|" + kind, name.empty() ? what + ": empty name" : "");
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
  std::string v = value;
  BroadcastString(comm_, &v);
  if (v.find('\0') != std::string::npos) {
    throw DataError("SetAttribute('" + object_path + "', '" + name + "') on '" + path_ +
                    "': the value contains a NUL character");
  }
  H5Datatype type = h5::Utf8StringType(partial_path_);
  const char* ptr = v.c_str();
  WriteAttribute(*file_, comm_, object_path, name, "string", type.id(), type.id(), nullptr, &ptr);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                double value) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  if (parallel()) MPI_Bcast(&value, 1, MPI_DOUBLE, 0, comm_);
  WriteAttribute(*file_, comm_, object_path, name, "double", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                 nullptr, &value);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                int64_t value) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  if (parallel()) MPI_Bcast(&value, 1, MPI_INT64_T, 0, comm_);
  WriteAttribute(*file_, comm_, object_path, name, "int64", H5T_STD_I64LE, H5T_NATIVE_INT64,
                 nullptr, &value);
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                const std::vector<double>& values) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  std::vector<double> v = values;
  BroadcastDoubles(comm_, &v);
  std::vector<hsize_t> dims = {static_cast<hsize_t>(v.size())};
  WriteAttribute(*file_, comm_, object_path, name, "double[]", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                 &dims, v.empty() ? nullptr : v.data());
}

void ResultsStore::SetAttribute(const std::string& object_path, const std::string& name,
                                const std::vector<std::string>& values) {
  RequireOpen(file_, committed_, path_, "SetAttribute");
  std::vector<std::string> v = values;
  BroadcastStrings(comm_, &v);
  std::string error =
      StringsError(v, "SetAttribute('" + object_path + "', '" + name + "') on '" + path_ + "'");
  if (!error.empty()) throw DataError(error);
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  H5Datatype type = h5::Utf8StringType(partial_path_);
  std::vector<hsize_t> dims = {static_cast<hsize_t>(v.size())};
  WriteAttribute(*file_, comm_, object_path, name, "string[]", type.id(), type.id(), &dims,
                 ptrs.empty() ? nullptr : ptrs.data());
}

void ResultsStore::Commit() {
  RequireOpen(file_, committed_, path_, "Commit");
  // 1. Flush and close (collective). Errors are gathered so that every rank throws alike.
  std::string error;
  try {
    Check(H5Fflush(file_->id(), H5F_SCOPE_GLOBAL), "H5Fflush", partial_path_);
    h5::SilenceErrorStack();
    if (file_->Close() < 0) h5::ThrowError("H5Fclose", partial_path_, "");
  } catch (const IoError& e) {
    error = e.what();
  }
  file_.reset();
  if (parallel()) {
    int failed = error.empty() ? 0 : 1, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, comm_);  // also the barrier before rename
    if (any && error.empty()) error = "closing it failed on another rank";
  }
  // 2. Rank 0: deferred string data (parallel mode), fsync, rename.
  if (error.empty() && rank_ == 0) {
    try {
      if (!deferred_strings_.empty()) {
        H5File serial = H5File::Open(partial_path_, H5F_ACC_RDWR);
        for (const auto& [ds, values] : deferred_strings_) {
          H5Dataset dset(
              Check(H5Dopen2(serial.id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", partial_path_, ds));
          WriteVlStrings(dset, values, partial_path_, ds);
        }
        h5::SilenceErrorStack();
        if (serial.Close() < 0) h5::ThrowError("H5Fclose", partial_path_, "");
      }
    } catch (const IoError& e) {
      error = e.what();
    }
    if (error.empty()) error = Fsync(partial_path_);
    if (error.empty() && std::rename(partial_path_.c_str(), path_.c_str()) != 0) {
      error = "cannot rename '" + partial_path_ + "' to '" + path_ + "': " + std::strerror(errno);
    }
  }
  deferred_strings_.clear();
  if (parallel()) BroadcastString(comm_, &error);  // every rank throws, or none
  if (!error.empty()) {
    if (rank_ == 0) std::remove(partial_path_.c_str());
    committed_ = true;  // nothing left to clean up
    throw IoError("cannot commit results file '" + path_ + "': " + error);
  }
  committed_ = true;
}

// ================================ ResultsReader ================================

namespace {

[[noreturn]] void Missing(const std::string& file, const std::string& what,
                          const std::string& path) {
  throw DataError("results file '" + file + "' has no " + what + " '" + path + "'");
}

// Reads a scalar or 1-D string dataset/attribute, VL or fixed-length. `read(mem_type, buf)`.
template <typename ReadFn>
std::vector<std::string> ReadStringData(hid_t file_type, hid_t space, const std::string& file,
                                        const std::string& object, ReadFn read) {
  if (H5Tget_class(file_type) != H5T_STRING) {
    throw DataError("'" + object + "' in '" + file + "' is not a string dataset/attribute");
  }
  int ndims = Check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", file, object);
  if (ndims > 1) {
    throw DataError("'" + object + "' in '" + file + "' has " + std::to_string(ndims) +
                    " dimensions, expected a 1-D list of strings");
  }
  hssize_t n =
      Check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints", file, object);
  std::vector<std::string> out;
  if (n == 0) return out;
  htri_t is_vl = Check(H5Tis_variable_str(file_type), "H5Tis_variable_str", file, object);
  if (is_vl) {
    H5Datatype mem = h5::Utf8StringType(file);
    Check(H5Tset_cset(mem.id(), H5Tget_cset(file_type)), "H5Tset_cset", file, object);
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    Check(read(mem.id(), ptrs.data()), "read", file, object);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.id(), space, H5P_DEFAULT, ptrs.data());
  } else {
    H5Datatype mem(Check(H5Tcopy(file_type), "H5Tcopy", file, object));
    size_t size = H5Tget_size(file_type);
    std::vector<char> buf(size * static_cast<size_t>(n));
    Check(read(mem.id(), buf.data()), "read", file, object);
    for (hssize_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * size, size);
      size_t end = s.find('\0');
      if (end != std::string::npos) s.resize(end);
      if (H5Tget_strpad(file_type) == H5T_STR_SPACEPAD) {
        s.erase(s.find_last_not_of(' ') + 1);
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace

ResultsReader::ResultsReader(const std::string& path) : path_(path) {
  try {
    file_ = std::make_unique<H5File>(H5File::Open(path, H5F_ACC_RDONLY));
  } catch (const IoError& e) {
    throw IoError("cannot open results file '" + path + "': " + e.what());
  }
}

ResultsReader::~ResultsReader() = default;

bool ResultsReader::Exists(const std::string& object_path) const {
  return h5::PathExists(file_->id(), Normalize(object_path), path_);
}

at::Tensor ResultsReader::ReadTensor(const std::string& dataset_path) const {
  return ReadRows(dataset_path, 0, -1);
}

std::vector<int64_t> ResultsReader::Shape(const std::string& dataset_path) const {
  const std::string ds = Normalize(dataset_path);
  if (!Exists(ds)) Missing(path_, "dataset", ds);
  H5Dataset dset(Check(H5Dopen2(file_->id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", path_, ds));
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  int ndims =
      Check(H5Sget_simple_extent_ndims(space.id()), "H5Sget_simple_extent_ndims", path_, ds);
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  if (ndims > 0)
    Check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "H5Sget_simple_extent_dims",
          path_, ds);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

at::Tensor ResultsReader::ReadRows(const std::string& dataset_path, int64_t first,
                                   int64_t count) const {
  const std::string ds = Normalize(dataset_path);
  if (!Exists(ds)) Missing(path_, "dataset", ds);
  H5O_info_t info;
  Check(H5Oget_info_by_name2(file_->id(), ds.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT),
        "H5Oget_info_by_name", path_, ds);
  if (info.type != H5O_TYPE_DATASET) {
    throw DataError("'" + ds + "' in results file '" + path_ + "' is a group, expected a dataset");
  }
  H5Dataset dset(Check(H5Dopen2(file_->id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", path_, ds));
  H5Datatype type(Check(H5Dget_type(dset.id()), "H5Dget_type", path_, ds));
  H5T_class_t cls = H5Tget_class(type.id());
  size_t size = H5Tget_size(type.id());
  at::ScalarType st;
  hid_t mem_type;
  if (cls == H5T_FLOAT && size == 4) {
    st = at::kFloat, mem_type = H5T_NATIVE_FLOAT;
  } else if (cls == H5T_FLOAT && size == 8) {
    st = at::kDouble, mem_type = H5T_NATIVE_DOUBLE;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 8) {
    st = at::kLong, mem_type = H5T_NATIVE_INT64;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 4) {
    st = at::kInt, mem_type = H5T_NATIVE_INT32;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 1) {
    st = at::kChar, mem_type = H5T_NATIVE_INT8;
  } else if (cls == H5T_INTEGER && size == 1) {
    st = at::kByte, mem_type = H5T_NATIVE_UINT8;
  } else {
    throw DataError("dataset '" + ds + "' in results file '" + path_ +
                    "' has an unsupported type (expected float32, float64, int64, int32 or int8)");
  }
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  int ndims =
      Check(H5Sget_simple_extent_ndims(space.id()), "H5Sget_simple_extent_ndims", path_, ds);
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  if (ndims > 0) {
    Check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "H5Sget_simple_extent_dims",
          path_, ds);
  }
  std::vector<int64_t> shape(dims.begin(), dims.end());
  if (count < 0) {
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(st).device(at::kCPU));
    if (out.numel() > 0) {
      Check(H5Dread(dset.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), "H5Dread",
            path_, ds);
    }
    return out;
  }
  if (ndims < 1 || first < 0 || first + count > shape[0])
    throw DataError("dataset '" + ds + "' in '" + path_ + "': rows [" + std::to_string(first) +
                    ", " + std::to_string(first + count) + ") are outside its " +
                    (ndims < 1 ? std::string("0-D shape") : std::to_string(shape[0]) + " rows"));
  shape[0] = count;
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(st).device(at::kCPU));
  if (out.numel() == 0) return out;
  std::vector<hsize_t> start(dims.size(), 0), block(dims.begin(), dims.end());
  start[0] = hsize_t(first), block[0] = hsize_t(count);
  Check(
      H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr),
      "H5Sselect_hyperslab", path_, ds);
  H5Dataspace mem(
      Check(H5Screate_simple(ndims, block.data(), nullptr), "H5Screate_simple", path_, ds));
  Check(H5Dread(dset.id(), mem_type, mem.id(), space.id(), H5P_DEFAULT, out.data_ptr()), "H5Dread",
        path_, ds);
  return out;
}

std::vector<std::string> ResultsReader::ReadStrings(const std::string& dataset_path) const {
  const std::string ds = Normalize(dataset_path);
  if (!Exists(ds)) Missing(path_, "dataset", ds);
  H5Dataset dset(Check(H5Dopen2(file_->id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", path_, ds));
  H5Datatype type(Check(H5Dget_type(dset.id()), "H5Dget_type", path_, ds));
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  return ReadStringData(type.id(), space.id(), path_, ds, [&](hid_t mem, void* buf) {
    return H5Dread(dset.id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

namespace {

H5Attribute OpenAttribute(const H5File& file, const std::string& object_path,
                          const std::string& name) {
  const std::string obj = Normalize(object_path);
  if (!h5::PathExists(file.id(), obj, file.path())) Missing(file.path(), "object", obj);
  H5Object o = h5::OpenObject(file.id(), obj, file.path());
  const std::string object = obj + "@" + name;
  if (Check(H5Aexists(o.id(), name.c_str()), "H5Aexists", file.path(), object) <= 0) {
    throw DataError("results file '" + file.path() + "' has no attribute '" + name + "' on '" +
                    obj + "'");
  }
  return H5Attribute(
      Check(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT), "H5Aopen", file.path(), object));
}

// Reads a one-element numeric attribute converted to `mem_type`.
void ReadNumericAttribute(const H5File& file, const std::string& object_path,
                          const std::string& name, hid_t mem_type, bool integer_only, void* out) {
  const std::string object = Normalize(object_path) + "@" + name;
  H5Attribute attr = OpenAttribute(file, object_path, name);
  H5Datatype type(Check(H5Aget_type(attr.id()), "H5Aget_type", file.path(), object));
  H5Dataspace space(Check(H5Aget_space(attr.id()), "H5Aget_space", file.path(), object));
  H5T_class_t cls = H5Tget_class(type.id());
  bool ok = cls == H5T_INTEGER || (!integer_only && cls == H5T_FLOAT);
  if (!ok || H5Sget_simple_extent_npoints(space.id()) != 1) {
    throw DataError("attribute '" + name + "' on '" + Normalize(object_path) + "' in '" +
                    file.path() + "' is not a single " + (integer_only ? "integer" : "number"));
  }
  Check(H5Aread(attr.id(), mem_type, out), "H5Aread", file.path(), object);
}

}  // namespace

std::string ResultsReader::ReadStringAttribute(const std::string& object_path,
                                               const std::string& name) const {
  const std::string object = Normalize(object_path) + "@" + name;
  H5Attribute attr = OpenAttribute(*file_, object_path, name);
  H5Datatype type(Check(H5Aget_type(attr.id()), "H5Aget_type", path_, object));
  H5Dataspace space(Check(H5Aget_space(attr.id()), "H5Aget_space", path_, object));
  std::vector<std::string> v =
      ReadStringData(type.id(), space.id(), path_, object,
                     [&](hid_t mem, void* buf) { return H5Aread(attr.id(), mem, buf); });
  if (v.size() != 1) {
    throw DataError("attribute '" + name + "' on '" + Normalize(object_path) + "' in '" + path_ +
                    "' holds " + std::to_string(v.size()) + " strings, expected one");
  }
  return v[0];
}

double ResultsReader::ReadDoubleAttribute(const std::string& object_path,
                                          const std::string& name) const {
  double v = 0;
  ReadNumericAttribute(*file_, object_path, name, H5T_NATIVE_DOUBLE, false, &v);
  return v;
}

int64_t ResultsReader::ReadIntAttribute(const std::string& object_path,
                                        const std::string& name) const {
  int64_t v = 0;
  ReadNumericAttribute(*file_, object_path, name, H5T_NATIVE_INT64, true, &v);
  return v;
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
