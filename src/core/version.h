// Build identity of cliphba (set by CMake).
#pragma once

namespace cliphba {

// "MAJOR.MINOR.PATCH" of this build.
const char* Version();

}  // namespace cliphba
