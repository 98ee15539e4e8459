// AtomicFile: an output file that appears under its final name only when it is complete.
//
// Every cliphba writer (text, CSV, NPY, safetensors, HDF5 results and epochs files) writes through
// one of these: the data go to `path + ".partial"` (by Write(), or by a library such as HDF5 that
// is given partial_path()), and Commit() makes them durable (fsync) and renames the partial file to
// `path`. An AtomicFile destroyed without Commit() removes its partial file, so an exception never
// leaves a file behind, and a killed process leaves only the ".partial" name: a file under its
// final name is always one complete write. An existing file at `path` is replaced only at Commit().
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace cliphba {

class AtomicFile {
 public:
  // `what` names the kind of file in error messages ("NPY file" -> "P: cannot write NPY file:
  // ..."); empty: "P: cannot write: ...". `owner` false makes this a non-owning handle (the ranks
  // of a collective writer other than the one that renames): Commit() and the destructor then
  // leave the files alone. Nothing is created until the first Write().
  explicit AtomicFile(std::string path, std::string what = "", bool owner = true);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Without Commit(): closes and removes the partial file. Never throws.
  ~AtomicFile();

  const std::string& path() const { return path_; }
  const std::string& partial_path() const { return partial_; }

  // Appends bytes to the partial file (created, truncated, on the first call). Throws IoError
  // naming path() after removing the partial file.
  void Write(const void* data, size_t n);
  void Write(std::string_view text) { Write(text.data(), text.size()); }

  // Flushes and fsyncs the partial file (written by Write() or by a library that has closed it),
  // then renames it to path(). Throws IoError naming path() (the partial file is removed).
  // REQUIRES: not committed; the partial file exists.
  void Commit();

  // Removes the partial file now (e.g. after a library failed writing it). Never throws.
  void Abandon() noexcept;

 private:
  [[noreturn]] void Fail(const std::string& detail);
  std::string path_;
  std::string partial_;
  std::string what_;
  bool owner_ = true;
  bool done_ = false;  // committed or abandoned
  std::FILE* file_ = nullptr;
};

}  // namespace cliphba
