#include "meg/rdm_stack.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/results_reader.h"
#include "io/results_store.h"

namespace cliphba::meg {

namespace {

// Python's float floor division a // b (CPython float_divmod), not floor(a / b): the two differ
// when a / b rounds up to an integer, e.g. 1.0 // 0.1 == 9.0 but floor(1.0 / 0.1) == 10.
int64_t FloorDiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return 0;
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return int64_t(floordiv);
}

std::string Parent(const std::string& dataset) {
  const size_t slash = dataset.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return dataset.substr(0, slash);
}

std::string Join(const std::string& group, const std::string& name) {
  return group == "/" ? "/" + name : group + "/" + name;
}

// "npy", "h5" or throws (IoError: missing, DataError: neither magic).
std::string Sniff(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path + ": cannot open the MEG RDM file (meg.rdm.path)");
  char magic[8] = {0};
  f.read(magic, 8);
  if (f.gcount() >= 6 && std::string(magic, 6) == "\x93NUMPY") return "npy";
  if (f.gcount() == 8 && std::string(magic, 8) == "\x89HDF\r\n\x1a\n") return "h5";
  throw DataError(path +
                  ": meg.rdm.path is neither an NPY nor an HDF5 file (checked the magic "
                  "bytes)");
}

void CheckNames(const std::vector<std::string>& names, const std::string& source) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty())
      throw DataError(source + ": object name " + std::to_string(i) + " is empty");
    if (!seen.insert(names[i]).second)
      throw DataError(source + ": object name '" + names[i] + "' appears more than once (entry " +
                      std::to_string(i) + "); names must identify RDM rows uniquely");
  }
}

// n with n (n - 1) / 2 == m, or -1.
int64_t ObjectsFromPairs(int64_t m) {
  int64_t n = int64_t(std::llround((1.0 + std::sqrt(1.0 + 8.0 * double(m))) / 2.0));
  return n * (n - 1) / 2 == m ? n : -1;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return "(" + fmt::format("{}", fmt::join(shape, ", ")) + ")";
}

}  // namespace

int64_t TimeAxis::IndexOf(double ms) const { return FloorDiv(ms - start_ms, step_ms); }

int64_t TimeAxis::ZeroMsPosition() const { return FloorDiv(0.0 - start_ms, step_ms) + 1; }

struct RdmStack::Impl {
  std::string path;
  std::string dataset;  // HDF5 only
  bool is_h5 = false;
  bool condensed = false;
  int64_t P = 0, T = 0, n = 0, m = 0;
  at::ScalarType dtype = at::kFloat;
  at::Tensor mapped;                        // NPY: the whole array, memory-mapped
  std::shared_ptr<io::ResultsReader> file;  // HDF5: open read-only
  std::vector<std::string> names, labels;
  TimeAxis axis;      // the axis callers see (after smoothing)
  TimeAxis raw_axis;  // the file's axis (raw_axis.size: the file's timepoints)
  int64_t smooth = 1;  // meg.rdm.smooth_ms in file samples (1 = off)
  bool nan_zero = false;
  double tolerance = 1e-6;

  // Raw block of participant p, file timepoints [t0, t0 + count): (count, n, n) or (count, m).
  at::Tensor Block(int64_t p, int64_t t0, int64_t count) const;
  // Validated (count, k, k) float32 of file timepoints [t0, t0 + count) (RdmStack::Read without
  // smoothing).
  at::Tensor ReadRaw(int64_t p, int64_t t0, int64_t count, const std::vector<int64_t>& idx) const;
};

at::Tensor RdmStack::Impl::Block(int64_t p, int64_t t0, int64_t count) const {
  if (!is_h5) return mapped.select(0, p).narrow(0, t0, count);
  std::vector<int64_t> start = {p, t0, 0}, block = {1, count};
  if (condensed) {
    block.push_back(m);
  } else {
    start.push_back(0);
    block.insert(block.end(), {n, n});
  }
  // (1, count, ...) -> (count, ...): the participant dimension of the slab is dropped.
  return file->ReadSlab(dataset, start, block, dtype).squeeze(0);
}

