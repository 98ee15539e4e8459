// Internal to the model module: helpers shared by the checkpoint readers (checkpoint.cc,
// safetensors.cc, unpickler.cc). Defined in checkpoint.cc. Not part of the public API.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <fstream>
#include <string>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint readers assume a little-endian host (as safetensors and torch.save do)");

namespace cliphba::model::detail {

// "[d0, d1, ...]", e.g. "[3, 224, 224]"; "[]" for a scalar shape.
std::string ShapeStr(at::IntArrayRef shape);

// Opens `path` for binary reading, positioned at byte 0, and stores its size in bytes in `*size`.
// Throws IoError naming `path` if it cannot be opened or its size cannot be determined.
// REQUIRES: size != nullptr.
std::ifstream OpenForRead(const std::string& path, uint64_t* size);

}  // namespace cliphba::model::detail
