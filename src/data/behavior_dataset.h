// Stage-1 (behaviour) data: the THINGS layout (a target embedding CSV plus an image folder), its
// held-out / train / validation split, and a generator of synthetic images with learnable targets.
//
// Dimension legend: n objects (one image each), K target dimensions (= number of prompts).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::data {

struct BehaviorDataset {
  std::vector<std::string> names;  // (n) image names, CSV order, unique
  std::vector<std::string> paths;  // (n) image files
  at::Tensor targets;              // (n, K) float32, finite
};

// Reads `targets_csv` (io::ReadEmbeddingCsv layout: ,image_name,0..K-1) and resolves every name
// to a file in `image_dir`: `image_dir/name` if it exists, else name + .jpg/.jpeg/.png/.JPG/.PNG.
// Throws IoError (CSV or folder missing) or DataError: a non-finite target (the CSV reader names
// file, line and column), K != n_prompts (naming both numbers), or image files missing (ONE error
// listing up to 20 missing names and their count).
BehaviorDataset LoadBehaviorDataset(const std::string& targets_csv, const std::string& image_dir,
                                    int64_t n_prompts);

// Indices into the dataset.
struct BehaviorSplit {
  std::vector<int64_t> train;    // sorted ascending
  std::vector<int64_t> val;      // sorted ascending
  std::vector<int64_t> heldout;  // in the order of heldout_names
};

// Held-out objects by name (every name must be in `names`, else DataError listing the unknown
// ones; `source` names the list file); the rest is permuted by (seed, stream "split") and the first
// round(val_fraction * rest) go to validation. A pure function of its arguments (not of the rank
// count). Throws DataError if train or validation would be empty.
BehaviorSplit SplitBehavior(const std::vector<std::string>& names,
                            const std::vector<std::string>& heldout_names, double val_fraction,
                            uint64_t seed, const std::string& source = "heldout_names");

// The order of the training items in `epoch` (0-based): a permutation of 0..n_train-1 drawn from
// (seed, epoch). Pure function.
std::vector<int64_t> EpochOrder(int64_t n_train, uint64_t seed, int64_t epoch);

struct SynthImagesSummary {
  std::string targets_csv;    // out_dir/targets.csv (,image_name,0..K-1)
  std::string image_dir;      // out_dir/images (img_0000.png ...)
  std::string prompts;        // out_dir/prompts.json (K strings)
  std::string heldout_names;  // out_dir/heldout.txt (the last n_heldout image names)
  int64_t n_images = 0;
  int64_t n_dims = 0;
};

// Synthetic stage-1 data. Image i: one shape (circle, square or triangle) in one of 6 colours,
// size s in [0.25, 0.45] of the image, centre (x, y) in the middle 60%, on a noisy grey
// background; all drawn from CounterRng(seed, i). Its feature vector f (12 values >= 0: shape
// one-hot 3, colour one-hot 6, size, x, y) gives the targets t = 3 * W f / 2, where W (K x 12)
// >= 0 is a fixed sparse matrix drawn from (seed, stream "weights"): each dimension depends on 2
// to 3 features. Targets are therefore non-negative and a known function of what is visible.
// Writes PNGs (stb_image_write), targets.csv, prompts.json ("dimension k: <features>") and
// heldout.txt into options.out_dir (created). Deterministic by seed. Throws IoError.
SynthImagesSummary WriteSynthImages(const config::SynthImagesOptions& options);

}  // namespace cliphba::data
