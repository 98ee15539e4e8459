// The prompts file of a CLIP-HBA model: a JSON list of K text prompts, one per embedding dimension
// (e.g. the 66 SPoSE dimension prompts). One reader for training, evaluation and `encode`.
#pragma once

#include <string>
#include <vector>

namespace cliphba::data {

// The prompts of `path`: a non-empty JSON list of non-blank strings (K of them). `setting` names
// where the path came from in messages (e.g. "train.meg.prompts", "--prompts"). Throws IoError
// (unreadable) or DataError naming the file and the entry (not JSON, not a list, an entry that is
// not a string or is empty / only white space).
std::vector<std::string> ReadPrompts(const std::string& path, const std::string& setting);

}  // namespace cliphba::data
