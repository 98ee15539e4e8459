#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/fsync.h"

namespace cliphba {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

std::string SyncByName(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "cannot open '" + path + "' to sync it: " + ErrnoText();
  std::string err;
  if (::fsync(fd) != 0 && errno != EINVAL) err = "fsync failed: " + ErrnoText();
  ::close(fd);
  return err;
}

AtomicFile::AtomicFile(std::string path, std::string what, bool owner)
    : path_(std::move(path)), partial_(path_ + ".partial"), what_(std::move(what)), owner_(owner) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      partial_(std::move(other.partial_)),
      what_(std::move(other.what_)),
      owner_(other.owner_),
      done_(other.done_),
      file_(other.file_) {
  other.done_ = true;
  other.file_ = nullptr;
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    partial_ = std::move(other.partial_);
    what_ = std::move(other.what_);
    owner_ = other.owner_;
    done_ = other.done_;
    file_ = other.file_;
    other.done_ = true;
    other.file_ = nullptr;
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() noexcept {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  if (!done_ && owner_) std::remove(partial_.c_str());
  done_ = true;
}

void AtomicFile::Fail(const std::string& detail) {
  Abandon();
  throw IoError(path_ + ": cannot write" + (what_.empty() ? "" : " " + what_) + ": " + detail);
}

void AtomicFile::Write(const void* data, size_t n) {
  if (done_) throw Error(ExitCode::kInternal, path_ + ": AtomicFile::Write after Commit/Abandon");
  if (!owner_) return;
  if (!file_) {
    file_ = std::fopen(partial_.c_str(), "wb");
    if (!file_) Fail("cannot create '" + partial_ + "' for writing: " + ErrnoText());
  }
  if (n > 0 && std::fwrite(data, 1, n, file_) != n)
    Fail("writing " + std::to_string(n) + " bytes failed: " + ErrnoText());
}

void AtomicFile::Commit() {
  if (done_) throw Error(ExitCode::kInternal, path_ + ": AtomicFile::Commit after Commit/Abandon");
  if (!owner_) {
    done_ = true;
    return;
  }
  std::string error;
  if (file_) {
    if (std::fflush(file_) != 0) {
      error = "flush failed: " + ErrnoText();
    } else if (::fsync(fileno(file_)) != 0 && errno != EINVAL) {
      error = "fsync failed: " + ErrnoText();
    }
    if (std::fclose(file_) != 0 && error.empty()) error = "close failed: " + ErrnoText();
    file_ = nullptr;
  } else {
    error = SyncByName(partial_);
  }
  if (error.empty() && std::rename(partial_.c_str(), path_.c_str()) != 0)
    error = "renaming '" + partial_ + "' into place failed: " + ErrnoText();
  if (!error.empty()) Fail(error);
  done_ = true;
}

}  // namespace cliphba
