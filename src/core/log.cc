#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace cliphba {

namespace {
std::string g_rank_tag;                                   // " [rank r/w]" or ""
spdlog::level::level_enum g_level = spdlog::level::info;  // the configured level
bool g_quiet_rank = false;                                // info silenced on this rank

// Makes (replacing one of the same name) the default logger with `tag` after the level.
void InstallLogger(const std::string& tag) {
  // Logs go to stderr: stdout is reserved for results (tables, --json).
  spdlog::drop("cliphba" + tag);
  auto logger = spdlog::stderr_color_mt("cliphba" + tag);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$]" + tag + " %v");
  spdlog::set_default_logger(logger);
}

// The configured level, raised to warn on a quiet rank.
void ApplyRankLevel() {
  spdlog::set_level(g_quiet_rank && g_level < spdlog::level::warn ? spdlog::level::warn : g_level);
}
}  // namespace

void SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError("log level '" + level +
                      "' is unknown; expected one of trace, debug, info, warn, error, off");
  }
  g_level = parsed;
  ApplyRankLevel();
}

void SetLogRank(int rank, int world_size, bool all_ranks) {
  g_rank_tag = world_size > 1
                   ? " [rank " + std::to_string(rank) + "/" + std::to_string(world_size) + "]"
                   : "";
  // The configured level is g_level (SetLogLevel); spdlog's may already be quieted for this rank.
  InstallLogger(g_rank_tag);
  g_quiet_rank = rank != 0 && !all_ranks;
  ApplyRankLevel();
}

ScopedLogUnit::ScopedLogUnit(const std::string& unit, bool show_info) {
  InstallLogger(g_rank_tag + " [" + unit + "]");
  if (show_info) spdlog::set_level(g_level);
}

ScopedLogUnit::~ScopedLogUnit() {
  InstallLogger(g_rank_tag);
  ApplyRankLevel();
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t t = int64_t(seconds + 0.5);
  return fmt::format("{}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60);
}

}  // namespace cliphba
