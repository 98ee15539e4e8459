// The images of a `cliphba predict` call: a folder, a list file or a normalised NPY array,
// resolved and checked before any model work.
//
// Dimension legend: N images, R the model's input resolution (pixels, square).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba::predict {

// Exactly one of dir, list, npy.
struct ImageArgs {
  std::string dir;   // --images: folder of .jpg/.jpeg/.png (sorted by file name)
  std::string list;  // --image-list: text file, one image path per line (relative paths are
                     // taken from the list's folder), in that order
  std::string npy;   // --images-npy: normalised float32 (N, 3, R, R)
  bool skip_bad = false;  // --skip-bad-images: drop files whose header does not decode
};

struct ImageSet {
  std::vector<std::string> names;    // (N) file names (dir), list entries (list), or "0".."N-1"
  std::vector<std::string> paths;    // (N) files; empty for an NPY array
  at::Tensor pixels;                 // (N, 3, R, R) float32 for an NPY array, else undefined
  std::vector<std::string> skipped;  // "path: reason" of the files dropped by skip_bad
  int64_t size() const { return int64_t(names.size()); }
};

// Resolves the images of `a` for a model taking R x R inputs. Every file's header is checked
// (data::ImageHeaderProblem): files that do not decode are listed in ONE DataError (exit 4), or
// dropped into `skipped` when a.skip_bad. Throws ConfigError (not exactly one source), IoError
// (missing folder or list, a listed file that does not exist), DataError (an empty set; an NPY of
// another shape or dtype, or with NaN/Inf; duplicate names in a list).
// resolution 0: the NPY's spatial size is not checked yet (CheckImageResolution, once the model is
// known), so that the images are checked before any model is loaded.
ImageSet ResolveImageSet(const ImageArgs& a, int64_t resolution);

// DataError naming the NPY unless set's in-memory images are (N, 3, resolution, resolution);
// image files always fit (the loader resizes them).
void CheckImageResolution(const ImageSet& set, const ImageArgs& a, int64_t resolution);

}  // namespace cliphba::predict
