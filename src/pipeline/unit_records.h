// The lifecycle steps of a unit's record that the `cliphba run` driver uses (internal to
// pipeline/): a fresh record, start (-> running) and finish (-> done, or still running when
// preempted), plus the run-lock error and small file helpers. The public record API (UnitRecord,
// RecordToJson/FromJson, RecordPath, WriteRecord, ReadManifest, FileLock, ClaimNext) is declared in
// pipeline/run.h and defined in unit_records.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/run.h"

namespace cliphba::pipeline {

// Creates dir and its parents. Throws IoError naming `what` (e.g. "the unit folder").
void MakeDirs(const std::string& dir, const std::string& what);

// This host's name, or "unknown".
std::string HostName();

// A pending record of `unit` with its folder <run_dir>/<unit> and config hash.
UnitRecord FreshRecord(const std::string& run_dir, const std::string& unit, Stage stage,
                       const std::string& participant, const std::string& hash);

// Root of the unit's ranks, after taking its lock: record -> running. Returns whether the unit
// resumes (it was started before). A unit started for the first time gets an empty folder.
bool StartUnit(const std::string& run_dir, UnitRecord* rec, int world_size, int64_t group,
               const std::vector<int64_t>& ranks);

// Root of the unit's ranks: writes the outcome into the record (done, or running when
// out.stopped) with the wall time `wall` in seconds. Throws IoError.
void FinishUnit(const std::string& run_dir, UnitRecord* rec, const UnitOutcome& out, double wall);

// Throws IoError naming the holder (pid, host) written in the run lock file at lock_path.
[[noreturn]] void LockedByAnotherRun(const std::string& lock_path);

}  // namespace cliphba::pipeline
