#include "core/version.h"

#ifndef CLIPHBA_VERSION
#error "CLIPHBA_VERSION must be defined by the build"
#endif

namespace cliphba {
const char* Version() { return CLIPHBA_VERSION; }
}  // namespace cliphba