RdmStack RdmStack::Open(const config::MegRdmOptions& o) {
  if (o.path.empty())
    throw ConfigError("meg.rdm.path is required: the NPY or HDF5 file of MEG RDM stacks");
  auto impl = std::make_shared<Impl>();
  impl->path = o.path;
  impl->nan_zero = o.nan_policy == "zero";
  if (o.nan_policy != "zero" && o.nan_policy != "error")
    throw ConfigError("meg.rdm.nan_policy: expected error or zero, got '" + o.nan_policy + "'");
  impl->tolerance = o.symmetry_tolerance;
  const std::string kind = Sniff(o.path);
  std::vector<int64_t> shape;
  if (kind == "npy") {
    io::NpyHeader h = io::ReadNpyHeader(o.path);
    shape = h.shape;
    impl->dtype = h.dtype;
    if (h.dtype != at::kFloat && h.dtype != at::kDouble)
      throw DataError(o.path + ": MEG RDM dtype '" + h.descr + "', expected float32 or float64");
    if (o.names.empty())
      throw ConfigError("meg.rdm.names is required for the NPY file " + o.path +
                        ": the object names in RDM order (.txt or CSV)");
    if (!(o.time_step_ms > 0) || !std::isfinite(o.time_step_ms) || !std::isfinite(o.time_start_ms))
      throw ConfigError("meg.rdm.time_step_ms must be a finite number > 0 (got " +
                        std::to_string(o.time_step_ms) + ")");
    impl->axis.start_ms = o.time_start_ms;
    impl->axis.step_ms = o.time_step_ms;
  } else {
    impl->is_h5 = true;
    impl->dataset = o.dataset.empty() ? "/meg/rdm" : o.dataset;
    if (impl->dataset[0] != '/') impl->dataset = "/" + impl->dataset;
    impl->file = std::make_shared<io::ResultsReader>(o.path);
    const io::ResultsReader& reader = *impl->file;
    if (!reader.Exists(impl->dataset))
      throw DataError(o.path + ": no dataset '" + impl->dataset +
                      "' (meg.rdm.dataset); expected the (P, T, n, n) or (P, T, m) RDM stacks");
    const io::DatasetInfo info = reader.Describe(impl->dataset);
    shape = info.shape;
    const size_t size = info.element_size;
    if (!info.floating_point || (size != 4 && size != 8))
      throw DataError(o.path + ": dataset '" + impl->dataset +
                      "' must hold float32 or float64 dissimilarities");
    impl->dtype = size == 4 ? at::kFloat : at::kDouble;
    const std::string group = Parent(impl->dataset);
    // Time axis: attributes of the dataset, else of its group (/meg).
    auto read_time = [&](const char* name) {
      for (const std::string& obj : {impl->dataset, group}) {
        if (reader.HasAttribute(obj, name)) return reader.ReadDoubleAttribute(obj, name);
      }
      throw DataError(o.path + ": attribute '" + name + "' is missing on '" + impl->dataset +
                      "' and on '" + group + "'; expected the time axis in ms");
    };
    impl->axis.start_ms = read_time("time_start_ms");
    impl->axis.step_ms = read_time("time_step_ms");
    if (!(impl->axis.step_ms > 0) || !std::isfinite(impl->axis.step_ms) ||
        !std::isfinite(impl->axis.start_ms))
      throw DataError(o.path + ": attribute time_step_ms of '" + group + "' is " +
                      std::to_string(impl->axis.step_ms) + ", expected a finite number > 0");
    if (o.names.empty()) {
      const std::string names_ds = Join(group, "names");
      if (!reader.Exists(names_ds))
        throw DataError(o.path + ": no dataset '" + names_ds +
                        "' with the object names; write it or set meg.rdm.names");
      impl->names = reader.ReadStrings(names_ds);
    }
    const std::string parts_ds = Join(group, "participants");
    if (reader.Exists(parts_ds)) impl->labels = reader.ReadStrings(parts_ds);
  }
  const std::string what = impl->is_h5 ? o.path + ": dataset '" + impl->dataset + "'" : o.path;
  if (shape.size() == 4) {
    if (shape[2] != shape[3])
      throw DataError(what + " has shape " + ShapeText(shape) +
                      ": expected square RDMs (P, T, n, n)");
    impl->n = shape[2];
    impl->m = impl->n * (impl->n - 1) / 2;
  } else if (shape.size() == 3) {
    impl->condensed = true;
    impl->m = shape[2];
    impl->n = ObjectsFromPairs(impl->m);
    if (impl->n < 0)
      throw DataError(what + " has shape " + ShapeText(shape) + ": the last dimension (" +
                      std::to_string(impl->m) +
                      ") is not a number of pairs n (n - 1) / 2 of a condensed RDM");
  } else {
    throw DataError(what + " has rank " + std::to_string(shape.size()) + " " + ShapeText(shape) +
                    ": expected rank 4 (participants, timepoints, objects, objects) or rank 3 "
                    "(participants, timepoints, pairs)");
  }
  impl->P = shape[0];
  impl->T = shape[1];
  if (impl->P < 1 || impl->T < 1 || impl->n < 2)
    throw DataError(what + " has shape " + ShapeText(shape) +
                    ": expected at least 1 participant, 1 timepoint and 2 objects");
  impl->axis.size = impl->T;
  std::string names_source = o.path + " (/meg/names)";
  if (!o.names.empty()) {
    impl->names = io::ReadNameList(o.names);
    names_source = o.names + " (meg.rdm.names)";
  } else if (impl->is_h5) {
    names_source = o.path + " (" + Join(Parent(impl->dataset), "names") + ")";
  }
  CheckNames(impl->names, names_source);
  if (int64_t(impl->names.size()) != impl->n)
    throw DataError(names_source + " lists " + std::to_string(impl->names.size()) +
                    " object names, but " + what + " has " + std::to_string(impl->n) +
                    " objects (shape " + ShapeText(shape) + ")");
  if (impl->labels.empty()) {
    for (int64_t p = 0; p < impl->P; ++p) impl->labels.push_back(std::to_string(p));
  } else if (int64_t(impl->labels.size()) != impl->P) {
    throw DataError(o.path + ": " + std::to_string(impl->labels.size()) +
                    " participant labels in '" + Join(Parent(impl->dataset), "participants") +
                    "', but the RDM stacks have " + std::to_string(impl->P) + " participants");
  }
  impl->raw_axis = impl->axis;
  if (o.smooth_ms > 0) {
    // The reference's smoothen_rdm: keep timepoint 0, then average every `w` following samples
    // (a trailing remainder is dropped); the new axis starts at the same time with step w * step.
    const double ratio = o.smooth_ms / impl->axis.step_ms;
    const int64_t w = int64_t(std::llround(ratio));
    if (w < 1 || std::abs(ratio - double(w)) > 1e-6 * std::max(1.0, ratio))
      throw ConfigError(fmt::format(
          "meg.rdm.smooth_ms = {:g} ms is not a whole multiple of the time step {:g} ms of {}",
          o.smooth_ms, impl->axis.step_ms, o.path));
    if (impl->raw_axis.size < 1 + w)
      throw DataError(fmt::format(
          "{}: {} timepoints cannot be smoothed in blocks of {} (meg.rdm.smooth_ms = {:g} ms): "
          "at least {} are needed",
          o.path, impl->raw_axis.size, w, o.smooth_ms, 1 + w));
    impl->smooth = w;
    impl->T = 1 + (impl->raw_axis.size - 1) / w;
    impl->axis.step_ms = impl->raw_axis.step_ms * double(w);
    impl->axis.size = impl->T;
  }
  if (!impl->is_h5) {
    io::NpyReadOptions ro;
    ro.mmap_threshold_bytes = 1;  // always map: the stacks may be far larger than memory
    impl->mapped = io::ReadNpy(o.path, ro);
  }
  return RdmStack(impl);
}

