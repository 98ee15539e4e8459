// Rank-aware logging on top of spdlog.
//
// Every line carries the MPI rank once SetLogRank() has been called, so that interleaved Slurm logs
// stay readable. By default only rank 0 prints info-level lines; warnings and errors print on every
// rank. Thread-safe (spdlog's multi-threaded sink).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace cliphba {

// Sets the level ("trace", "debug", "info", "warn", "error", "off").
// Throws ConfigError for an unknown level name.
void SetLogLevel(const std::string& level);

// Tags log lines with "[rank r/w]" and silences info/debug output on ranks != 0 unless
// all_ranks is true.
void SetLogRank(int rank, int world_size, bool all_ranks = false);

// A duration for progress lines: "h:mm:ss" (seconds rounded), "?" for NaN, Inf or negative.
std::string FormatDuration(double seconds);

// While alive, log lines of this process carry `unit` after the rank tag ("[rank 2/4]
// [individual/sub-03]"), and, if `show_info`, info lines print on this rank even when
// SetLogRank silenced them: how the leader of a participant group (not world rank 0) shows its
// unit's progress lines. The previous tag and level come back on destruction. One at a time; not
// copyable.
class ScopedLogUnit {
 public:
  ScopedLogUnit(const std::string& unit, bool show_info);
  ~ScopedLogUnit();
  ScopedLogUnit(const ScopedLogUnit&) = delete;
  ScopedLogUnit& operator=(const ScopedLogUnit&) = delete;
};

}  // namespace cliphba

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
