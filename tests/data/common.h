// Shared helpers of the data tests: a scratch folder per process and the files a cohort writes.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace cliphba::data::testing {

// An empty folder CLIPHBA_TEST_OUT_DIR/<suite>/<name>_<pid>: ctest runs every test in its own
// process, in parallel, and several of them generate the same cohort.
inline std::filesystem::path TestDir(const std::string& suite, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(CLIPHBA_TEST_OUT_DIR) / suite /
                                    (name + "_" + std::to_string(static_cast<long>(getpid())));
  std::filesystem::remove_all(dir);
  return dir;
}

inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline nlohmann::json ReadJson(const std::filesystem::path& path) {
  return nlohmann::json::parse(ReadAll(path));
}

}  // namespace cliphba::data::testing
