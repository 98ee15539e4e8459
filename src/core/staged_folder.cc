#include "core/staged_folder.h"

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace cliphba {

namespace fs = std::filesystem;

namespace {

// Moves `from` to `to` (a file replaces a file atomically). Across file systems (the final folder
// a mount point, the staging folder beside it on another), copies and then removes `from`.
void Move(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (!ec) return;
  if (ec != std::errc::cross_device_link)
    throw IoError(to.string() + ": cannot move into place: " + ec.message());
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) throw IoError(to.string() + ": cannot copy into place: " + ec.message());
  fs::remove_all(from, ec);
}

// Moves every entry of `from` into the existing folder `to`: files replace files of their name,
// folders merge recursively, so that nothing of `to` that this run did not write is removed.
void Merge(const fs::path& from, const fs::path& to) {
  for (const auto& entry : fs::directory_iterator(from)) {
    const fs::path target = to / entry.path().filename();
    std::error_code ec;
    const bool dir = entry.is_directory(ec);
    if (dir && fs::is_directory(target, ec)) {
      Merge(entry.path(), target);
      continue;
    }
    if (fs::exists(target, ec) && dir != fs::is_directory(target, ec))
      throw IoError(target.string() + ": exists as a " + (dir ? "file" : "folder") +
                    " where this run writes a " + (dir ? "folder" : "file") +
                    "; move it away (the new output is kept in " + from.string() + ")");
    Move(entry.path(), target);
  }
}

}  // namespace

StagedFolder::StagedFolder(std::string final_dir, const std::string& what) {
  fs::path out = fs::path(final_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "out/" names the folder "out"
  final_ = std::move(final_dir);
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  staging_ = (parent / ("." + out.filename().string() + "." + what + ".partial")).string();
  std::error_code ec;
  fs::remove_all(staging_, ec);
  fs::create_directories(staging_, ec);
  if (ec) throw IoError(staging_ + ": cannot create the staging folder: " + ec.message());
}

StagedFolder::~StagedFolder() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagedFolder::Commit(const std::vector<std::string>& stale) {
  std::error_code ec;
  if (!fs::exists(final_, ec)) {
    Move(staging_, final_);
    committed_ = true;
    return;
  }
  if (!fs::is_directory(final_, ec)) throw IoError(final_ + ": exists and is not a folder");
  // From here on a failure keeps the staging folder (the new output) for the user to recover.
  committed_ = true;
  for (const std::string& rel : stale) {
    if (!fs::exists(fs::path(staging_) / rel, ec)) fs::remove_all(fs::path(final_) / rel, ec);
  }
  Merge(staging_, final_);
  fs::remove_all(staging_, ec);
}

std::string StagedFolder::Final(const std::string& p) const {
  if (p.compare(0, staging_.size(), staging_) == 0) return final_ + p.substr(staging_.size());
  return p;
}

}  // namespace cliphba
