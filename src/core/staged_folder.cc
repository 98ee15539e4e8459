#include "core/staged_folder.h"

#include <filesystem>
#include <utility>

#include "core/error.h"

namespace cliphba {

namespace fs = std::filesystem;

StagedFolder::StagedFolder(std::string final_dir, const std::string& what) {
  const fs::path out = fs::path(final_dir).lexically_normal();
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
    fs::rename(staging_, final_, ec);
    if (ec) throw IoError(final_ + ": cannot move the finished output into place: " + ec.message());
    committed_ = true;
    return;
  }
  if (!fs::is_directory(final_, ec)) throw IoError(final_ + ": exists and is not a folder");
  for (const std::string& name : stale) {
    if (!fs::exists(fs::path(staging_) / name, ec)) fs::remove_all(fs::path(final_) / name, ec);
  }
  for (const auto& entry : fs::directory_iterator(staging_)) {
    const fs::path target = fs::path(final_) / entry.path().filename();
    fs::remove_all(target, ec);
    fs::rename(entry.path(), target, ec);
    if (ec) throw IoError(target.string() + ": cannot move into place: " + ec.message());
  }
  fs::remove_all(staging_, ec);
  committed_ = true;
}

std::string StagedFolder::Final(const std::string& p) const {
  if (p.compare(0, staging_.size(), staging_) == 0) return final_ + p.substr(staging_.size());
  return p;
}

}  // namespace cliphba