int64_t RdmStack::participants() const { return impl_->P; }
int64_t RdmStack::timepoints() const { return impl_->T; }
int64_t RdmStack::objects() const { return impl_->n; }
const std::vector<std::string>& RdmStack::names() const { return impl_->names; }
const std::vector<std::string>& RdmStack::participant_labels() const { return impl_->labels; }
const TimeAxis& RdmStack::time() const { return impl_->axis; }
const std::string& RdmStack::source() const { return impl_->path; }
bool RdmStack::condensed() const { return impl_->condensed; }

at::Tensor RdmStack::Read(int64_t p, int64_t t0, int64_t count,
                          const std::vector<int64_t>& idx) const {
  const Impl& s = *impl_;
  if (s.smooth == 1) return s.ReadRaw(p, t0, count, idx);
  if (t0 < 0 || count < 0 || t0 + count > s.T)
    throw ConfigError(s.path + ": timepoints [" + std::to_string(t0) + ", " +
                      std::to_string(t0 + count) + ") are outside the " + std::to_string(s.T) +
                      " timepoints of the smoothed MEG RDMs (meg.rdm.smooth_ms)");
  if (count == 0) return s.ReadRaw(p, 0, 0, idx);
  // Output t = 0 is file sample 0; output t >= 1 is the mean of file samples
  // [1 + (t - 1) w, 1 + t w). One contiguous file read covers the range.
  const int64_t w = s.smooth;
  auto first = [&](int64_t t) { return t == 0 ? 0 : 1 + (t - 1) * w; };
  const int64_t lo = first(t0), hi = first(t0 + count - 1) + (t0 + count - 1 == 0 ? 1 : w);
  const at::Tensor raw = s.ReadRaw(p, lo, hi - lo, idx).to(at::kDouble);
  std::vector<at::Tensor> out;
  for (int64_t t = t0; t < t0 + count; ++t) {
    const int64_t a = first(t) - lo, len = t == 0 ? 1 : w;
    out.push_back(raw.narrow(0, a, len).mean(0));
  }
  return at::stack(out).to(at::kFloat);
}

