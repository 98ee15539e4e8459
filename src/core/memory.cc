#include "core/memory.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cliphba {

HeapPolicy ReuseFreedMemory() {
  HeapPolicy p;
  const char* opt_out = std::getenv("CLIPHBA_GLIBC_MALLOC_DEFAULTS");
  if (opt_out != nullptr && std::strcmp(opt_out, "") != 0 && std::strcmp(opt_out, "0") != 0)
    return p;
#if defined(__GLIBC__)
  constexpr std::size_t kMmapThreshold = std::size_t(32) << 20;  // DEFAULT_MMAP_THRESHOLD_MAX
  constexpr std::size_t kTrimThreshold = std::size_t(1) << 30;
  // Setting either also turns off glibc's dynamic threshold adjustment.
  if (mallopt(M_MMAP_THRESHOLD, int(kMmapThreshold)) == 1) p.mmap_threshold = kMmapThreshold;
  if (mallopt(M_TRIM_THRESHOLD, int(kTrimThreshold)) == 1) p.trim_threshold = kTrimThreshold;
  p.applied = p.mmap_threshold != 0 || p.trim_threshold != 0;
#endif
  return p;
}

}  // namespace cliphba
