#include "io/h5.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/library_info.h"

namespace cliphba::io {

namespace h5 {
namespace {

struct StackEntry {
  std::string major, minor, function, description;
};

std::string MessageOf(hid_t msg_id) {
  char buf[256] = {0};
  H5E_type_t type;
  if (H5Eget_msg(msg_id, &type, buf, sizeof(buf)) < 0) return "?";
  return buf;
}

herr_t CollectEntry(unsigned /*n*/, const H5E_error2_t* err, void* client_data) {
  auto* entries = static_cast<std::vector<StackEntry>*>(client_data);
  entries->push_back({MessageOf(err->maj_num), MessageOf(err->min_num),
                      err->func_name ? err->func_name : "", err->desc ? err->desc : ""});
  return 0;
}

}  // namespace

void SilenceErrorStack() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string TakeErrorStackMessage() {
  // Take a copy of the current stack (this also clears it), then walk the copy from the most
  // specific entry upwards.
  hid_t stack = H5Eget_current_stack();
  if (stack < 0) return "";
  std::vector<StackEntry> entries;
  H5Ewalk2(stack, H5E_WALK_UPWARD, CollectEntry, &entries);
  H5Eclose_stack(stack);
  if (entries.empty()) return "";
  const StackEntry& inner = entries.front();
  std::string msg = inner.major + ": " + inner.minor;
  if (!inner.description.empty()) msg += " (" + inner.function + ": " + inner.description + ")";
  if (entries.size() > 1 && entries.back().function != inner.function) {
    msg += " [in " + entries.back().function + "]";
  }
  return msg;
}

void ThrowError(const std::string& operation, const std::string& file, const std::string& object) {
  std::string msg = "HDF5 " + operation + " failed for '" + file + "'";
  if (!object.empty()) msg += ", object '" + object + "'";
  std::string stack = TakeErrorStackMessage();
  msg += stack.empty() ? std::string(" (no HDF5 error details)") : ": " + stack;
  throw IoError(msg);
}

H5PropertyList CreatePlist(hid_t cls, const std::string& file) {
  SilenceErrorStack();
  return H5PropertyList(Check(H5Pcreate(cls), "H5Pcreate", file));
}

H5PropertyList IntermediateGroupsLcpl(const std::string& file) {
  H5PropertyList lcpl = CreatePlist(H5P_LINK_CREATE, file);
  Check(H5Pset_create_intermediate_group(lcpl.id(), 1), "H5Pset_create_intermediate_group", file);
  return lcpl;
}

H5Datatype Utf8StringType(const std::string& file, size_t fixed_size) {
  SilenceErrorStack();
  H5Datatype type(Check(H5Tcopy(H5T_C_S1), "H5Tcopy", file));
  Check(H5Tset_size(type.id(), fixed_size > 0 ? fixed_size : H5T_VARIABLE), "H5Tset_size", file);
  Check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "H5Tset_cset", file);
  if (fixed_size > 0) Check(H5Tset_strpad(type.id(), H5T_STR_NULLPAD), "H5Tset_strpad", file);
  return type;
}

bool PathExists(hid_t loc, const std::string& path, const std::string& file) {
  SilenceErrorStack();
  // H5Lexists fails (rather than returning false) when an intermediate group is missing, so walk
  // the path one component at a time.
  std::string prefix;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (next > pos) {
      prefix += "/" + path.substr(pos, next - pos);
      htri_t exists = Check(H5Lexists(loc, prefix.c_str(), H5P_DEFAULT), "H5Lexists", file, prefix);
      if (exists == 0) return false;
      // A dataset in the middle of the path ("/a/dataset/b") cannot contain b.
      if (next < path.size()) {
        H5O_info_t info;
        Check(H5Oget_info_by_name2(loc, prefix.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT),
              "H5Oget_info_by_name", file, prefix);
        if (info.type != H5O_TYPE_GROUP) return false;
      }
    }
    pos = next + 1;
  }
  return true;
}

H5Object OpenObject(hid_t loc, const std::string& path, const std::string& file) {
  SilenceErrorStack();
  return H5Object(Check(H5Oopen(loc, path.c_str(), H5P_DEFAULT), "H5Oopen", file, path));
}

