// NPY (NumPy .npy, format versions 1.0-3.0) reading and writing.
//
// Supported: little-endian (or byte-order-free) float32 '<f4', float64 '<f8', int64 '<i8',
// int32 '<i4', int8 '|i1', uint8 '|u1'; C order; 0-D to 4-D. Anything else (Fortran order,
// big-endian, object or structured dtypes, > 4 dims) is refused with a DataError naming the file
// and the offending header field. Fortran-order files (what numpy writes for any F-contiguous
// array, e.g. every scipy.io.loadmat result, and the shared RDM48_triplet.npy) are read everywhere
// and converted to C order on load: one NPY policy for the whole project (a caller may still opt
// out with allow_fortran_order = false). A file whose size
// disagrees with its header (truncated, or with trailing bytes the header does not account for)
// is refused as well.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba::io {

struct NpyHeader {
  std::string descr;           // e.g. "<f8"
  at::ScalarType dtype;        // the ATen type of descr
  std::vector<int64_t> shape;  // C-order shape; empty for a 0-D array
  int64_t data_offset = 0;     // byte offset of the first element
  int64_t data_bytes = 0;      // product(shape) * itemsize
  bool fortran_order = false;  // the data are in Fortran order (never true if not allowed)
};

// Parses and validates the header of `path` without reading the data.
// Throws IoError (missing/unreadable file) or DataError (malformed/unsupported header, size
// mismatch between header and file). fortran_order=True is a DataError if !allow_fortran_order.
NpyHeader ReadNpyHeader(const std::string& path, bool allow_fortran_order = true);

struct NpyReadOptions {
  // Files whose data are at least this many bytes are memory-mapped read-only instead of read;
  // the returned tensor then keeps the mapping alive (and must not be written to).
  int64_t mmap_threshold_bytes = int64_t(64) << 20;
  // Fortran-order files are returned as C-order copies (never memory-mapped). Off: such files are
  // a DataError.
  bool allow_fortran_order = true;
};

// Reads `path` into a contiguous CPU tensor of the file's dtype and shape.
// Returns a tensor that owns its storage (a read buffer or a read-only mapping).
// Throws as ReadNpyHeader; IoError on a short read.
at::Tensor ReadNpy(const std::string& path, const NpyReadOptions& options = {});

// Reads the sub-array [first, first + count) along dimension 0 of a file with positioned
// reads (no mapping), e.g. a chunk of timepoints of a (T x n x n) RDM stack: memory stays bounded
// by the chunk, whatever the file size. header: from ReadNpyHeader(path). Returns a contiguous
// tensor of shape (count, shape[1:]...) in C order (a Fortran-order file is gathered run by run).
// Throws DataError for a 0-D file or a range outside [0, shape[0]], IoError on a short read.
at::Tensor ReadNpyRows(const std::string& path, const NpyHeader& header, int64_t first,
                       int64_t count);

// Writes `tensor` (any supported dtype, <= 4 dims, CPU; made contiguous) as NPY 1.0.
// Atomic: data go to `path + ".partial"`, which is renamed to `path` only when complete, so a crash
// never leaves a truncated file under the final name. Throws IoError / DataError (unsupported
// dtype).
void WriteNpy(const std::string& path, const at::Tensor& tensor);

}  // namespace cliphba::io
