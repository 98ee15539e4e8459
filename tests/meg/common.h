// Shared helpers of the meg tests: paths of the reference files and of scratch outputs, and the
// message of an expected exception.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace cliphba::meg::testing {

inline std::string RefPath(const std::string& name) {
  return std::string(CLIPHBA_TEST_DATA_DIR) + "/meg_reference/" + name;
}
inline std::string OutPath(const std::string& name) {
  return std::string(CLIPHBA_TEST_OUT_DIR) + "/meg_" + name;
}
inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}
inline at::Tensor FromJson(const nlohmann::json& j) {
  return at::tensor(j.get<std::vector<double>>(), at::kDouble);
}
inline double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// The message of the E that f() throws; a test failure (and "") if it throws none.
template <typename E, typename F>
std::string MessageOf(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

}  // namespace cliphba::meg::testing
