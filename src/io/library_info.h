// The HDF5 library this binary runs on (for `cliphba version`), without exposing hdf5.h.
#pragma once

#include <string>

namespace cliphba::io {

struct Hdf5LibraryInfo {
  std::string version;  // "major.minor.release" of the loaded library
  bool parallel;        // built with MPI-IO (H5_HAVE_PARALLEL)
};

Hdf5LibraryInfo Hdf5Library();

}  // namespace cliphba::io
