// CLIP checkpoint loading: every real on-disk format -> one ordered state dict.
//
// Formats (detected by content, never by file extension):
//   * safetensors (what cliphba writes and recommends): 8-byte little-endian header length, JSON
//     header, raw little-endian data. Read by our own validating reader; dtypes F32, F16, BF16
//     (returned as float32) and I64.
//   * torch.save zip archives (PyTorch >= 1.6) of a plain dict or a collections.OrderedDict
//     (torch.save(model.state_dict())). Read with a *restricted* unpickler that understands only
//     the opcodes torch.save emits and resolves only an allow-list of globals (OrderedDict, the
//     tensor rebuild helpers and the typed storage classes); any other global is refused with a
//     DataError naming it. Loading such a file never executes code.
//   * TorchScript archives (OpenAI's distributed checkpoints): loaded with torch::jit::load on the
//     CPU. These archives carry TorchScript code (deserializing them may run TorchScript
//     __setstate__ methods), so the result is flagged code_bearing and the caller should log it.
//
// Result contract (all formats): entries in file order (for torch.save: pickle dict order; for
// TorchScript: state_dict() order, i.e. each module's own parameters, own buffers, then its
// children; for safetensors: ascending data offset, which is the writer's order); floating tensors
// are contiguous CPU float32, integer tensors CPU int64; every tensor owns its memory. A leading
// "module." (torch.nn.DataParallel) is stripped from every key that has it.
//
// Errors: IoError when a file cannot be opened/read or is shorter than its own header declares
// (truncated); DataError for malformed or unsupported content. Every message names the file and,
// where there is one, the tensor or pickle global concerned.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cliphba::model {

struct StateDict {
  // (name, tensor) in file order; names are unique.
  std::vector<std::pair<std::string, at::Tensor>> entries;
  // True when the source was a TorchScript archive (code-bearing); the caller logs this.
  bool code_bearing = false;
  // safetensors only: the header's "__metadata__" (string -> string); empty otherwise.
  std::map<std::string, std::string> metadata;

  // The tensor named `name`, or nullptr. Linear scan (state dicts have at most a few hundred keys).
  const at::Tensor* Find(const std::string& name) const;
};

enum class CheckpointFormat { kSafetensors, kTorchZip, kTorchScript };

// "safetensors", "torch.save zip" or "TorchScript archive".
const char* FormatName(CheckpointFormat format);

// Detects the format of `path` from its content: safetensors = 8-byte little-endian header length
// followed by '{'; zip (PK\x03\x04) with a code/ record or constants.pkl = TorchScript; zip with
// data.pkl and no code = torch.save. Throws IoError (unreadable) or DataError (anything else,
// including the legacy pre-1.6 non-zip torch.save format).
CheckpointFormat DetectFormat(const std::string& path);

// Loads `path` in whichever format DetectFormat finds (see the result contract above).
StateDict LoadCheckpoint(const std::string& path);

// The per-format loaders (LoadCheckpoint dispatches to these; they do not strip "module.").
StateDict LoadSafetensors(const std::string& path);
StateDict LoadTorchZip(const std::string& path);
StateDict LoadTorchScript(const std::string& path);  // defined in checkpoint_jit.cc

// Writes `sd` as safetensors: float32 tensors as F32, int64 as I64 (any other dtype -> DataError),
// in entry order with contiguous offsets, header padded with spaces to a multiple of 8, `metadata`
// as "__metadata__". Atomic: writes `path`.partial, then renames it over `path`. Throws IoError if
// the file cannot be written, DataError for duplicate names or unsupported dtypes.
void SaveSafetensors(const std::string& path, const StateDict& sd,
                     const std::map<std::string, std::string>& metadata = {});

// The three int64 scalar buffers OpenAI's archives expose and build_model deletes.
bool IsIgnoredScalarBuffer(const std::string& name);

// Checks `sd` against `expected` (name, shape) pairs. Missing, unexpected and mis-shaped keys are
// collected and reported in ONE DataError naming `source` (usually the checkpoint path). The
// scalar buffers input_resolution, context_length and vocab_size are ignored on both sides, as the
// reference build_model does.
void CheckKeys(const StateDict& sd,
               const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
               const std::string& source);

namespace internal {
// Shared by the loaders: floating -> contiguous float32, integral -> int64, detached CPU copy;
// DataError naming `path` and `name` for any other dtype.
at::Tensor NormalizeLoadedTensor(const at::Tensor& t, const std::string& path,
                                 const std::string& name);
}  // namespace internal

}  // namespace cliphba::model
