// PRIVATE to src/predict: what the files of a model look like (the `format` values the trainers
// and `convert` write) and the small readers the predict sources share.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace cliphba::predict::detail {

inline constexpr const char* kStage1Format = "cliphba behavior DoRA checkpoint";  // train behavior
inline constexpr const char* kMegFormat = "cliphba MEG checkpoint";               // train meg
inline constexpr const char* kConvertedFormat = "cliphba CLIP-HBA behavior model";  // convert

inline bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The JSON document at `path`. IoError "<path>: <missing>" if it cannot be opened, DataError if
// it is not JSON.
inline nlohmann::json ReadJsonFile(const std::string& path, const std::string& missing) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": " + missing);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace cliphba::predict::detail
