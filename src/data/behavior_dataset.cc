#include "data/behavior_dataset.h"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/rng.h"
#include "core/staged_folder.h"
#include "io/csv.h"

namespace cliphba::data {

namespace fs = std::filesystem;

namespace {

// RNG streams (distinct per purpose; images use their index).
constexpr uint64_t kSplitStream = 0x5350'4c49'5400'0000ull;   // "SPLIT"
constexpr uint64_t kEpochStream = 0x4550'4f43'4800'0000ull;   // "EPOCH" + epoch
constexpr uint64_t kWeightStream = 0x5745'4947'4854'0000ull;  // "WEIGHT"
constexpr int64_t kFeatures = 12;  // shape (3) + colour (6) + size + x + y

bool IsFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string ResolveImage(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  if (IsFile(base)) return base;
  for (const char* ext : {".jpg", ".jpeg", ".png", ".JPG", ".PNG"})
    if (IsFile(base + ext)) return base + ext;
  return "";
}

}  // namespace

BehaviorDataset LoadBehaviorDataset(const std::string& targets_csv, const std::string& image_dir,
                                    int64_t n_prompts) {
  std::error_code ec;
  if (!fs::is_directory(image_dir, ec))
    throw IoError(image_dir + ": image folder (train.behavior.image_dir) does not exist");
  io::EmbeddingTable table = io::ReadEmbeddingCsv(targets_csv);  // refuses NaN/Inf cells
  const int64_t k = table.values.size(1);
  if (k != n_prompts)
    throw DataError(targets_csv + ": has " + std::to_string(k) +
                    " target columns, but the prompts file lists " + std::to_string(n_prompts) +
                    " prompts; the target width must equal the number of prompts");
  BehaviorDataset ds;
  ds.names = table.names;
  std::vector<std::string> missing;
  for (const auto& name : table.names) {
    std::string path = ResolveImage(image_dir, name);
    if (path.empty()) missing.push_back(name);
    ds.paths.push_back(path);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 20; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 20) list += ", ...";
    throw DataError(image_dir + ": no image file for " + std::to_string(missing.size()) + " of " +
                    std::to_string(table.names.size()) + " names of " + targets_csv + " (tried " +
                    "name, name.jpg/.jpeg/.png): " + list);
  }
  ds.targets = table.values.to(at::kFloat).contiguous();
  return ds;
}

BehaviorSplit SplitBehavior(const std::vector<std::string>& names,
                            const std::vector<std::string>& heldout_names, double val_fraction,
                            uint64_t seed, const std::string& source) {
  std::unordered_map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = int64_t(i);
  BehaviorSplit split;
  std::vector<char> is_heldout(names.size(), 0);
  std::string unknown;
  int64_t n_unknown = 0;
  for (const auto& h : heldout_names) {
    auto it = index.find(h);
    if (it == index.end()) {
      if (n_unknown++ < 20) unknown += (unknown.empty() ? "" : ", ") + h;
      continue;
    }
    split.heldout.push_back(it->second);
    is_heldout[it->second] = 1;
  }
  if (n_unknown > 0)
    throw DataError(source + ": " + std::to_string(n_unknown) +
                    " held-out names are not in the targets CSV: " + unknown);
  std::vector<int64_t> rest;
  for (size_t i = 0; i < names.size(); ++i)
    if (!is_heldout[i]) rest.push_back(int64_t(i));
  std::vector<int64_t> perm(rest.size());
  RandomPermutation(seed, kSplitStream, int64_t(rest.size()), perm.data());
  const int64_t n_val = std::llround(val_fraction * double(rest.size()));
  if (n_val < 1 || n_val >= int64_t(rest.size()))
    throw DataError("train/validation split: " + std::to_string(rest.size()) +
                    " objects outside the held-out set and val_fraction " +
                    std::to_string(val_fraction) + " leave an empty " +
                    (n_val < 1 ? "validation" : "training") + " set");
  for (size_t j = 0; j < perm.size(); ++j)
    (int64_t(j) < n_val ? split.val : split.train).push_back(rest[perm[j]]);
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  return split;
}

std::vector<int64_t> EpochOrder(int64_t n_train, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n_train);
  RandomPermutation(seed, kEpochStream + uint64_t(epoch), n_train, order.data());
  return order;
}

