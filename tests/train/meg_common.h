// Shared set-up of the MEG training tests: the tiny fixture CLIP with the fixtures' "tiny" vocab
// remap, generated images (data::WriteSynthImages) and an RDM stack NPY written here whose RDMs
// are a time-varying multiple of the correlation distances of the images' known targets (plus
// participant noise), so the head has something learnable.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>
#include <vector>

#include "config/options.h"
#include "tests/fixture_cases.h"
#include "core/rng.h"
#include "data/behavior_dataset.h"
#include "io/csv.h"
#include "io/npy.h"
#include "model/checkpoint.h"

namespace cliphba::train::testing {

struct MegSynth {
  config::TrainMegOptions options;
  std::vector<std::string> names;  // RDM order
};

// The fixture's tiny CLIP has only 2 vision blocks, and min-max normalising 2 block weights always
// gives (0, 1) or (1, 0): Wfr would get no gradient. So the tests use a 4-block variant: blocks 2
// and 3 are copies of blocks 0 and 1 with every tensor scaled by 1 + 0.1 N(0, 1) (seeded).
inline std::string FourBlockClip(const std::string& dir) {
  const std::string out = dir + "/tiny_clip_vit_4blocks.safetensors";
  model::StateDict sd = model::LoadSafetensors(cliphba::testing::SharedDir() +
                                               "/fixtures/clip/model/tiny_clip_vit.safetensors");
  at::Generator gen = at::detail::createCPUGenerator(5);
  std::vector<std::pair<std::string, at::Tensor>> extra;
  const std::string pre = "visual.transformer.resblocks.";
  for (const auto& [name, t] : sd.entries) {
    if (name.rfind(pre, 0) != 0) continue;
    const size_t dot = name.find('.', pre.size());
    const int block = std::stoi(name.substr(pre.size(), dot - pre.size()));
    at::Tensor v = t * (1 + 0.1 * at::randn(t.sizes(), gen, at::kFloat));
    extra.emplace_back(pre + std::to_string(block + 2) + name.substr(dot), v);
  }
  sd.entries.insert(sd.entries.end(), extra.begin(), extra.end());
  model::SaveSafetensors(out, sd);
  return out;
}

// Axis -20 .. 90 ms at 10 ms (12 timepoints), 3 participants, n_images objects (the last 4 held
// out); training 0 .. 80 ms every 10 ms (9 timepoints), window +-10 ms.
inline MegSynth MakeMegSynth(const std::string& dir, const std::string& out_dir,
                             int64_t n_images = 24) {
  config::SynthImagesOptions so;
  so.out_dir = dir;
  so.n_images = n_images;
  so.image_size = 32;
  so.n_dims = 12;  // prompts = K
  so.n_heldout = 4;
  so.seed = 7;
  data::SynthImagesSummary s = data::WriteSynthImages(so);
  io::EmbeddingTable table = io::ReadEmbeddingCsv(s.targets_csv);
  const int64_t n = int64_t(table.names.size()), t_full = 12, p_count = 3;
  at::Tensor x = table.values;  // (n, d) float64
  at::Tensor c = x - x.mean({1}, true);
  c = c / c.norm(2, {1}, true);
  at::Tensor dist = (1 - at::mm(c, c.t())).clamp_min(0);
  dist.fill_diagonal_(0);
  at::Tensor stack = at::zeros({p_count, t_full, n, n}, at::kDouble);
  CounterRng rng(11, 0);
  for (int64_t p = 0; p < p_count; ++p)
    for (int64_t t = 0; t < t_full; ++t) {
      const double ms = -20 + 10.0 * double(t);
      const double amp = ms < 0 ? 0.1 : 0.4 + 0.5 * std::sin(0.03 * ms + 0.3 * double(p));
      at::Tensor noise = at::zeros({n, n}, at::kDouble);
      auto a = noise.accessor<double, 2>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i + 1; j < n; ++j) a[i][j] = a[j][i] = 0.05 * std::abs(rng.Normal());
      stack[p][t] = amp * dist + noise;
    }
  const std::string npy = dir + "/meg_rdm.npy", names_txt = dir + "/meg_names.txt";
  io::WriteNpy(npy, stack.to(at::kFloat));
  io::WriteNameList(names_txt, table.names);

  MegSynth m;
  m.names = table.names;
  config::TrainMegOptions& o = m.options;
  o.rdm.path = npy;
  o.rdm.names = names_txt;
  o.rdm.time_start_ms = -20;
  o.rdm.time_step_ms = 10;
  o.mode = config::MegMode::kGroup;
  o.checkpoint = FourBlockClip(dir);
  o.vocab = cliphba::testing::SharedDir() + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  o.vocab_remap = config::VocabRemap::kTiny;
  o.prompts = s.prompts;
  o.image_dir = s.image_dir;
  o.heldout_names = s.heldout_names;
  o.out_dir = out_dir;
  o.train_start_ms = 0;
  o.train_end_ms = 80;
  o.train_step_ms = 10;
  o.window_ms = 10;
  o.noise_scale = 0.5;
  o.batch = 8;
  o.epochs = 6;
  o.phase1_epochs = 3;
  o.patience_phase1 = 100;
  o.patience_phase2 = 100;
  o.lr_wfr_1 = 3e-2;
  o.lr_wfr_2 = 1e-2;
  o.lr_dora = 3e-3;
  o.dora_rank = 4;
  o.loader_threads = 1;
  o.progress_seconds = 1e6;
  return m;
}

}  // namespace cliphba::train::testing
