#include "io/h5.h"

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
