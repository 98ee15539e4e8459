// StagedFolder: a folder output that appears under its final name only when it is complete.
//
// `encode` and `synth behavior | images | cohort` write their files into a hidden staging folder
// beside the final one (".NAME.<what>.partial") and Commit() moves them into place:
// - the final folder does not exist: one rename, so it appears complete or not at all;
// - it exists (the command was told it may write over it: --force, or the same cohort again):
//   the staged files are merged into it, each replacing the file of its name (a rename; folders
//   merge recursively), and the relative paths listed in `stale` (this command's earlier outputs
//   that this run did not write) are removed; nothing else there is touched. If a move fails,
//   the staging folder is kept and named in the error.
// Destroyed without Commit() (an exception mid-write), the staging folder is removed. A killed
// process leaves only the staging folder, which the next run into the same folder removes. When
// the final folder is on another file system (a mount point), files are copied, then removed.
#pragma once

#include <string>
#include <vector>

namespace cliphba {

class StagedFolder {
 public:
  // Creates the staging folder for final_dir (removing a leftover one). `what` names the command
  // ("encode", "synth"). Throws IoError naming the folder.
  StagedFolder(std::string final_dir, const std::string& what);
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;

  // Where to write: the staging folder.
  const std::string& path() const { return staging_; }
  const std::string& final_path() const { return final_; }

  // Moves the staged files into place (above). `stale`: paths relative to the folder. Throws
  // IoError naming the file that could not be moved. REQUIRES: not committed.
  void Commit(const std::vector<std::string>& stale = {});

  // `p` with the staging folder's prefix replaced by the final folder's (for listing what was
  // written); other paths unchanged.
  std::string Final(const std::string& p) const;

 private:
  std::string final_, staging_;
  bool committed_ = false;
};

}  // namespace cliphba
