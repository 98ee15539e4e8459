// The subcommands of the `cliphba` binary. Each returns the process exit code and throws
// cliphba::Error (caught once in main) for anything the user can fix.
#pragma once

#include <string>
#include <vector>

namespace cliphba::apps {

// Options every subcommand takes.
struct CommonArgs {
  std::string config_file;             // --config FILE.yaml
  std::vector<std::string> overrides;  // --set key.path=value (repeatable), then explicit flags
  bool json = false;                   // --json: one JSON object on stdout
};

int RunVersion(const CommonArgs& args);
int RunSynthBehavior(const CommonArgs& args);
int RunRsaBehavior(const CommonArgs& args);
int RunConfigShow(const CommonArgs& args);

// Applies log level and thread settings of the resolved configuration. Reads the config.
void ApplyRuntime(const std::string& log_level, int64_t threads);

}  // namespace cliphba::apps