SynthImagesSummary WriteSynthImages(const config::SynthImagesOptions& o) {
  static const std::array<std::array<int, 3>, 6> kColours = {{{220, 40, 40},
                                                              {40, 190, 60},
                                                              {50, 70, 220},
                                                              {230, 210, 40},
                                                              {210, 50, 200},
                                                              {40, 200, 210}}};
  static const char* kFeatureNames[kFeatures] = {"circle", "square", "triangle", "red",
                                                 "green",  "blue",   "yellow",   "magenta",
                                                 "cyan",   "large",  "right",    "low"};
  SynthImagesSummary s;
  s.n_images = o.n_images;
  s.n_dims = o.n_dims;
  // Written into a staging folder, moved into place complete at the end (core/staged_folder.h).
  StagedFolder staged(o.out_dir, "synth");
  s.image_dir = staged.path() + "/images";
  s.targets_csv = staged.path() + "/targets.csv";
  s.prompts = staged.path() + "/prompts.json";
  s.heldout_names = staged.path() + "/heldout.txt";
  std::error_code ec;
  fs::create_directories(s.image_dir, ec);
  if (ec) throw IoError(s.image_dir + ": cannot create the folder: " + ec.message());

  // W (K x 12) >= 0: dimension k depends on 2 or 3 features, weights in [0.5, 1.5).
  const int64_t kd = o.n_dims, size = o.image_size;
  std::vector<double> w(kd * kFeatures, 0.0);
  std::vector<std::string> prompts;
  CounterRng wr(uint64_t(o.seed), kWeightStream);
  for (int64_t k = 0; k < kd; ++k) {
    const int n_used = 2 + int(wr.Below(2));
    std::string label;
    for (int u = 0; u < n_used; ++u) {
      const int f = int(wr.Below(kFeatures));
      w[k * kFeatures + f] += 0.5 + wr.Uniform();
      label += (u ? " " : "") + std::string(kFeatureNames[f]);
    }
    prompts.push_back("dimension " + std::to_string(k) + ": " + label);
  }

  io::EmbeddingTable table;
  table.values = at::zeros({o.n_images, kd}, at::kDouble);
  std::vector<uint8_t> px(size * size * 3);
  for (int64_t i = 0; i < o.n_images; ++i) {
    CounterRng r(uint64_t(o.seed), uint64_t(i));
    const int shape = int(r.Below(3)), colour = int(r.Below(6));
    const double sz = 0.25 + 0.2 * r.Uniform();
    const double cx = 0.2 + 0.6 * r.Uniform(), cy = 0.2 + 0.6 * r.Uniform();
    const int grey = 90 + int(r.Below(80));
    const double half = 0.5 * sz * double(size), x0 = cx * size, y0 = cy * size;
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) {
        const double dx = x + 0.5 - x0, dy = y + 0.5 - y0;
        bool inside = false;
        if (shape == 0) inside = dx * dx + dy * dy <= half * half;
        if (shape == 1) inside = std::fabs(dx) <= half && std::fabs(dy) <= half;
        if (shape == 2) inside = dy <= half && dy >= -half && std::fabs(dx) <= 0.5 * (dy + half);
        for (int c = 0; c < 3; ++c) {
          const double noise = 25.0 * r.Normal();
          const double v = (inside ? kColours[colour][c] : grey) + (inside ? 0.3 : 1.0) * noise;
          px[(y * size + x) * 3 + c] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
    char name[32];
    std::snprintf(name, sizeof name, "img_%04lld", static_cast<long long>(i));
    const std::string path = s.image_dir + "/" + name + ".png";
    if (stbi_write_png(path.c_str(), int(size), int(size), 3, px.data(), int(size * 3)) == 0)
      throw IoError(path + ": cannot write the PNG");
    table.names.push_back(name);
    double f[kFeatures] = {0};  // shape one-hot, colour one-hot, size, x, y
    f[shape] = 1;
    f[3 + colour] = 1;
    f[9] = (sz - 0.25) / 0.2;
    f[10] = cx;
    f[11] = cy;
    for (int64_t k = 0; k < kd; ++k) {
      double t = 0;
      for (int j = 0; j < kFeatures; ++j) t += w[k * kFeatures + j] * f[j];
      table.values[i][k] = 1.5 * t;
    }
  }
  io::WriteEmbeddingCsv(s.targets_csv, table);
  io::WriteNameList(s.heldout_names,
                    std::vector<std::string>(table.names.end() - o.n_heldout, table.names.end()));
  const std::string json = nlohmann::json(prompts).dump(1) + "\n";
  std::FILE* fp = std::fopen(s.prompts.c_str(), "wb");
  if (fp == nullptr) throw IoError(s.prompts + ": cannot create the file");
  const bool ok = std::fwrite(json.data(), 1, json.size(), fp) == json.size();
  if (std::fclose(fp) != 0 || !ok) throw IoError(s.prompts + ": cannot write the file");
  staged.Commit();
  for (std::string* p : {&s.image_dir, &s.targets_csv, &s.prompts, &s.heldout_names})
    *p = staged.Final(*p);
  return s;
}

}  // namespace cliphba::data
