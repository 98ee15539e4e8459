#include "model/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cliphba::model {

Precision ParsePrecision(const std::string& name, const std::string& key) {
  if (name == "float32") return Precision::kFloat32;
  if (name == "bfloat16") return Precision::kBFloat16;
  throw ConfigError(key + ": expected float32 or bfloat16, got '" + name + "'");
}

const char* PrecisionName(Precision p) {
  return p == Precision::kBFloat16 ? "bfloat16" : "float32";
}

// LibTorch 2.4 replaced the per-device autocast functions (is_cpu_enabled, set_enabled for CUDA,
// get_autocast_gpu_dtype, ...) by ones that take the device type; later releases drop the old ones.
namespace {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool AutocastEnabled(at::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
void SetAutocastEnabled(at::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
at::ScalarType AutocastDtype(at::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
void SetAutocastDtype(at::DeviceType d, at::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
bool AutocastEnabled(at::DeviceType d) {
  return d == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(at::DeviceType d, bool on) {
  if (d == at::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
at::ScalarType AutocastDtype(at::DeviceType d) {
  return d == at::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                        : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(at::DeviceType d, at::ScalarType t) {
  if (d == at::kCUDA)
    at::autocast::set_autocast_gpu_dtype(t);
  else
    at::autocast::set_autocast_cpu_dtype(t);
}
#endif
}  // namespace

AutocastScope::AutocastScope(Precision p, at::DeviceType device) : device_(device) {
  if (p != Precision::kBFloat16) return;
  active_ = true;
  prev_enabled_ = AutocastEnabled(device_);
  prev_dtype_ = AutocastDtype(device_);
  SetAutocastDtype(device_, at::kBFloat16);
  SetAutocastEnabled(device_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  SetAutocastEnabled(device_, prev_enabled_);
  SetAutocastDtype(device_, prev_dtype_);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

NoAutocastScope::NoAutocastScope()
    : prev_cpu_(AutocastEnabled(at::kCPU)), prev_gpu_(AutocastEnabled(at::kCUDA)) {
  SetAutocastEnabled(at::kCPU, false);
  SetAutocastEnabled(at::kCUDA, false);
}

NoAutocastScope::~NoAutocastScope() {
  SetAutocastEnabled(at::kCPU, prev_cpu_);
  SetAutocastEnabled(at::kCUDA, prev_gpu_);
}

at::Tensor FrozenWeightCast::operator()(const at::Tensor& w) {
  if (!w.defined() || w.scalar_type() != at::kFloat || w.requires_grad()) return w;
  const at::DeviceType d = w.device().type();
  if ((d != at::kCPU && d != at::kCUDA) || !AutocastEnabled(d) ||
      AutocastDtype(d) != at::kBFloat16)
    return w;
  const bool fresh = cast_.defined() && source_.is_same(w) && w.storage().is_alias_of(storage_) &&
                     offset_ == w.storage_offset() && version_ == w._version();
  if (!fresh) {
    source_ = w;
    storage_ = w.storage();
    offset_ = w.storage_offset();
    version_ = w._version();
    cast_ = w.to(at::kBFloat16);
  }
  return cast_;
}

void FrozenWeightCast::Reset() {
  source_ = at::Tensor();
  storage_ = c10::Storage();
  offset_ = version_ = -1;
  cast_ = at::Tensor();
}

bool CpuHasFastBf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w)
      if (w == "amx_bf16" || w == "avx512_bf16") return true;
    return false;
  }
  return false;
}

}  // namespace cliphba::model