at::Tensor RdmStack::Impl::ReadRaw(int64_t p, int64_t t0, int64_t count,
                                   const std::vector<int64_t>& idx) const {
  const Impl& s = *this;
  const int64_t T = s.raw_axis.size;
  const TimeAxis& axis = s.raw_axis;
  if (p < 0 || p >= s.P)
    throw ConfigError(s.path + ": participant index " + std::to_string(p) +
                      " is out of range: the file has " + std::to_string(s.P) +
                      " participants (0.." + std::to_string(s.P - 1) + ")");
  if (t0 < 0 || count < 0 || t0 + count > T)
    throw ConfigError(s.path + ": timepoints [" + std::to_string(t0) + ", " +
                      std::to_string(t0 + count) + ") are outside the " + std::to_string(T) +
                      " timepoints of the MEG RDMs");
  const int64_t k = int64_t(idx.size());
  for (int64_t v : idx)
    if (v < 0 || v >= s.n)
      throw ConfigError(s.path + ": object index " + std::to_string(v) + " is outside the " +
                        std::to_string(s.n) + " objects of the MEG RDMs");
  at::Tensor index = at::tensor(idx, at::kLong);
  at::Tensor block = s.Block(p, t0, count);
  at::Tensor sub;  // (count, k, k), source dtype
  if (!s.condensed) {
    sub = block.index_select(1, index).index_select(2, index);
  } else {
    std::vector<int64_t> pos(size_t(k * k), 0);
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = 0; b < k; ++b) {
        int64_t i = std::min(idx[a], idx[b]), j = std::max(idx[a], idx[b]);
        if (i != j) pos[size_t(a * k + b)] = i * s.n - i * (i + 1) / 2 + (j - i - 1);
      }
    sub = block.index_select(1, at::tensor(pos, at::kLong)).view({count, k, k});
    if (k > 0) sub.diagonal(0, 1, 2).zero_();
  }
  sub = sub.contiguous();
  if (sub.numel() == 0) return sub.to(at::kFloat);
  auto entry = [&](int64_t flat) {
    const int64_t t = flat / (k * k), a = (flat / k) % k, b = flat % k;
    return "participant " + s.labels[size_t(p)] + " (index " + std::to_string(p) + "), timepoint " +
           std::to_string(t0 + t) + " (" + fmt::format("{}", axis.TimeAt(t0 + t)) +
           " ms), entry (" + std::to_string(idx[size_t(a)]) + ", " +
           std::to_string(idx[size_t(b)]) + ") = ('" + s.names[size_t(idx[size_t(a)])] + "', '" +
           s.names[size_t(idx[size_t(b)])] + "')";
  };
  at::Tensor bad = sub.isfinite().logical_not();
  const int64_t n_bad = bad.sum().item<int64_t>();
  if (n_bad > 0) {
    if (!s.nan_zero) {
      const int64_t first = bad.flatten().nonzero()[0][0].item<int64_t>();
      throw DataError(s.path + ": " + std::to_string(n_bad) +
                      " NaN/Inf value(s) in the MEG RDMs; "
                      "first at " +
                      entry(first) +
                      ". Fix the data or set meg.rdm.nan_policy: zero to replace them by 0");
    }
    sub.masked_fill_(bad, 0.0);
    LOG_WARN(
        "{}: replaced {} NaN/Inf value(s) of participant {} in timepoints [{}, {}) by 0 "
        "(meg.rdm.nan_policy: zero)",
        s.path, n_bad, s.labels[size_t(p)], t0, t0 + count);
  }
  if (!s.condensed) {
    at::Tensor asym = (sub - sub.transpose(1, 2)).abs().flatten();
    const int64_t worst = asym.argmax().item<int64_t>();
    const double worst_v = asym[worst].item<double>();
    if (worst_v > s.tolerance)
      throw DataError(s.path + ": MEG RDM is not symmetric: |a_ij - a_ji| = " +
                      fmt::format("{:.6g}", worst_v) + " at " + entry(worst) +
                      " exceeds meg.rdm.symmetry_tolerance " + fmt::format("{:g}", s.tolerance));
    at::Tensor diag = sub.diagonal(0, 1, 2).abs();  // (count, k)
    const int64_t wd = diag.flatten().argmax().item<int64_t>();
    const double wd_v = diag.flatten()[wd].item<double>();
    if (wd_v > s.tolerance) {
      const int64_t t = wd / k, a = wd % k;
      throw DataError(s.path + ": MEG RDM diagonal is not zero: |a_ii| = " +
                      fmt::format("{:.6g}", wd_v) + " at " + entry(t * k * k + a * k + a) +
                      " exceeds meg.rdm.symmetry_tolerance " + fmt::format("{:g}", s.tolerance));
    }
  }
  return sub.to(at::kFloat);
}

