#include "io/text_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cliphba::io {

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read error: " + std::strerror(errno));
  return ss.str();
}

void WriteTextFileAtomically(const std::string& path, const std::string& content) {
  const std::string partial = path + ".partial";
  std::FILE* f = std::fopen(partial.c_str(), "wb");
  if (!f)
    throw IoError(path + ": cannot create '" + partial + "' for writing: " + std::strerror(errno));
  std::string error;
  if (!content.empty() && std::fwrite(content.data(), 1, content.size(), f) != content.size()) {
    error = std::string("write failed: ") + std::strerror(errno);
  } else if (std::fflush(f) != 0) {
    error = std::string("flush failed: ") + std::strerror(errno);
  } else if (fsync(fileno(f)) != 0 && errno != EINVAL) {
    error = std::string("fsync failed: ") + std::strerror(errno);
  }
  if (std::fclose(f) != 0 && error.empty())
    error = std::string("close failed: ") + std::strerror(errno);
  if (error.empty() && std::rename(partial.c_str(), path.c_str()) != 0) {
    error = "renaming '" + partial + "' into place failed: " + std::strerror(errno);
  }
  if (!error.empty()) {
    std::remove(partial.c_str());
    throw IoError(path + ": cannot write: " + error);
  }
}

}  // namespace cliphba::io
