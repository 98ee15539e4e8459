// Writing MEG epochs files in the CONTRACTS "Epochs HDF5" layout (one file per participant):
//   /epochs/data            float32 (trials, channels, times)
//   /epochs/condition       int64   (trials), index into condition_names
//   /epochs/condition_names string  (C)  object/image names, RDM order
//   /epochs/channel_names   string  (channels)  (written when given)
//   attributes on /epochs:  sfreq (double, Hz), tmin_ms (double), participant (string, if given)
// Files are byte-for-byte reproducible (no object timestamps) and written atomically.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace cliphba::io {

struct Epochs {
  at::Tensor data;                           // (trials, channels, times) float32
  at::Tensor condition;                      // (trials) int64 in [0, C)
  std::vector<std::string> condition_names;  // (C)
  std::vector<std::string> channel_names;    // (channels) or empty
  double sfreq = 0;                          // Hz, > 0
  double tmin_ms = 0;                        // time of sample 0
  std::string participant;                   // optional label
};

// Writes `epochs` to `path` (through `path + ".partial"`, renamed when complete; the partial file
// is removed on failure). REQUIRES: the shapes above (checked: DataError naming the field).
// Throws IoError naming the file when HDF5 or the rename fails.
void WriteEpochsH5(const std::string& path, const Epochs& epochs);

}  // namespace cliphba::io