at::Tensor RdmStack::ReadMean(const std::vector<int64_t>& ps, int64_t t0, int64_t count,
                              const std::vector<int64_t>& idx) const {
  if (ps.empty()) throw ConfigError(impl_->path + ": no participants selected for the mean RDM");
  at::Tensor sum;
  for (int64_t p : ps) {
    at::Tensor r = Read(p, t0, count, idx).to(at::kDouble);
    sum = sum.defined() ? sum.add_(r) : r;
  }
  return sum.div_(double(ps.size())).to(at::kFloat);
}

at::Tensor RdmStack::ReadParticipant(int64_t p) const {
  std::vector<int64_t> all(size_t(impl_->n));
  for (int64_t i = 0; i < impl_->n; ++i) all[size_t(i)] = i;
  return Read(p, 0, impl_->T, all);
}

RdmStack::Range RdmStack::ValueRange(int64_t chunk) const {
  return ValueRange(0, impl_->T, chunk);
}

RdmStack::Range RdmStack::ValueRange(int64_t t0, int64_t count, int64_t chunk) const {
  std::vector<int64_t> all(static_cast<size_t>(impl_->n));
  for (int64_t i = 0; i < impl_->n; ++i) all[size_t(i)] = i;
  Range r{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  chunk = std::max<int64_t>(1, chunk);
  for (int64_t p = 0; p < impl_->P; ++p)
    for (int64_t t = t0; t < t0 + count; t += chunk) {
      at::Tensor x = Read(p, t, std::min(chunk, t0 + count - t), all);
      r.min = std::min(r.min, x.min().item<double>());
      r.max = std::max(r.max, x.max().item<double>());
    }
  return r;
}

at::Tensor RescaleMinMax(const at::Tensor& stack) {
  if (stack.dim() != 3 || stack.size(1) != stack.size(2))
    throw DataError("RescaleMinMax: expected a (T, k, k) stack of RDMs");
  at::Tensor x = stack.to(at::kDouble);
  return RescaleMinMax(stack, x.min().item<double>(), x.max().item<double>());
}

at::Tensor RescaleMinMax(const at::Tensor& stack, double lo, double hi) {
  if (stack.dim() != 3 || stack.size(1) != stack.size(2))
    throw DataError("RescaleMinMax: expected a (T, k, k) stack of RDMs");
  at::Tensor x = stack.to(at::kDouble);
  if (!(hi > lo))
    throw DataError("MEG RDM min-max rescale (meg.rdm.rescale: minmax): every value equals " +
                    fmt::format("{:g}", lo) + ", so [min, max] cannot be mapped to [0, 1]");
  at::Tensor out = (x - lo) / (hi - lo);
  out.diagonal(0, 1, 2).zero_();
  return out.to(stack.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
}

std::vector<int64_t> IndicesOfNames(const std::vector<std::string>& names,
                                    const std::vector<std::string>& wanted,
                                    const std::string& names_source,
                                    const std::string& wanted_source) {
  std::unordered_map<std::string, int64_t> where;
  for (size_t i = 0; i < names.size(); ++i) where.emplace(names[i], int64_t(i));
  std::vector<int64_t> out;
  std::vector<std::string> missing;
  std::unordered_set<std::string> seen;
  for (const std::string& w : wanted) {
    if (!seen.insert(w).second)
      throw DataError(wanted_source + ": name '" + w + "' is listed more than once");
    auto it = where.find(w);
    if (it == where.end()) {
      missing.push_back(w);
    } else {
      out.push_back(it->second);
    }
  }
  if (!missing.empty()) {
    std::vector<std::string> shown(missing.begin(),
                                   missing.begin() + std::min<size_t>(missing.size(), 10));
    throw DataError(std::to_string(missing.size()) + " of the " + std::to_string(wanted.size()) +
                    " names of " + wanted_source + " are not among the " +
                    std::to_string(names.size()) + " MEG RDM objects of " + names_source + ": '" +
                    fmt::format("{}", fmt::join(shown, "', '")) + "'" +
                    (missing.size() > shown.size() ? ", ..." : ""));
  }
  return out;
}

}  // namespace cliphba::meg
