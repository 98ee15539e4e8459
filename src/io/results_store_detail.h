// PRIVATE to src/io: the HDF5 helpers results_store.cc and results_store_blocks.cc share.
#pragma once

#include <ATen/ATen.h>
#include <hdf5.h>

#include <memory>
#include <string>
#include <vector>

#include "io/h5.h"

namespace cliphba::io::detail {

struct Dtype {
  hid_t file_type;  // little-endian on disk, whatever the host
  hid_t mem_type;   // native
};

// The HDF5 types of float32, float64, int64, int32 and int8; false for any other dtype.
bool DtypeOf(at::ScalarType t, Dtype* out);

// "(2, 3)".
std::string ShapeString(at::IntArrayRef shape);

// Throws an internal Error when the store was committed or moved from.
void RequireOpen(const std::unique_ptr<H5File>& file, bool committed, const std::string& path,
                 const char* op);

// A simple (or, with scalar, a scalar) dataspace of `dims`.
H5Dataspace MakeSpace(const std::vector<hsize_t>& dims, bool scalar, const std::string& file);

// Collective in parallel mode. Creates `path` (missing groups included); IoError if it exists.
H5Dataset CreateDataset(const H5File& file, const std::string& path, hid_t file_type,
                        const H5Dataspace& space);

}  // namespace cliphba::io::detail
