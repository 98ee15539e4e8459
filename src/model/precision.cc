#include "model/precision.h"

#include <ATen/autocast_mode.h>

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

AutocastScope::AutocastScope(Precision p, at::DeviceType device) : device_(device) {
  if (p != Precision::kBFloat16) return;
  active_ = true;
  if (device_ == at::kCUDA) {
    prev_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    prev_enabled_ = at::autocast::is_cpu_enabled();
    prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (device_ == at::kCUDA) {
    at::autocast::set_enabled(prev_enabled_);
    at::autocast::set_autocast_gpu_dtype(prev_dtype_);
  } else {
    at::autocast::set_cpu_enabled(prev_enabled_);
    at::autocast::set_autocast_cpu_dtype(prev_dtype_);
  }
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

NoAutocastScope::NoAutocastScope()
    : prev_cpu_(at::autocast::is_cpu_enabled()), prev_gpu_(at::autocast::is_enabled()) {
  at::autocast::set_cpu_enabled(false);
  at::autocast::set_enabled(false);
}

NoAutocastScope::~NoAutocastScope() {
  at::autocast::set_cpu_enabled(prev_cpu_);
  at::autocast::set_enabled(prev_gpu_);
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
