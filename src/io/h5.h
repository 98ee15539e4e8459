// Thin RAII wrappers over the HDF5 C API (serial and parallel/MPI-IO builds of HDF5 1.10).
//
// One move-only owner class per kind of hid_t; each destructor closes with the matching H5?close
// and never throws. Check() turns a negative HDF5 return value into cliphba::IoError naming the
// operation, the file and the innermost entry of HDF5's error stack.
//
// Parallel HDF5 (MPI-IO driver): the following calls are COLLECTIVE — every rank of the file's
// communicator must make them, in the same order and with the same arguments:
//   H5Fcreate, H5Fopen, H5Fflush, H5Fclose;
//   H5Gcreate2, H5Dcreate2, H5Acreate2, H5Awrite, H5Adelete (all metadata modifications);
//   H5Dwrite/H5Dread when the transfer property list asks for H5FD_MPIO_COLLECTIVE
//   (a rank without data still calls them, with H5Sselect_none on its file and memory spaces);
//   closing objects (H5Dclose, H5Gclose, H5Aclose, H5Oclose) — keep them in step across ranks.
// Property lists, dataspaces and datatypes are local objects (not collective).
//
// Only io/*.cc and tests include this header (it pulls in hdf5.h, parallel include directory).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

namespace cliphba::io {

namespace h5 {

// "/a/b" for "a/b" and "/a/b"; "/" stays "/".
inline std::string NormalizeObjectPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return "/" + path;
  return path;
}

// Turns off HDF5's automatic printing of its error stack on this thread (errors are reported
// through IoError instead). Idempotent and cheap; called by every entry point of this layer.
void SilenceErrorStack();

// The innermost (most specific) entry of the current HDF5 error stack as
// "major: minor (function: description)", or "" when the stack is empty. Clears the stack.
std::string TakeErrorStackMessage();

// Throws IoError("HDF5 <operation> failed for '<file>' [object '<object>']: <stack message>").
[[noreturn]] void ThrowError(const std::string& operation, const std::string& file,
                             const std::string& object);

// Checked call: returns `ret` when it is >= 0 (herr_t, hid_t, htri_t, ssize_t), otherwise
// throws IoError as ThrowError() does.
template <typename T>
T Check(T ret, const char* operation, const std::string& file, const std::string& object = "") {
  if (ret < 0) ThrowError(operation, file, object);
  return ret;
}

// Move-only owner of one hid_t, closed by CloseFn. Invalid (id < 0) when default-constructed or
// moved from.
template <herr_t (*CloseFn)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Closes now (errors are swallowed; use Close() to see them).
  void reset() noexcept {
    if (id_ >= 0) {
      SilenceErrorStack();
      CloseFn(id_);
      H5Eclear2(H5E_DEFAULT);
    }
    id_ = H5I_INVALID_HID;
  }
  // Closes now and returns CloseFn's result (0 when already closed). The id is released either way.
  herr_t Close() noexcept {
    herr_t ret = 0;
    if (id_ >= 0) ret = CloseFn(id_);
    id_ = H5I_INVALID_HID;
    return ret;
  }
  // Gives up ownership.
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace h5

// One class per kind of identifier.
class H5Group : public h5::Handle<H5Gclose> {
 public:
  using Handle::Handle;
};
class H5Dataset : public h5::Handle<H5Dclose> {
 public:
  using Handle::Handle;
};
class H5Dataspace : public h5::Handle<H5Sclose> {
 public:
  using Handle::Handle;
};
// A *copied* (user-owned) datatype. Predefined types such as H5T_NATIVE_DOUBLE are not owned:
// pass them around as plain hid_t.
class H5Datatype : public h5::Handle<H5Tclose> {
 public:
  using Handle::Handle;
};
class H5PropertyList : public h5::Handle<H5Pclose> {
 public:
  using Handle::Handle;
};
class H5Attribute : public h5::Handle<H5Aclose> {
 public:
  using Handle::Handle;
};
// Any object opened with H5Oopen (group or dataset, for attributes).
class H5Object : public h5::Handle<H5Oclose> {
 public:
  using Handle::Handle;
};

// An open HDF5 file plus the path it was opened under (for error messages).
class H5File : public h5::Handle<H5Fclose> {
 public:
  H5File() = default;
  H5File(hid_t id, std::string path) : Handle(id), path_(std::move(path)) {}
  H5File(H5File&&) noexcept = default;
  H5File& operator=(H5File&&) noexcept = default;

