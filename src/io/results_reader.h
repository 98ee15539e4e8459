// Read access to finished cliphba results files (HDF5; layout in results/README.md) and, in
// general, to any HDF5 file read by other modules (MEG RDM stacks, epochs files), so that only
// io/*.cc uses HDF5's C API. Serial: any rank may open a file read-only.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cliphba::io {

class H5File;  // io/h5.h

// What a dataset holds, without reading its data.
struct DatasetInfo {
  std::vector<int64_t> shape;   // stored extent; empty for a scalar dataset
  bool floating_point = false;  // stored type is an HDF5 floating-point type (any size)
  size_t element_size = 0;      // bytes per stored element (H5Tget_size of the stored type)
};

// Read access to a finished results file (serial; any rank may open it read-only).
class ResultsReader {
 public:
  // Throws IoError if `path` is missing or not an HDF5 file.
  explicit ResultsReader(const std::string& path);
  ~ResultsReader();
  ResultsReader(const ResultsReader&) = delete;
  ResultsReader& operator=(const ResultsReader&) = delete;

  bool Exists(const std::string& object_path) const;
  // Reads a numeric dataset into a CPU tensor of its stored dtype. Throws DataError if missing.
  at::Tensor ReadTensor(const std::string& dataset_path) const;
  // Rows [first, first + count) along dimension 0 (a hyperslab read: memory bounded by the rows).
  // Throws DataError for a range outside the dataset.
  at::Tensor ReadRows(const std::string& dataset_path, int64_t first, int64_t count) const;
  // The dataset's shape. Throws DataError if it is missing.
  std::vector<int64_t> Shape(const std::string& dataset_path) const;
  // Shape and stored type of a dataset. Throws DataError if it is missing, IoError (naming the
  // file and the object) if HDF5 cannot open it as a dataset (e.g. it is a group).
  DatasetInfo Describe(const std::string& dataset_path) const;
  // Hyperslab read of a dataset of any rank: elements [start[d], start[d] + count[d]) along every
  // dimension d, converted by HDF5 to the native memory type of `as` (kFloat: H5T_NATIVE_FLOAT,
  // kDouble: H5T_NATIVE_DOUBLE). Returns a contiguous CPU tensor of shape `count` and dtype `as`;
  // memory is bounded by the slab. An empty slab (some count[d] == 0) is returned without a read.
  // REQUIRES: `as` is at::kFloat or at::kDouble (else Error, exit code kInternal).
  // Throws DataError if the dataset is missing, if start/count do not have one entry per
  // dimension, or if the slab lies outside the dataset; IoError (naming the file and the dataset)
  // if HDF5 fails, e.g. the path is a group or the stored type cannot be converted.
  at::Tensor ReadSlab(const std::string& dataset_path, const std::vector<int64_t>& start,
                      const std::vector<int64_t>& count, at::ScalarType as) const;
  // True if `object_path` (a group or dataset) exists and carries the attribute `name`; false
  // if either is missing. Throws IoError if HDF5 fails to answer.
  bool HasAttribute(const std::string& object_path, const std::string& name) const;
  std::vector<std::string> ReadStrings(const std::string& dataset_path) const;
  std::string ReadStringAttribute(const std::string& object_path, const std::string& name) const;
  double ReadDoubleAttribute(const std::string& object_path, const std::string& name) const;
  int64_t ReadIntAttribute(const std::string& object_path, const std::string& name) const;

 private:
  std::string path_;
  std::unique_ptr<H5File> file_;
};

}  // namespace cliphba::io
