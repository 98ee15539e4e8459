#include "data/prompts.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/text_file.h"

namespace cliphba::data {

std::vector<std::string> ReadPrompts(const std::string& path, const std::string& setting) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::ReadTextFile(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": not valid JSON (" + setting + "): " + e.what());
  }
  if (!j.is_array() || j.empty())
    throw DataError(path + ": expected a non-empty JSON list of prompt strings (" + setting + ")");
  std::vector<std::string> prompts;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string())
      throw DataError(path + ": entry " + std::to_string(i) + " is not a string (" + setting + ")");
    std::string p = j[i].get<std::string>();
    if (p.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
      throw DataError(path + ": entry " + std::to_string(i) +
                      " is an empty prompt; every dimension needs its text (" + setting + ")");
    prompts.push_back(std::move(p));
  }
  return prompts;
}

}  // namespace cliphba::data
