#include "predict/images.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/image.h"
#include "io/npy.h"

namespace cliphba::predict {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> FolderImages(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir + " (--images): not a folder of images");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png"))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw DataError(dir + " (--images): no .jpg, .jpeg or .png images found");
  return files;
}

std::vector<std::string> ListedImages(const std::string& list) {
  std::ifstream in(list);
  if (!in) throw IoError(list + " (--image-list): cannot open the list");
  const fs::path base = fs::path(list).parent_path();
  std::vector<std::string> files;
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (line.empty()) continue;
    const fs::path p = fs::path(line).is_absolute() ? fs::path(line) : base / line;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      throw IoError(list + " line " + std::to_string(no) + " (--image-list): " + p.string() +
                    " does not exist");
    files.push_back(p.string());
  }
  if (files.empty()) throw DataError(list + " (--image-list): lists no image");
  return files;
}

}  // namespace

ImageSet ResolveImageSet(const ImageArgs& a, int64_t resolution) {
  const int given = int(!a.dir.empty()) + int(!a.list.empty()) + int(!a.npy.empty());
  if (given != 1)
    throw ConfigError("give exactly one of --images DIR, --image-list TXT and --images-npy A.npy");
  ImageSet set;
  if (!a.npy.empty()) {
    at::Tensor images = io::ReadNpy(a.npy);
    if (images.dim() != 4 || images.size(0) < 1 || images.size(1) != 3 ||
        images.size(2) != images.size(3) || images.scalar_type() != at::kFloat)
      throw DataError(a.npy + " (--images-npy): expected a normalised float32 (N, 3, R, R) array, "
                      "got " + c10::str(images.sizes()) + " " + c10::toString(images.scalar_type()));
    const at::Tensor bad = at::logical_not(at::isfinite(images)).flatten(1).any(1);
    if (bad.any().item<bool>())
      throw DataError(a.npy + " (--images-npy): image " +
                      std::to_string(bad.nonzero()[0][0].item<int64_t>()) +
                      " contains NaN or Inf values; expected finite normalised pixels");
    set.pixels = images.contiguous();
    for (int64_t i = 0; i < images.size(0); ++i) set.names.push_back(std::to_string(i));
    if (resolution > 0) CheckImageResolution(set, a, resolution);
    return set;
  }
  const std::vector<std::string> files = a.dir.empty() ? ListedImages(a.list) : FolderImages(a.dir);
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const std::string& f : files) {
    const std::string why = data::ImageHeaderProblem(f);
    if (!why.empty()) {
      problems.push_back(f + ": " + why);
      continue;
    }
    const std::string name = fs::path(f).filename().string();
    if (!seen.insert(name).second)
      throw DataError((a.dir.empty() ? a.list : a.dir) + ": two images named " + name +
                      "; image names (file names) must be unique");
    set.paths.push_back(f);
    set.names.push_back(name);
  }
  if (!problems.empty() && !a.skip_bad) {
    std::string msg = std::to_string(problems.size()) + " image(s) do not decode (use " +
                      "--skip-bad-images to leave them out and list them):";
    for (const auto& p : problems) msg += "\n  " + p;
    throw DataError(msg);
  }
  set.skipped = problems;
  if (set.paths.empty()) throw DataError("no image left to predict: every image failed to decode");
  return set;
}

void CheckImageResolution(const ImageSet& set, const ImageArgs& a, int64_t resolution) {
  if (!set.pixels.defined() || set.pixels.size(2) == resolution) return;
  throw DataError(a.npy + " (--images-npy): expected a normalised float32 (N, 3, " +
                  std::to_string(resolution) + ", " + std::to_string(resolution) +
                  ") array for this model, got " + c10::str(set.pixels.sizes()));
}

}  // namespace cliphba::predict
