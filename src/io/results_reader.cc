// ResultsReader on top of io/h5.h: numeric datasets (whole, by rows or by hyperslab), dataset
// shapes and types, strings and attributes.
#include "io/results_reader.h"

#include <hdf5.h>

#include "core/error.h"
#include "io/h5.h"

namespace cliphba::io {

namespace {

using h5::Check;
using h5::NormalizeObjectPath;

[[noreturn]] void Missing(const std::string& file, const std::string& what,
                          const std::string& path) {
  throw DataError("results file '" + file + "' has no " + what + " '" + path + "'");
}

// Opens the dataset `ds` (normalized path). Throws DataError if it is missing, IoError if HDF5
// cannot open it (e.g. it is a group).
H5Dataset OpenExistingDataset(const H5File& file, const std::string& ds) {
  if (!h5::PathExists(file.id(), ds, file.path())) Missing(file.path(), "dataset", ds);
  return H5Dataset(
      Check(H5Dopen2(file.id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", file.path(), ds));
}

// The extent of a simple dataspace; empty for a scalar one.
std::vector<hsize_t> Extent(hid_t space, const std::string& file, const std::string& ds) {
  int ndims = Check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", file, ds);
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  if (ndims > 0)
    Check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "H5Sget_simple_extent_dims", file,
          ds);
  return dims;
}

// Reads a scalar or 1-D string dataset/attribute, VL or fixed-length. `read(mem_type, buf)`.
template <typename ReadFn>
std::vector<std::string> ReadStringData(hid_t file_type, hid_t space, const std::string& file,
                                        const std::string& object, ReadFn read) {
  if (H5Tget_class(file_type) != H5T_STRING) {
    throw DataError("'" + object + "' in '" + file + "' is not a string dataset/attribute");
  }
  int ndims = Check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", file, object);
  if (ndims > 1) {
    throw DataError("'" + object + "' in '" + file + "' has " + std::to_string(ndims) +
                    " dimensions, expected a 1-D list of strings");
  }
  hssize_t n =
      Check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints", file, object);
  std::vector<std::string> out;
  if (n == 0) return out;
  htri_t is_vl = Check(H5Tis_variable_str(file_type), "H5Tis_variable_str", file, object);
  if (is_vl) {
    H5Datatype mem = h5::Utf8StringType(file);
    Check(H5Tset_cset(mem.id(), H5Tget_cset(file_type)), "H5Tset_cset", file, object);
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    Check(read(mem.id(), ptrs.data()), "read", file, object);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.id(), space, H5P_DEFAULT, ptrs.data());
  } else {
    H5Datatype mem(Check(H5Tcopy(file_type), "H5Tcopy", file, object));
    size_t size = H5Tget_size(file_type);
    std::vector<char> buf(size * static_cast<size_t>(n));
    Check(read(mem.id(), buf.data()), "read", file, object);
    for (hssize_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * size, size);
      size_t end = s.find('\0');
      if (end != std::string::npos) s.resize(end);
      if (H5Tget_strpad(file_type) == H5T_STR_SPACEPAD) {
        s.erase(s.find_last_not_of(' ') + 1);
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace

ResultsReader::ResultsReader(const std::string& path) : path_(path) {
  try {
    file_ = std::make_unique<H5File>(H5File::Open(path, H5F_ACC_RDONLY));
  } catch (const IoError& e) {
    throw IoError("cannot open results file '" + path + "': " + e.what());
  }
}

ResultsReader::~ResultsReader() = default;

bool ResultsReader::Exists(const std::string& object_path) const {
  return h5::PathExists(file_->id(), NormalizeObjectPath(object_path), path_);
}

at::Tensor ResultsReader::ReadTensor(const std::string& dataset_path) const {
  return ReadRows(dataset_path, 0, -1);
}

std::vector<int64_t> ResultsReader::Shape(const std::string& dataset_path) const {
  const std::string ds = NormalizeObjectPath(dataset_path);
  H5Dataset dset = OpenExistingDataset(*file_, ds);
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  std::vector<hsize_t> dims = Extent(space.id(), path_, ds);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

DatasetInfo ResultsReader::Describe(const std::string& dataset_path) const {
  const std::string ds = NormalizeObjectPath(dataset_path);
  H5Dataset dset = OpenExistingDataset(*file_, ds);
  H5Datatype type(Check(H5Dget_type(dset.id()), "H5Dget_type", path_, ds));
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  std::vector<hsize_t> dims = Extent(space.id(), path_, ds);
  DatasetInfo info;
  info.shape.assign(dims.begin(), dims.end());
  info.floating_point = H5Tget_class(type.id()) == H5T_FLOAT;
  info.element_size = H5Tget_size(type.id());
  return info;
}

at::Tensor ResultsReader::ReadSlab(const std::string& dataset_path,
                                   const std::vector<int64_t>& start,
                                   const std::vector<int64_t>& count, at::ScalarType as) const {
  if (as != at::kFloat && as != at::kDouble)
    throw Error(ExitCode::kInternal, "ResultsReader::ReadSlab of '" + dataset_path + "' in '" +
                                         path_ + "': memory type must be float32 or float64");
  h5::SilenceErrorStack();
  const std::string ds = NormalizeObjectPath(dataset_path);
  H5Dataset dset = OpenExistingDataset(*file_, ds);
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  const std::vector<hsize_t> dims = Extent(space.id(), path_, ds);
  if (start.size() != dims.size() || count.size() != dims.size())
    throw DataError("dataset '" + ds + "' in '" + path_ + "' has rank " +
                    std::to_string(dims.size()) + ", but the slab to read has " +
                    std::to_string(start.size()) + " start and " + std::to_string(count.size()) +
                    " count entries");
  for (size_t d = 0; d < dims.size(); ++d)
    if (start[d] < 0 || count[d] < 0 || uint64_t(start[d]) + uint64_t(count[d]) > dims[d])
      throw DataError("dataset '" + ds + "' in '" + path_ + "': [" + std::to_string(start[d]) +
                      ", " + std::to_string(start[d] + count[d]) + ") along dimension " +
                      std::to_string(d) + " is outside its extent " + std::to_string(dims[d]));
  at::Tensor out = at::empty(count, at::TensorOptions().dtype(as).device(at::kCPU));
  if (out.numel() == 0) return out;
  const hid_t mem_type = as == at::kFloat ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
  if (dims.empty()) {  // scalar dataset: nothing to select
    Check(H5Dread(dset.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), "H5Dread",
          path_, ds);
    return out;
  }
  const std::vector<hsize_t> first(start.begin(), start.end()), block(count.begin(), count.end());
  Check(
      H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, first.data(), nullptr, block.data(), nullptr),
      "H5Sselect_hyperslab", path_, ds);
  H5Dataspace mem(Check(H5Screate_simple(int(block.size()), block.data(), nullptr),
                        "H5Screate_simple", path_, ds));
  Check(H5Dread(dset.id(), mem_type, mem.id(), space.id(), H5P_DEFAULT, out.data_ptr()), "H5Dread",
        path_, ds);
  return out;
}

bool ResultsReader::HasAttribute(const std::string& object_path, const std::string& name) const {
  const std::string obj = NormalizeObjectPath(object_path);
  if (!Exists(obj)) return false;
  return Check(H5Aexists_by_name(file_->id(), obj.c_str(), name.c_str(), H5P_DEFAULT),
               "H5Aexists_by_name", path_, obj + "@" + name) > 0;
}

at::Tensor ResultsReader::ReadRows(const std::string& dataset_path, int64_t first,
                                   int64_t count) const {
  const std::string ds = NormalizeObjectPath(dataset_path);
  if (!Exists(ds)) Missing(path_, "dataset", ds);
  H5O_info_t info;
  Check(H5Oget_info_by_name2(file_->id(), ds.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT),
        "H5Oget_info_by_name", path_, ds);
  if (info.type != H5O_TYPE_DATASET) {
    throw DataError("'" + ds + "' in results file '" + path_ + "' is a group, expected a dataset");
  }
  H5Dataset dset(Check(H5Dopen2(file_->id(), ds.c_str(), H5P_DEFAULT), "H5Dopen2", path_, ds));
  H5Datatype type(Check(H5Dget_type(dset.id()), "H5Dget_type", path_, ds));
  H5T_class_t cls = H5Tget_class(type.id());
  size_t size = H5Tget_size(type.id());
  at::ScalarType st;
  hid_t mem_type;
  if (cls == H5T_FLOAT && size == 4) {
    st = at::kFloat, mem_type = H5T_NATIVE_FLOAT;
  } else if (cls == H5T_FLOAT && size == 8) {
    st = at::kDouble, mem_type = H5T_NATIVE_DOUBLE;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 8) {
    st = at::kLong, mem_type = H5T_NATIVE_INT64;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 4) {
    st = at::kInt, mem_type = H5T_NATIVE_INT32;
  } else if (cls == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2 && size == 1) {
    st = at::kChar, mem_type = H5T_NATIVE_INT8;
  } else if (cls == H5T_INTEGER && size == 1) {
    st = at::kByte, mem_type = H5T_NATIVE_UINT8;
  } else {
    throw DataError("dataset '" + ds + "' in results file '" + path_ +
                    "' has an unsupported type (expected float32, float64, int64, int32 or int8)");
  }
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  const std::vector<hsize_t> dims = Extent(space.id(), path_, ds);
  const int ndims = int(dims.size());
  std::vector<int64_t> shape(dims.begin(), dims.end());
  if (count < 0) {
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(st).device(at::kCPU));
    if (out.numel() > 0) {
      Check(H5Dread(dset.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), "H5Dread",
            path_, ds);
    }
    return out;
  }
  if (ndims < 1 || first < 0 || first + count > shape[0])
    throw DataError("dataset '" + ds + "' in '" + path_ + "': rows [" + std::to_string(first) +
                    ", " + std::to_string(first + count) + ") are outside its " +
                    (ndims < 1 ? std::string("0-D shape") : std::to_string(shape[0]) + " rows"));
  shape[0] = count;
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(st).device(at::kCPU));
  if (out.numel() == 0) return out;
  std::vector<hsize_t> start(dims.size(), 0), block(dims.begin(), dims.end());
  start[0] = hsize_t(first), block[0] = hsize_t(count);
  Check(
      H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr),
      "H5Sselect_hyperslab", path_, ds);
  H5Dataspace mem(
      Check(H5Screate_simple(ndims, block.data(), nullptr), "H5Screate_simple", path_, ds));
  Check(H5Dread(dset.id(), mem_type, mem.id(), space.id(), H5P_DEFAULT, out.data_ptr()), "H5Dread",
        path_, ds);
  return out;
}

std::vector<std::string> ResultsReader::ReadStrings(const std::string& dataset_path) const {
  const std::string ds = NormalizeObjectPath(dataset_path);
  H5Dataset dset = OpenExistingDataset(*file_, ds);
  H5Datatype type(Check(H5Dget_type(dset.id()), "H5Dget_type", path_, ds));
  H5Dataspace space(Check(H5Dget_space(dset.id()), "H5Dget_space", path_, ds));
  return ReadStringData(type.id(), space.id(), path_, ds, [&](hid_t mem, void* buf) {
    return H5Dread(dset.id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

namespace {

H5Attribute OpenAttribute(const H5File& file, const std::string& object_path,
                          const std::string& name) {
  const std::string obj = NormalizeObjectPath(object_path);
  if (!h5::PathExists(file.id(), obj, file.path())) Missing(file.path(), "object", obj);
  H5Object o = h5::OpenObject(file.id(), obj, file.path());
  const std::string object = obj + "@" + name;
  if (Check(H5Aexists(o.id(), name.c_str()), "H5Aexists", file.path(), object) <= 0) {
    throw DataError("results file '" + file.path() + "' has no attribute '" + name + "' on '" +
                    obj + "'");
  }
  return H5Attribute(
      Check(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT), "H5Aopen", file.path(), object));
}

// Reads a one-element numeric attribute converted to `mem_type`.
void ReadNumericAttribute(const H5File& file, const std::string& object_path,
                          const std::string& name, hid_t mem_type, bool integer_only, void* out) {
  const std::string object = NormalizeObjectPath(object_path) + "@" + name;
  H5Attribute attr = OpenAttribute(file, object_path, name);
  H5Datatype type(Check(H5Aget_type(attr.id()), "H5Aget_type", file.path(), object));
  H5Dataspace space(Check(H5Aget_space(attr.id()), "H5Aget_space", file.path(), object));
  H5T_class_t cls = H5Tget_class(type.id());
  bool ok = cls == H5T_INTEGER || (!integer_only && cls == H5T_FLOAT);
  if (!ok || H5Sget_simple_extent_npoints(space.id()) != 1) {
    throw DataError("attribute '" + name + "' on '" + NormalizeObjectPath(object_path) + "' in '" +
                    file.path() + "' is not a single " + (integer_only ? "integer" : "number"));
  }
  Check(H5Aread(attr.id(), mem_type, out), "H5Aread", file.path(), object);
}

}  // namespace

std::string ResultsReader::ReadStringAttribute(const std::string& object_path,
                                               const std::string& name) const {
  const std::string object = NormalizeObjectPath(object_path) + "@" + name;
  H5Attribute attr = OpenAttribute(*file_, object_path, name);
  H5Datatype type(Check(H5Aget_type(attr.id()), "H5Aget_type", path_, object));
  H5Dataspace space(Check(H5Aget_space(attr.id()), "H5Aget_space", path_, object));
  std::vector<std::string> v =
      ReadStringData(type.id(), space.id(), path_, object,
                     [&](hid_t mem, void* buf) { return H5Aread(attr.id(), mem, buf); });
  if (v.size() != 1) {
    throw DataError("attribute '" + name + "' on '" + NormalizeObjectPath(object_path) + "' in '" +
                    path_ + "' holds " + std::to_string(v.size()) + " strings, expected one");
  }
  return v[0];
}

double ResultsReader::ReadDoubleAttribute(const std::string& object_path,
                                          const std::string& name) const {
  double v = 0;
  ReadNumericAttribute(*file_, object_path, name, H5T_NATIVE_DOUBLE, false, &v);
  return v;
}

int64_t ResultsReader::ReadIntAttribute(const std::string& object_path,
                                        const std::string& name) const {
  int64_t v = 0;
  ReadNumericAttribute(*file_, object_path, name, H5T_NATIVE_INT64, true, &v);
  return v;
}

}  // namespace cliphba::io
