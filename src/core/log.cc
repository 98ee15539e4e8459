#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.h"

namespace cliphba {

namespace {
std::shared_ptr<spdlog::logger> MakeLogger(const std::string& tag) {
  // Logs go to stderr: stdout is reserved for results (tables, --json).
  auto logger = spdlog::stderr_color_mt("cliphba" + tag);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$]" + tag + " %v");
  return logger;
}
}  // namespace

void SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError("log level '" + level +
                      "' is unknown; expected one of trace, debug, info, warn, error, off");
  }
  spdlog::set_level(parsed);
}

void SetLogRank(int rank, int world_size, bool all_ranks) {
  std::string tag = world_size > 1
                        ? " [rank " + std::to_string(rank) + "/" + std::to_string(world_size) + "]"
                        : "";
  auto level = spdlog::get_level();
  spdlog::drop("cliphba" + tag);
  auto logger = MakeLogger(tag);
  spdlog::set_default_logger(logger);
  if (rank != 0 && !all_ranks && level < spdlog::level::warn) level = spdlog::level::warn;
  spdlog::set_level(level);
}

}  // namespace cliphba
