// Checkpoint loading: format detection, dispatch to the per-format loaders (safetensors.cc,
// unpickler.cc, checkpoint_jit.cc), "module." stripping, key checks, and the shared helpers of
// model/checkpoint_detail.h.
#include "model/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/checkpoint_detail.h"
#include "model/unpickler.h"

namespace cliphba::model {

namespace {

constexpr const char* kModulePrefix = "module.";

}  // namespace

namespace detail {

std::string ShapeStr(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::ifstream OpenForRead(const std::string& path, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open checkpoint file: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) throw IoError(path + ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  *size = static_cast<uint64_t>(end);
  return in;
}

}  // namespace detail

using detail::OpenForRead;
using detail::ShapeStr;

const at::Tensor* StateDict::Find(const std::string& name) const {
  for (const auto& [k, v] : entries)
    if (k == name) return &v;
  return nullptr;
}

const char* FormatName(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::kSafetensors:
      return "safetensors";
    case CheckpointFormat::kTorchZip:
      return "torch.save zip";
    case CheckpointFormat::kTorchScript:
      return "TorchScript archive";
  }
  return "?";
}

CheckpointFormat DetectFormat(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = OpenForRead(path, &size);
  unsigned char head[9] = {};
  in.read(reinterpret_cast<char*>(head), std::min<uint64_t>(size, 9));
  if (size >= 9 && head[8] == '{') return CheckpointFormat::kSafetensors;
  if (size >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) {
    bool has_code = false, has_data_pkl = false;
    for (const std::string& r : detail::TorchZipRecordNames(path)) {
      if (r.rfind("code/", 0) == 0 || r == "constants.pkl") has_code = true;
      if (r == "data.pkl") has_data_pkl = true;
    }
    if (has_code) return CheckpointFormat::kTorchScript;
    if (has_data_pkl) return CheckpointFormat::kTorchZip;
    throw DataError(path +
                    ": zip archive is neither a torch.save archive (data.pkl) nor a "
                    "TorchScript archive (code/, constants.pkl)");
  }
  if (size >= 1 && head[0] == 0x80)
    throw DataError(path +
                    ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                    "re-save it with a current torch.save or convert it to safetensors");
  throw DataError(path +
                  ": unrecognized checkpoint format (expected safetensors, a torch.save "
                  "zip archive or a TorchScript archive)");
}

StateDict LoadCheckpoint(const std::string& path) {
  StateDict raw;
  switch (DetectFormat(path)) {
    case CheckpointFormat::kSafetensors:
      raw = LoadSafetensors(path);
      break;
    case CheckpointFormat::kTorchZip:
      raw = LoadTorchZip(path);
      break;
    case CheckpointFormat::kTorchScript:
      raw = LoadTorchScript(path);
      break;
  }
  StateDict out;
  out.code_bearing = raw.code_bearing;
  out.metadata = std::move(raw.metadata);
  std::set<std::string> seen;
  for (auto& [name, t] : raw.entries) {
    std::string key = name;
    if (key.rfind(kModulePrefix, 0) == 0) key = key.substr(std::strlen(kModulePrefix));
    if (!seen.insert(key).second)
      throw DataError(path + ": duplicate tensor name '" + key + "' (after stripping 'module.')");
    out.entries.emplace_back(std::move(key), std::move(t));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

bool IsIgnoredScalarBuffer(const std::string& name) {
  return name == "input_resolution" || name == "context_length" || name == "vocab_size";
}

void CheckKeys(const StateDict& sd,
               const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
               const std::string& source) {
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& [name, shape] : expected)
    if (!IsIgnoredScalarBuffer(name)) want[name] = shape;
  std::vector<std::string> unexpected, misshaped, missing;
  std::set<std::string> have;
  for (const auto& [name, t] : sd.entries) {
    if (IsIgnoredScalarBuffer(name)) continue;
    have.insert(name);
    auto it = want.find(name);
    if (it == want.end()) {
      unexpected.push_back(name);
    } else if (t.sizes() != at::IntArrayRef(it->second)) {
      misshaped.push_back(name + " (expected " + ShapeStr(it->second) + ", got " +
                          ShapeStr(t.sizes()) + ")");
    }
  }
  for (const auto& [name, shape] : expected)
    if (!IsIgnoredScalarBuffer(name) && !have.count(name)) missing.push_back(name);
  if (unexpected.empty() && misshaped.empty() && missing.empty()) return;
  auto list = [](const char* label, const std::vector<std::string>& v) {
    if (v.empty()) return std::string();
    std::string s = std::string("\n  ") + std::to_string(v.size()) + " " + label + ":";
    for (const std::string& x : v) s += " " + x + ";";
    s.pop_back();
    return s;
  };
  throw DataError(source + ": checkpoint does not match the model" + list("missing", missing) +
                  list("unexpected", unexpected) + list("mis-shaped", misshaped));
}

namespace internal {
// The contract's dtype policy: floating -> float32, integral -> int64, contiguous, own memory.
at::Tensor NormalizeLoadedTensor(const at::Tensor& t, const std::string& path,
                                 const std::string& name) {
  at::Tensor c = t.detach();
  if (c.device().type() != at::kCPU) c = c.cpu();
  if (at::isFloatingType(c.scalar_type())) {
    c = c.to(at::kFloat);
  } else if (at::isIntegralType(c.scalar_type(), /*includeBool=*/false)) {
    c = c.to(at::kLong);
  } else {
    throw DataError(path + ": tensor '" + name + "' has unsupported dtype " +
                    std::string(c10::toString(c.scalar_type())) +
                    " (expected a floating-point or integer tensor)");
  }
  return c.clone(at::MemoryFormat::Contiguous);
}
}  // namespace internal

}  // namespace cliphba::model
