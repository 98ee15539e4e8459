#include "stats/common.h"

#include "core/error.h"

namespace cliphba::stats {

Tail ParseTail(const std::string& text) {
  if (text == "-1") return Tail::kLower;
  if (text == "0") return Tail::kTwo;
  if (text == "1") return Tail::kUpper;
  throw ConfigError("tail '" + text + "' is invalid; expected -1 (lower), 0 (two-sided) or 1 (upper)");
}

}  // namespace cliphba::stats
