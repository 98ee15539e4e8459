// Shared by the MNE-reference tests (signflip_test.cc, cluster_test.cc): the fixture folder
// written by scripts/reference/stats_reference.py and small comparison helpers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cliphba::stats::reference {

inline const std::string kRefDir = std::string(CLIPHBA_TEST_DATA_DIR) + "/stats_reference/";

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  return nlohmann::json::parse(in);
}

inline std::vector<std::string> CaseNames() {
  const nlohmann::json cases = ReadJson(kRefDir + "cases.json");  // (no range-for over a temporary)
  std::vector<std::string> names;
  for (const auto& n : cases["cases"]) names.push_back(n);
  return names;
}

// |a - b| <= tol * max(1, |b|).
inline void ExpectClose(double a, double b, double tol, const std::string& what) {
  EXPECT_LE(std::fabs(a - b), tol * std::max(1.0, std::fabs(b)))
      << what << ": " << a << " vs " << b;
}

}  // namespace cliphba::stats::reference
