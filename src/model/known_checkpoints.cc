#include "model/known_checkpoints.h"

#include <filesystem>
#include <utility>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"

namespace cliphba::model {

namespace {

constexpr std::pair<const char*, const char*> kKnown[] = {
    {"ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"},
    {"ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"},
    {"ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"},
    {"ViT-L-14-336px.pt", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"},
};

}  // namespace

std::string KnownCheckpointSha256(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  for (const auto& [file, sha] : kKnown)
    if (name == file) return sha;
  return "";
}

KnownCheck CheckKnownCheckpoint(const std::string& path, bool strict, std::string* actual) {
  const std::string expected = KnownCheckpointSha256(path);
  if (actual != nullptr) actual->clear();
  if (expected.empty()) return KnownCheck::kUnknownName;
  const std::string got = Sha256HexOfFile(path);
  if (actual != nullptr) *actual = got;
  if (got == expected) return KnownCheck::kMatches;
  const std::string msg = path + ": SHA-256 " + got + " differs from OpenAI's " + expected +
                          " for a file of this name: a modified or incomplete copy?";
  if (strict) throw DataError(msg + " (refused under --strict)");
  LOG_WARN("{} (use --strict to refuse such files)", msg);
  return KnownCheck::kMismatch;
}

}  // namespace cliphba::model
