// Whole text files: read in one piece, written atomically. For small files (JSON records, resume
// states, CSV tables); large arrays go through npy.h / h5.h.
#pragma once

#include <string>

namespace cliphba::io {

// Returns the bytes of `path`. Throws IoError naming the file when it cannot be opened or read.
std::string ReadTextFile(const std::string& path);

// Writes `content` to path + ".partial", syncs it to disk and renames it over `path`, so a reader
// sees the old file or the new one, never half of one. On failure removes the partial file and
// throws IoError naming `path` and the reason; `path` is left as it was.
void WriteTextFileAtomically(const std::string& path, const std::string& content);

}  // namespace cliphba::io
