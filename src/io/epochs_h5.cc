#include "io/epochs_h5.h"

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/h5.h"

namespace cliphba::io {

namespace {

using h5::Check;

// Dataset creation without modification times, so equal content gives equal bytes.
H5PropertyList UntimedDcpl(const std::string& file) {
  H5PropertyList dcpl = h5::CreatePlist(H5P_DATASET_CREATE, file);
  Check(H5Pset_obj_track_times(dcpl.id(), 0), "H5Pset_obj_track_times", file);
  return dcpl;
}

void WriteNumeric(hid_t group, const char* name, const at::Tensor& t, hid_t mem_type,
                  const std::string& file) {
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  H5Dataspace space(Check(H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                          "H5Screate_simple", file, name));
  H5PropertyList dcpl = UntimedDcpl(file);
  H5Dataset ds(
      Check(H5Dcreate2(group, name, mem_type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
            "H5Dcreate2", file, name));
  Check(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), "H5Dwrite", file,
        name);
}

void WriteStrings(hid_t group, const char* name, const std::vector<std::string>& values,
                  const std::string& file) {
  H5Datatype type = h5::Utf8StringType(file);
  hsize_t n = values.size();
  H5Dataspace space(Check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", file, name));
  H5PropertyList dcpl = UntimedDcpl(file);
  H5Dataset ds(
      Check(H5Dcreate2(group, name, type.id(), space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
            "H5Dcreate2", file, name));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n > 0)
    Check(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "H5Dwrite",
          file, name);
}

void WriteDoubleAttribute(hid_t obj, const char* name, double v, const std::string& file) {
  H5Dataspace space(Check(H5Screate(H5S_SCALAR), "H5Screate", file, name));
  H5Attribute a(
      Check(H5Acreate2(obj, name, H5T_NATIVE_DOUBLE, space.id(), H5P_DEFAULT, H5P_DEFAULT),
            "H5Acreate2", file, name));
  Check(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, &v), "H5Awrite", file, name);
}

void WriteStringAttribute(hid_t obj, const char* name, const std::string& v,
                          const std::string& file) {
  H5Datatype type = h5::Utf8StringType(file);
  H5Dataspace space(Check(H5Screate(H5S_SCALAR), "H5Screate", file, name));
  H5Attribute a(Check(H5Acreate2(obj, name, type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
                      "H5Acreate2", file, name));
  const char* p = v.c_str();
  Check(H5Awrite(a.id(), type.id(), &p), "H5Awrite", file, name);
}

void CheckShapes(const std::string& path, const Epochs& e) {
  auto fail = [&](const std::string& what) { throw DataError(path + ": " + what); };
  if (!e.data.defined() || e.data.dim() != 3 || e.data.scalar_type() != at::kFloat)
    fail("/epochs/data: expected float32 (trials, channels, times)");
  if (!e.condition.defined() || e.condition.dim() != 1 || e.condition.scalar_type() != at::kLong ||
      e.condition.size(0) != e.data.size(0))
    fail("/epochs/condition: expected int64 (trials) with one entry per trial");
  if (e.condition.numel() > 0) {
    const int64_t lo = e.condition.min().item<int64_t>(), hi = e.condition.max().item<int64_t>();
    if (lo < 0 || hi >= int64_t(e.condition_names.size()))
      fail("/epochs/condition: expected indices in [0, " +
           std::to_string(e.condition_names.size()) + "), got " + std::to_string(lo) + ".." +
           std::to_string(hi));
  }
  if (!e.channel_names.empty() && int64_t(e.channel_names.size()) != e.data.size(1))
    fail("/epochs/channel_names: expected one name per channel");
  if (!(e.sfreq > 0)) fail("/epochs sfreq: expected > 0 Hz");
}

}  // namespace

void WriteEpochsH5(const std::string& path, const Epochs& e) {
  CheckShapes(path, e);
  AtomicFile out(path, "epochs file");  // removes the partial file on an exception
  const std::string& partial = out.partial_path();
  h5::SilenceErrorStack();
  {
    H5PropertyList fcpl = h5::CreatePlist(H5P_FILE_CREATE, partial);
    H5File file(Check(H5Fcreate(partial.c_str(), H5F_ACC_TRUNC, fcpl.id(), H5P_DEFAULT),
                      "H5Fcreate", partial),
                partial);
    h5::DetachOnUnwind guard(partial);  // a failed write: the file closes into memory (h5.h)
    H5PropertyList gcpl = h5::CreatePlist(H5P_GROUP_CREATE, partial);
    Check(H5Pset_obj_track_times(gcpl.id(), 0), "H5Pset_obj_track_times", partial);
    H5Group g(Check(H5Gcreate2(file.id(), "epochs", H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                    "H5Gcreate2", partial, "/epochs"));
    const at::Tensor data = e.data.contiguous(), condition = e.condition.contiguous();
    WriteNumeric(g.id(), "data", data, H5T_NATIVE_FLOAT, partial);
    WriteNumeric(g.id(), "condition", condition, H5T_NATIVE_INT64, partial);
    WriteStrings(g.id(), "condition_names", e.condition_names, partial);
    if (!e.channel_names.empty()) WriteStrings(g.id(), "channel_names", e.channel_names, partial);
    WriteDoubleAttribute(g.id(), "sfreq", e.sfreq, partial);
    WriteDoubleAttribute(g.id(), "tmin_ms", e.tmin_ms, partial);
    if (!e.participant.empty()) WriteStringAttribute(g.id(), "participant", e.participant, partial);
    g.reset();
    h5::CloseWritten(file, partial);
  }
  out.Commit();
}

}  // namespace cliphba::io
