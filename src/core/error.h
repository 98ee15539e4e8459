// Typed errors: the one error policy of cliphba.
//
// Library code throws one of these (never calls exit); apps/ catches them once, prints the message
// and exits with the code of the error's kind. Messages name the file, the field and what was
// expected, so that a user can fix the input without reading the source.
#pragma once

#include <stdexcept>
#include <string>

namespace cliphba {

// Process exit codes, documented in README.md. Stable: Slurm scripts test for them.
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,  // a bug or an unexpected library failure
  kUsage = 2,     // bad command line or configuration
  kIo = 3,        // a file could not be read or written
  kData = 4,      // input data are malformed or violate a contract (NaN, asymmetric RDM, ...)
  kPreempted =
      75  // stopped by SIGTERM after saving a checkpoint (EX_TEMPFAIL); rerun with --resume
};

// Base of every cliphba error. what() is the full user-facing message.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Bad command line, unknown/mis-typed configuration key.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& m) : Error(ExitCode::kUsage, m) {}
};

// A file is missing, unreadable, unwritable or truncated.
class IoError : public Error {
 public:
  explicit IoError(const std::string& m) : Error(ExitCode::kIo, m) {}
};

// The content of an input violates its contract (format, shape, NaN, symmetry, names, ...).
class DataError : public Error {
 public:
  explicit DataError(const std::string& m) : Error(ExitCode::kData, m) {}
};

// Throws the typed error of `code` (ConfigError, IoError, DataError, else Error): how an error
// that crossed a process boundary (an MPI broadcast, a record file) is raised again.
[[noreturn]] inline void ThrowError(ExitCode code, const std::string& message) {
  switch (code) {
    case ExitCode::kUsage:
      throw ConfigError(message);
    case ExitCode::kIo:
      throw IoError(message);
    case ExitCode::kData:
      throw DataError(message);
    default:
      throw Error(code, message);
  }
}

}  // namespace cliphba

// CLIPHBA_CHECK(cond, ErrorType, message-expression): throws ErrorType(message) if !cond.
#define CLIPHBA_CHECK(cond, ErrorType, msg) \
  do {                                      \
    if (!(cond)) throw ErrorType(msg);      \
  } while (0)
