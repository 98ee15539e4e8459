// YAML configuration -> validated option structs (the only user of yaml-cpp).
//
// Precedence: struct defaults < the YAML file < `--set key.path=value` overrides (in order).
// Every error is a ConfigError naming the source (file:line:column or "--set"), the key path and
// what was expected; an unknown key comes with a "did you mean" suggestion.
#pragma once

#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::config {

// Description of one configuration key.
struct KeyInfo {
  std::string path;           // e.g. "rsa.behavior.embedding"
  std::string type;           // "string", "integer", "number", "boolean", "list of strings"
  std::string default_value;  // YAML text of the default
  std::string doc;            // one-line description with unit and range
};

// Loads `file` (empty: none) and applies `overrides` ("a.b.c=value", the value parsed as YAML; a
// key flag of the command line passes "--flag:a.b.c=value", so that its errors name the flag).
// Throws ConfigError (unknown key, wrong type, value out of range, malformed YAML, bad override
// syntax) or IoError (file missing or unreadable).
Config LoadConfig(const std::string& file, const std::vector<std::string>& overrides);

// Every key of Config with type, default and documentation, in declaration order.
std::vector<KeyInfo> ConfigKeys();

// The resolved configuration as YAML, keys in declaration order (for --print-config and hashing).
std::string DumpConfig(const Config& config);

// Stable hash of DumpConfig(config): 16 hex digits. Stored in result files and checkpoints.
std::string ConfigHash(const Config& config);

// Sets the keys of a training section that do not change its results (loader threads, progress
// interval, all-reduce backend and bucket size) back to their defaults: what the resume and unit
// hashes leave out, so that a run can be resumed with other settings of these.
void ResetNonResultKeys(TrainBehaviorOptions* o);
void ResetNonResultKeys(TrainMegOptions* o);

// The resolved value of `key` (a dotted path such as "permute.mantel.n" or a section such as
// "permute.mantel"), for shell scripts (`cliphba config --get`): a scalar as its text + "\n"; a
// list one item per line (an empty list: ""); a section as YAML. ConfigError naming the key and the
// part of it that does not exist.
std::string GetConfigValue(const Config& config, const std::string& key);

}  // namespace cliphba::config
