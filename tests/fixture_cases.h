// Where the shared reference fixtures live, and which case folders a fixture set holds.
//
// The root is the environment variable CLIPHBA_SHARED_DIR when set and non-empty, else the path
// configured at build time (CMake's CLIPHBA_SHARED_DIR, default ../shared). Fixture-driven tests
// list their cases at run time (and ctest discovers them at test time, DISCOVERY_MODE PRE_TEST),
// so case folders dropped in beside the visible ones run without a rebuild.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace cliphba::testing {

inline std::string SharedDir() {
  const char* env = std::getenv("CLIPHBA_SHARED_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(CLIPHBA_SHARED_DIR);
}

// <shared>/fixtures/clip/<set>
inline std::string ClipFixtureDir(const std::string& set) {
  return SharedDir() + "/fixtures/clip/" + set;
}

struct FixtureCase {
  std::string name;  // the folder's name
  std::string dir;   // its path, ending in '/'
};

// GoogleTest prints a parameter with this (ctest lists the folder, not the struct's bytes).
inline void PrintTo(const FixtureCase& c, std::ostream* os) { *os << c.dir; }

// Every sub-folder of <shared>/fixtures/clip/<set> that holds at least one regular file, sorted
// by name. A missing set gives an empty list (the caller's "cases present" test fails on it).
inline std::vector<FixtureCase> ClipFixtureCases(const std::string& set) {
  namespace fs = std::filesystem;
  std::vector<FixtureCase> cases;
  std::error_code ec;
  const fs::path root(ClipFixtureDir(set));
  if (!fs::is_directory(root, ec)) return cases;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory()) continue;
    bool has_file = false;
    for (const auto& f : fs::directory_iterator(entry.path(), ec))
      if (f.is_regular_file()) has_file = true;
    if (has_file)
      cases.push_back({entry.path().filename().string(), entry.path().string() + "/"});
  }
  std::sort(cases.begin(), cases.end(),
            [](const FixtureCase& a, const FixtureCase& b) { return a.name < b.name; });
  return cases;
}

// A GoogleTest parameter name for a case folder: letters, digits and '_' only.
inline std::string CaseTestName(const std::string& name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out.empty() ? std::string("unnamed") : out;
}

inline nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

// The entry named `name` of a set-level summary.json that lists its cases (dora, meg_loss), or of
// a per-case summary.json (meg_head). Throws std::runtime_error if there is none.
inline nlohmann::json CaseSummary(const std::string& set, const FixtureCase& c) {
  namespace fs = std::filesystem;
  if (fs::exists(c.dir + "summary.json")) return ReadJsonFile(c.dir + "summary.json");
  const nlohmann::json all = ReadJsonFile(ClipFixtureDir(set) + "/summary.json");
  for (const auto& entry : all)
    if (entry.value("name", std::string()) == c.name) return entry;
  throw std::runtime_error(ClipFixtureDir(set) + "/summary.json has no entry named '" + c.name +
                           "'");
}

}  // namespace cliphba::testing
