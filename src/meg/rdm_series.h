// One RDM or a time series of RDMs WITHOUT participants or names: the neural side of
// `cliphba permute mantel` (permute.mantel.neural_rdm / neural_dataset). meg::RdmStack reads the
// participant stacks of the MEG stages; both live here so that every RDM file goes file -> meg/.
//
// Shapes (NPY, C or Fortran order, or an HDF5 dataset): one (n, n) square (T = 1), (T, n, n)
// squares, or (T, m) condensed rows with m = n (n - 1) / 2 (scipy order). Timepoints are read one
// at a time with positioned reads, so memory does not grow with T. No rescaling: the Mantel
// statistics are invariant to it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

#include "io/npy.h"

namespace cliphba::io {
class ResultsReader;
}

namespace cliphba::meg {

// n with n (n - 1) / 2 == m, or -1.
int64_t ObjectsFromPairs(int64_t m);

class RdmSeries {
 public:
  // dataset empty: an NPY file (an HDF5 file then is a ConfigError asking for the dataset).
  // Throws IoError (unreadable), DataError (not floating, a shape above, no timepoints), each
  // naming the file.
  static RdmSeries Open(const std::string& path, const std::string& dataset);

  int64_t timepoints() const { return t; }
  int64_t objects() const { return n; }
  const std::string& source() const { return path; }

  // Condensed float64 (m) row of timepoint t, validated: squares symmetric with a zero diagonal,
  // finite; refused when every pair has the same value (the correlation is undefined). Throws
  // ConfigError for t out of range, DataError naming the file and timepoint.
  at::Tensor Row(int64_t t) const;

 private:
  io::NpyHeader header;                   // NPY input
  std::shared_ptr<io::ResultsReader> h5;  // HDF5 input (hyperslab reads)
  std::string dataset;                    // its dataset path
  bool square = true;
  bool single = false;  // one (n x n) RDM: T = 1
  int64_t n = 0, t = 0;
  std::string path;
};

}  // namespace cliphba::meg
