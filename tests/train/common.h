// Shared set-up of the stage-1 tests: the tiny fixture CLIP, the real BPE vocabulary with the
// fixtures' "tiny" remap, and a generated image set (40 images of 32 x 32, 10 held out).
#pragma once

#include <string>

#include "config/options.h"
#include "tests/fixture_cases.h"
#include "data/behavior_dataset.h"

namespace cliphba::train::testing {

// Generates the synthetic set into `dir` (deterministic) and returns options that train on it
// for a few epochs (small batch and a larger learning rate than the reference, for speed).
inline config::TrainBehaviorOptions SynthOptions(const std::string& dir,
                                                 const std::string& out_dir) {
  config::SynthImagesOptions so;
  so.out_dir = dir;
  so.n_images = 40;
  so.image_size = 32;
  so.n_dims = 66;
  so.n_heldout = 10;
  so.seed = 5;
  data::SynthImagesSummary s = data::WriteSynthImages(so);
  config::TrainBehaviorOptions o;
  o.checkpoint = cliphba::testing::SharedDir() + "/fixtures/clip/model/tiny_clip_vit.safetensors";
  o.vocab = cliphba::testing::SharedDir() + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  o.vocab_remap = config::VocabRemap::kTiny;
  o.prompts = s.prompts;
  o.targets_csv = s.targets_csv;
  o.image_dir = s.image_dir;
  o.heldout_names = s.heldout_names;
  o.out_dir = out_dir;
  o.batch = 8;
  o.epochs = 4;
  o.lr = 3e-3;
  o.dora_rank = 8;
  o.loader_threads = 1;
  o.progress_seconds = 1e6;
  return o;
}

}  // namespace cliphba::train::testing