namespace {

// Adds the storage of every dataset below the visited object (H5Ovisit2 callback).
herr_t AddDatasetStorage(hid_t obj, const char* name, const H5O_info_t* info, void* total) {
  if (info->type != H5O_TYPE_DATASET) return 0;
  const hid_t dset = H5Dopen2(obj, name, H5P_DEFAULT);
  if (dset < 0) return -1;
  *static_cast<uint64_t*>(total) += H5Dget_storage_size(dset);
  H5Dclose(dset);
  return 0;
}

}  // namespace

uint64_t CloseExtent(hid_t file, const std::string& path) {
  SilenceErrorStack();
  haddr_t eoa = 0;
  if (H5Fget_eoa(file, &eoa) >= 0) return eoa;  // sec2 (any SWMR-capable driver)
  H5Eclear2(H5E_DEFAULT);
  struct stat st {};
  size_t max_size = 0, min_clean = 0, cur_size = 0;
  int entries = 0;
  uint64_t datasets = 0;
  if (stat(path.c_str(), &st) != 0 ||
      H5Fget_mdc_size(file, &max_size, &min_clean, &cur_size, &entries) < 0 ||
      H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, AddDatasetStorage, &datasets,
                H5O_INFO_BASIC) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0;
  }
  return uint64_t(st.st_size) + datasets + cur_size + (64u << 10);
}

uint64_t ReserveDiskSpace(const std::string& path, uint64_t end) {
  if (end == 0) return 0;
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return 0;  // the close will report what is wrong with the file
  const int ret = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, off_t(end));
  const int err = errno;
  close(fd);
  if (ret == 0) return end;
  if (err == ENOSPC || err == EDQUOT) {
    throw IoError("cannot close '" + path + "': no space for the " + std::to_string(end) +
                  " bytes of its final write (" + std::strerror(err) + ")");
  }
  return 0;  // EOPNOTSUPP and the like: this file system cannot reserve
}

void ReleaseReservation(const std::string& path, uint64_t reserved_end) noexcept {
  struct stat st {};
  if (reserved_end == 0 || stat(path.c_str(), &st) != 0) return;
  if (uint64_t(st.st_size) >= reserved_end) return;
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
                  off_t(reserved_end - uint64_t(st.st_size)));
  close(fd);
}

int DetachFromDisk(const std::string& path) noexcept {
  struct stat target {};
  if (stat(path.c_str(), &target) != 0) return 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int fds[64];  // no allocation: called from destructors and error paths
  int n = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    struct stat st {};
    if (n < 64 && fd != dirfd(dir) && fstat(fd, &st) == 0 && st.st_dev == target.st_dev &&
        st.st_ino == target.st_ino) {
      fds[n++] = fd;
    }
  }
  closedir(dir);
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    const int mem = memfd_create("cliphba-discarded", MFD_CLOEXEC);
    if (mem < 0) continue;
    if (dup2(mem, fds[i]) >= 0) ++moved;  // atomically replaces the descriptor
    close(mem);
  }
  return moved;
}

void CloseWritten(H5File& file, const std::string& path) {
  uint64_t reserved = 0;
  try {
    reserved = ReserveDiskSpace(path, CloseExtent(file.id(), path));
  } catch (const IoError&) {
    DetachFromDisk(path);
    file.reset();
    throw;
  }
  SilenceErrorStack();
  if (file.Close() < 0) ThrowError("H5Fclose", path, "");
  ReleaseReservation(path, reserved);
}

DetachOnUnwind::DetachOnUnwind(std::string path)
    : path_(std::move(path)), exceptions_(std::uncaught_exceptions()) {}

DetachOnUnwind::~DetachOnUnwind() {
  if (std::uncaught_exceptions() > exceptions_) DetachFromDisk(path_);
}

}  // namespace h5

H5File H5File::Create(const std::string& path, hid_t fapl) {
  h5::SilenceErrorStack();
  hid_t id =
      h5::Check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "H5Fcreate", path);
  return H5File(id, path);
}

H5File H5File::Open(const std::string& path, unsigned flags, hid_t fapl) {
  h5::SilenceErrorStack();
  hid_t id = h5::Check(H5Fopen(path.c_str(), flags, fapl), "H5Fopen", path);
  return H5File(id, path);
}

Hdf5LibraryInfo Hdf5Library() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
#ifdef H5_HAVE_PARALLEL
  const bool parallel = true;
#else
  const bool parallel = false;
#endif
  return {std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release),
          parallel};
}

}  // namespace cliphba::io
