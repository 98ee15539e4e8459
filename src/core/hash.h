// Stable content hashes (FNV-1a 64) used for config hashes in result files and checkpoints.
#pragma once

#include <cstdint>
#include <string>

namespace cliphba {

uint64_t Fnv1a64(const std::string& data);
// 16 lower-case hex digits of Fnv1a64(data).
std::string HashHex(const std::string& data);

// SHA-256 of the file at `path` as 64 lowercase hex digits (OpenSSL EVP, streamed in 1 MiB
// blocks). Throws IoError naming the file if it cannot be read.
std::string Sha256HexOfFile(const std::string& path);

}  // namespace cliphba
