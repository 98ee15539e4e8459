// ResultsStore's writes of blocks: WriteRows (a dataset tiled by the ranks' row blocks) and
// CreateDataset + WriteBlock (a dataset filled block by block, e.g. predictions streamed over
// timepoints). Both end in one collective MPI-IO transfer per call in parallel mode.
#include <hdf5.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "io/h5.h"
#include "io/results_store.h"
#include "io/results_store_detail.h"
#include "parallel/collectives.h"
#include "parallel/comm.h"

namespace cliphba::io {

using detail::Dtype;
using detail::DtypeOf;
using detail::MakeSpace;
using detail::RequireOpen;
using detail::ShapeString;
using h5::Check;

// Writes t at `start` (+ row_offset along dim 0) of dset: serially, or in parallel with one
// collective transfer in which a rank with an empty t selects nothing but still takes part.
void ResultsStore::TransferBlock(const H5Dataset& dset, const std::string& ds, int64_t mem_type,
                                 const std::vector<int64_t>& block_start, int64_t row_offset,
                                 const at::Tensor& t) {
  static_assert(std::is_same_v<hid_t, int64_t>, "hid_t is int64_t since HDF5 1.10");
  std::vector<hsize_t> start(block_start.begin(), block_start.end());
  start[0] += static_cast<hsize_t>(row_offset);
  std::vector<hsize_t> local_dims(t.sizes().begin(), t.sizes().end());
  H5Dataspace filesp(Check(H5Dget_space(dset.id()), "H5Dget_space", partial_path_, ds));
  H5Dataspace mem = MakeSpace(local_dims, false, partial_path_);
  if (t.numel() == 0) {
    Check(H5Sselect_none(mem.id()), "H5Sselect_none", partial_path_, ds);
    Check(H5Sselect_none(filesp.id()), "H5Sselect_none", partial_path_, ds);
  } else {
    Check(H5Sselect_hyperslab(filesp.id(), H5S_SELECT_SET, start.data(), nullptr, local_dims.data(),
                              nullptr),
          "H5Sselect_hyperslab", partial_path_, ds);
  }
  if (!parallel()) {
    last_io_collective_ = false;
    if (t.numel() == 0) return;
    Check(H5Dwrite(dset.id(), mem_type, mem.id(), filesp.id(), H5P_DEFAULT, t.data_ptr()),
          "H5Dwrite", partial_path_, ds);
    return;
  }
  H5PropertyList dxpl = h5::CreatePlist(H5P_DATASET_XFER, partial_path_);
  Check(H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", partial_path_);
  static const char kNothing = 0;  // HDF5 wants a non-null buffer even for empty selections
  const void* buf = t.numel() > 0 ? t.data_ptr() : &kNothing;
  // A collective write can fail on some ranks only (a full disk): every rank throws alike (when
  // every rank gets back from H5Dwrite; HDF5 1.10 may leave the others in MPI-IO's set_view).
  parallel::RunOnAll(*comm_, [&] {
    Check(H5Dwrite(dset.id(), mem_type, mem.id(), filesp.id(), dxpl.id(), buf), "H5Dwrite",
          partial_path_, ds);
  });
  H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
  Check(H5Pget_mpio_actual_io_mode(dxpl.id(), &mode), "H5Pget_mpio_actual_io_mode", partial_path_);
  last_io_collective_ = mode != H5D_MPIO_NO_COLLECTIVE;
}

void ResultsStore::WriteRows(const std::string& dataset_path,
                             const std::vector<int64_t>& full_shape, at::ScalarType dtype,
                             int64_t row_offset, const at::Tensor& local) {
  RequireOpen(file_, committed_, path_, "WriteRows");
  const std::string ds = h5::NormalizeObjectPath(dataset_path);
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
  parallel::AgreeOnArguments(*comm_, what, signature, error);

  // The rows of all ranks must tile [0, n) exactly (no gap, no overlap): same check on all ranks.
  const int64_t rows = local.size(0);
  at::Tensor gathered = at::zeros({comm_->size(), 2}, at::kLong);
  gathered[comm_->rank()][0] = row_offset;
  gathered[comm_->rank()][1] = rows;
  comm_->AllgatherRows(gathered, std::vector<int64_t>(size_t(comm_->size()), 1));
  const std::vector<int64_t> blocks(gathered.data_ptr<int64_t>(),
                                    gathered.data_ptr<int64_t>() + gathered.numel());
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
  H5Dataset dset = detail::CreateDataset(*file_, ds, dt.file_type, space);  // collective

  TransferBlock(dset, ds, dt.mem_type, std::vector<int64_t>(dims.size(), 0), row_offset, t);
}

void ResultsStore::CreateDataset(const std::string& dataset_path,
                                 const std::vector<int64_t>& full_shape, at::ScalarType dtype) {
  RequireOpen(file_, committed_, path_, "CreateDataset");
  const std::string ds = h5::NormalizeObjectPath(dataset_path);
  const std::string what = "CreateDataset('" + ds + "') in '" + path_ + "'";
  Dtype dt{};
  std::string error;
  if (!DtypeOf(dtype, &dt)) {
    error = what + ": unsupported dtype " + std::string(c10::toString(dtype));
  } else if (full_shape.empty() || full_shape.size() > 4) {
    error = what + ": full_shape must have 1 to 4 dimensions";
  } else if (std::any_of(full_shape.begin(), full_shape.end(), [](int64_t d) { return d < 0; })) {
    error = what + ": negative dimension in full_shape " + ShapeString(full_shape);
  }
  parallel::AgreeOnArguments(*comm_, what, ds + "|" + c10::toString(dtype) + ShapeString(full_shape),
                             error);
  std::vector<hsize_t> dims(full_shape.begin(), full_shape.end());
  H5Dataspace space = MakeSpace(dims, false, partial_path_);
  H5Dataset dset = detail::CreateDataset(*file_, ds, dt.file_type, space);  // collective
}

void ResultsStore::WriteBlock(const std::string& dataset_path, const std::vector<int64_t>& start,
                              const at::Tensor& local) {
  RequireOpen(file_, committed_, path_, "WriteBlock");
  const std::string ds = h5::NormalizeObjectPath(dataset_path);
  const std::string what = "WriteBlock('" + ds + "') to '" + path_ + "'";
  // Local checks (each rank's block differs); a failure on any rank fails every rank before the
  // collective open, so nobody waits in a transfer the others never enter.
  std::string error;
  if (!h5::PathExists(file_->id(), ds, partial_path_)) error = what + ": no such dataset";
  H5Dataset dset;
  std::vector<hsize_t> dims;
  Dtype dt{}, unused{};
  at::ScalarType dataset_dtype = at::ScalarType::Undefined;
  if (error.empty()) {
    dset = H5Dataset(Check(H5Dopen2(file_->id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2",
                           partial_path_, ds));
    H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", partial_path_, ds));
    const int nd = Check(H5Sget_simple_extent_ndims(space.id()), "H5Sget_simple_extent_ndims",
                         partial_path_, ds);
    dims.resize(size_t(nd));
    Check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "H5Sget_simple_extent_dims",
          partial_path_, ds);
    // The dataset's own dtype: the block is converted here, as HDF5's parallel layer would fall
    // back to independent I/O for a transfer that needs a type conversion.
    H5Datatype file_type(Check(H5Dget_type(dset.id()), "H5Dget_type", partial_path_, ds));
    for (at::ScalarType st : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kChar}) {
      Dtype cand{};
      if (DtypeOf(st, &cand) && H5Tequal(file_type.id(), cand.file_type) > 0) {
        dt = cand;
        dataset_dtype = st;
      }
    }
    if (!local.defined() || !DtypeOf(local.scalar_type(), &unused) ||
        dataset_dtype == at::ScalarType::Undefined) {
      error = what + ": local block must be a float32, float64, int64, int32 or int8 tensor";
    } else if (local.dim() != nd || start.size() != size_t(nd)) {
      error = what + ": block and start must have the dataset's " + std::to_string(nd) +
              " dimensions";
    } else {
      for (int i = 0; i < nd && error.empty(); ++i) {
        if (local.numel() > 0 &&
            (start[size_t(i)] < 0 || start[size_t(i)] + local.size(i) > int64_t(dims[size_t(i)])))
          error = what + ": block " + ShapeString(local.sizes()) + " at " + ShapeString(start) +
                  " outside the dataset";
      }
    }
  }
  if (parallel()) {
    at::Tensor bad = at::full({1}, error.empty() ? int64_t(0) : int64_t(1), at::kLong);
    comm_->AllreduceSum(bad);
    if (bad.item<int64_t>() > 0)
      throw DataError(error.empty() ? what + ": a block of another rank is invalid" : error);
  } else if (!error.empty()) {
    throw DataError(error);
  }
  const at::Tensor t = local.detach().to(at::kCPU).to(dataset_dtype).contiguous();
  std::vector<int64_t> offset(dims.size(), 0);
  if (t.numel() > 0) offset = start;
  TransferBlock(dset, ds, dt.mem_type, offset, 0, t);
}

}  // namespace cliphba::io
