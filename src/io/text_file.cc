#include "io/text_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
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
  AtomicFile out(path);
  out.Write(content);
  out.Commit();
}

}  // namespace cliphba::io
