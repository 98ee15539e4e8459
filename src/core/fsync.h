// fsync of a file by name: what AtomicFile::Commit does before its rename, and what each rank of a
// parallel results file does after closing it (io/results_store.cc).
#pragma once

#include <string>

namespace cliphba {

// Opens `path` read-only, fsyncs it and closes it. Returns "" on success (or where the file
// system cannot fsync: EINVAL), else the error ("cannot open ... to sync it", "fsync failed: ...").
std::string SyncByName(const std::string& path);

}  // namespace cliphba
