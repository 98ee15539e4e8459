// The OpenAI CLIP ViT checkpoints by file name and SHA-256 (the digests are part of OpenAI's
// download URLs, openai/CLIP clip.py `_MODELS`), so that a renamed, truncated or altered copy of a
// well-known file is noticed before anyone trusts the numbers it gives.
#pragma once

#include <string>

namespace cliphba::model {

// The expected SHA-256 (64 hex digits) of a known file name (ViT-B-32.pt, ViT-B-16.pt,
// ViT-L-14.pt, ViT-L-14-336px.pt; matched on the file name only), or "" for any other name.
std::string KnownCheckpointSha256(const std::string& path);

enum class KnownCheck { kUnknownName, kMatches, kMismatch };

// For a known file name: hashes the file and compares. On a mismatch logs a warning naming the
// file and both digests, or, if strict, throws DataError. `actual` (if not null) receives the
// computed digest ("" for an unknown name, which is not hashed).
KnownCheck CheckKnownCheckpoint(const std::string& path, bool strict,
                                std::string* actual = nullptr);

}  // namespace cliphba::model
