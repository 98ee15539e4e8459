// Internal to the model module: the torch.save zip reader (restricted unpickler for data.pkl,
// see unpickler.cc). LoadTorchZip itself is declared in model/checkpoint.h.
#pragma once

#include <string>
#include <vector>

namespace cliphba::model::detail {

// The names of all records in the PyTorch zip archive at `path` (used to tell a torch.save archive
// from a TorchScript one). Throws IoError if the file cannot be opened or is not a readable zip
// archive (truncated or corrupt), DataError if the archive's record list is malformed.
std::vector<std::string> TorchZipRecordNames(const std::string& path);

}  // namespace cliphba::model::detail