  const std::string& path() const { return path_; }

  // Creates (truncating) `path`. With a parallel fapl (H5Pset_fapl_mpio) this is collective.
  static H5File Create(const std::string& path, hid_t fapl = H5P_DEFAULT);
  // Opens an existing file; `flags` is H5F_ACC_RDONLY or H5F_ACC_RDWR. Collective with an MPI-IO
  // fapl.
  static H5File Open(const std::string& path, unsigned flags, hid_t fapl = H5P_DEFAULT);

 private:
  std::string path_;
};

namespace h5 {

// Property-list factories (local calls, never collective).
H5PropertyList CreatePlist(hid_t cls, const std::string& file);  // e.g. H5P_DATASET_XFER
// A link-creation property list that creates missing intermediate groups.
H5PropertyList IntermediateGroupsLcpl(const std::string& file);
// A variable-length (or, with size > 0, fixed-length null-padded) UTF-8 string datatype.
H5Datatype Utf8StringType(const std::string& file, size_t fixed_size = 0);

// True if every component of the absolute or root-relative `path` exists as a link (and "/").
// Metadata read: in parallel mode every rank may call it; it needs no collective call.
bool PathExists(hid_t loc, const std::string& path, const std::string& file);

// Opens a group or dataset by path (H5Oopen). Throws IoError naming the object.
H5Object OpenObject(hid_t loc, const std::string& path, const std::string& file);

// ---- Full disks. HDF5 1.10.8 (Debian 12) frees a file whose close failed but leaves its id
// registered; the library's own shutdown (at MPI_Finalize, or at exit) then closes it again and
// crashes (fixed upstream in 1.14.1, HDFGroup/hdf5#2291). A close fails when its final flush cannot
// write (disk full, quota exceeded), and a failed H5Fflush leaves the cache unable to close at all.
// So a written file is closed only after the space of its flush is reserved, and a file being
// discarded writes its last bytes to memory instead of the disk.

// The end of what closing `file` (at `path`) can write: its EOA where the driver reports it
// (sec2). MPI-IO keeps the EOA private, so there a bound: the size on disk, plus the storage of
// every dataset (parallel HDF5 allocates it at creation; it may be unwritten), plus the metadata
// cache, plus 64 KiB. 0 when it cannot be told. Reads metadata only (H5Ovisit, H5Dopen): every
// rank of a parallel file calls it alike.
uint64_t CloseExtent(hid_t file, const std::string& path);

// Reserves the disk blocks of [0, end) of `path` (fallocate, FALLOC_FL_KEEP_SIZE: the file's size
// does not change), so that the close's writes cannot fail for want of space. Returns the reserved
// end (0: nothing to reserve, or the file system cannot: nothing is promised). Throws
// IoError("cannot close '<path>': no space for the N bytes of its final write (...)") when the
// blocks are not there. Local call (rank 0 of a parallel file).
uint64_t ReserveDiskSpace(const std::string& path, uint64_t end);

// After the file is closed: gives back what ReserveDiskSpace reserved beyond its final size.
// Best effort, never throws.
void ReleaseReservation(const std::string& path, uint64_t reserved_end) noexcept;

// Points every descriptor this process holds on `path` at an anonymous in-memory file (memfd), so
// that what HDF5 still writes while closing a file that is being discarded cannot fail. Linux
// (/proc/self/fd); best effort, never throws. Returns the number of descriptors moved.
int DetachFromDisk(const std::string& path) noexcept;

// Closes a serial file whose writing is done (CloseExtent, ReserveDiskSpace, H5Fclose,
// ReleaseReservation).
// Throws IoError naming `path` when its space cannot be reserved (the file is then closed into
// memory) or the close fails.
void CloseWritten(H5File& file, const std::string& path);

// Declared after the H5File it guards: if the scope is left by an exception, detaches `path`
// (DetachFromDisk) before the file's destructor closes it.
class DetachOnUnwind {
 public:
  explicit DetachOnUnwind(std::string path);
  ~DetachOnUnwind();
  DetachOnUnwind(const DetachOnUnwind&) = delete;
  DetachOnUnwind& operator=(const DetachOnUnwind&) = delete;

 private:
  std::string path_;
  int exceptions_;
};

}  // namespace h5

}  // namespace cliphba::io
