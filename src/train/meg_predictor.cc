// MegPredictor and StreamMegPredictions; see meg_predictor.h for the contract.
#include "train/meg_predictor.h"

#include <torch/utils.h>  // torch::manual_seed

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"
#include "data/image.h"
#include "model/checkpoint.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "parallel/collectives.h"
#include "train/common.h"
#include "train/meg_internal.h"

namespace cliphba::train {

namespace fs = std::filesystem;
using meg_detail::BuildModel;
using meg_detail::ModelParts;

namespace {

// Streams of the per-(timepoint, image) draws; apart from training's and validation's.
constexpr uint64_t kPredictStream = uint64_t(1) << 63;

}  // namespace

struct MegPredictor::Impl {
  ModelParts m;
  model::MegHead head{nullptr};
  meg::TimeAxis axis;
  std::string normalization;
  at::Tensor mix_weights;  // (T, L) head->MixWeights(), computed once (the head is fixed)
};

MegPredictor::MegPredictor(const config::TrainMegOptions& o) : impl_(std::make_unique<Impl>()) {
  const std::string best = o.out_dir + "/best.safetensors", json_path = o.out_dir + "/best.json";
  if (!fs::exists(best) || !fs::exists(json_path))
    throw IoError(best + ": no trained MEG checkpoint; run `cliphba train meg` first");
  Impl& p = *impl_;
  p.m = BuildModel(o);
  p.normalization = o.normalization;
  const nlohmann::json meta = detail::ReadJsonFile(json_path, "not valid JSON");
  if (meta.value("format", std::string()) != "cliphba MEG checkpoint")
    throw DataError(json_path + ": not a `cliphba train meg` checkpoint (format '" +
                    meta.value("format", std::string("?")) + "')");
  model::StateDict sd = model::LoadSafetensors(best);
  try {
    p.axis.start_ms = meta.at("axis").at("start_ms").get<double>();
    p.axis.step_ms = meta.at("axis").at("step_ms").get<double>();
    p.axis.size = meta.at("axis").at("size").get<int64_t>();
    if (meta.at("dora").at("applied").get<bool>()) {
      const auto& d = meta.at("dora");
      const int64_t vb = d.at("vision_blocks").get<int64_t>();
      if (vb > p.m.cfg.vision_layers)
        throw DataError(best + ": DoRA on " + std::to_string(vb) + " vision blocks, but " +
                        o.checkpoint + " has " + std::to_string(p.m.cfg.vision_layers));
      torch::manual_seed(0);  // A and B are overwritten by the checkpoint's
      model::ApplyDora(p.m.clip, vb, 0, d.at("rank").get<int64_t>(), d.at("alpha").get<double>(),
                       d.at("train_magnitude").get<bool>());
      detail::LoadDora(p.m.clip, sd, "visual.", best,
                       "does not fit the model built from train.meg.checkpoint:");
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(json_path + ": corrupt checkpoint metadata: " + e.what());
  }
  p.m.clip->eval();
  auto get = [&](const std::string& name) {
    const at::Tensor* t = sd.Find(name);
    if (t == nullptr) throw DataError(best + ": lacks tensor " + name);
    return *t;
  };
  model::MegHeadOptions h;
  h.axis_start_ms = p.axis.start_ms;
  h.axis_step_ms = p.axis.step_ms;
  h.axis_size = p.axis.size;
  h.train_start_ms = p.axis.start_ms;
  h.train_end_ms = p.axis.TimeAt(p.axis.size - 1);
  h.train_step_ms = p.axis.step_ms;
  h.window_ms = meta.value("window_ms", o.window_ms);
  // The head's module names; checkpoints written before the head was a module (2026-12) named
  // the curves curves/{richness,beta,noise}.
  auto curve = [&](const std::string& name, const std::string& old) {
    return sd.Find(name) != nullptr ? get(name) : get(old);
  };
  p.head = model::MegHead(h, p.m.cfg.vision_layers, curve("visual_scaler", "curves/richness"),
                          curve("beta", "curves/beta"), curve("noise_level", "curves/noise"));
  at::Tensor w = get("wfr");
  if (w.sizes() != p.head->wfr.sizes())
    throw DataError(best + ": wfr has another shape than (" + std::to_string(p.axis.size) + ", " +
                    std::to_string(p.m.cfg.vision_layers) + ")");
  p.head->SetWfr(w);
  at::NoGradGuard no_grad;
  p.mix_weights = p.head->MixWeights();
}

MegPredictor::~MegPredictor() = default;
MegPredictor::MegPredictor(MegPredictor&&) noexcept = default;
MegPredictor& MegPredictor::operator=(MegPredictor&&) noexcept = default;

int64_t MegPredictor::timepoints() const { return impl_->axis.size; }
std::vector<double> MegPredictor::times_ms() const {
  std::vector<double> t;
  for (int64_t i = 0; i < impl_->axis.size; ++i) t.push_back(impl_->axis.TimeAt(i));
  return t;
}
double MegPredictor::axis_start_ms() const { return impl_->axis.start_ms; }
double MegPredictor::axis_step_ms() const { return impl_->axis.step_ms; }
int64_t MegPredictor::blocks() const { return impl_->m.cfg.vision_layers; }
int64_t MegPredictor::prompts() const { return impl_->m.n_prompts; }
int64_t MegPredictor::image_resolution() const { return impl_->m.cfg.image_resolution; }
const std::string& MegPredictor::normalization() const { return impl_->normalization; }
at::Tensor MegPredictor::Wfr() const { return impl_->head->wfr.detach().clone(); }
at::Tensor MegPredictor::BlockWeights() const {
  at::NoGradGuard no_grad;
  return impl_->head->BlockWeights().detach().clone();
}

at::Tensor MegPredictor::BlockFeatures(const at::Tensor& images) const {
  at::NoGradGuard no_grad;
  return meg_detail::BlockFeatures(impl_->m.clip, images, impl_->m.precision);
}

at::Tensor MegPredictor::Raw(const at::Tensor& block_features, int64_t t0, int64_t count) const {
  at::NoGradGuard no_grad;
  return impl_->head->Raw(block_features, impl_->m.text_norm, impl_->m.scale_exp,
                          impl_->mix_weights.narrow(0, t0, count));
}

at::Tensor MegPredictor::Finish(const at::Tensor& raw, int64_t t0,
                                const std::vector<uint64_t>& keys, bool noise,
                                uint64_t seed) const {
  at::NoGradGuard no_grad;
  const int64_t count = raw.size(0), n = raw.size(1), k = raw.size(2);
  TORCH_CHECK(int64_t(keys.size()) == n, "MegPredictor::Finish: ", keys.size(), " keys for ", n,
              " images");
  at::Tensor uniform = at::empty({count, n, k}, at::kFloat);
  at::Tensor normal = noise ? at::empty({count, n, k}, at::kFloat) : at::Tensor();
  float* u = uniform.data_ptr<float>();
  float* z = noise ? normal.data_ptr<float>() : nullptr;
  at::parallel_for(0, count * n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const uint64_t t = uint64_t(t0 + r / n);
      CounterRng rng(seed, kPredictStream ^ keys[size_t(r % n)] ^ (t * 0x9E3779B97F4A7C15ull));
      if (z != nullptr)
        for (int64_t j = 0; j < k; ++j) z[r * k + j] = float(rng.Normal());
      for (int64_t j = 0; j < k; ++j) u[r * k + j] = float(rng.Uniform());
    }
  });
  return impl_->head->Finish(raw, t0, normal, uniform);
}

std::vector<uint64_t> MegImages::Keys() const {
  std::vector<uint64_t> keys;
  for (int64_t i = 0; i < size(); ++i)
    keys.push_back(pixels.defined() ? Fnv1a64("#" + std::to_string(i))
                                    : Fnv1a64(fs::path(paths[size_t(i)]).filename().string()));
  return keys;
}

Range PredictImageShard(int64_t n, int64_t chunk, int ranks, int rank) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  const Range c = ShardRange(chunks, ranks, rank);
  return {std::min(n, c.begin * chunk), std::min(n, c.end * chunk)};
}

std::vector<int64_t> PredictShardSizes(int64_t n, int64_t chunk, int ranks) {
  std::vector<int64_t> sizes;
  for (int r = 0; r < ranks; ++r) sizes.push_back(PredictImageShard(n, chunk, ranks, r).size());
  return sizes;
}

void ForEachImageChunk(const MegImages& images, const std::string& normalization,
                       int64_t resolution, Range mine, int64_t chunk,
                       const std::function<void(int64_t, int64_t, const at::Tensor&)>& fn) {
  std::unique_ptr<data::ImageLoader> loader;
  if (!images.pixels.defined() && mine.size() > 0)
    loader = std::make_unique<data::ImageLoader>(
        std::vector<std::string>(images.paths.begin() + mine.begin,
                                 images.paths.begin() + mine.end),
        data::ImageOptionsFor(normalization, resolution), images.threads);
  for (int64_t b = mine.begin; b < mine.end; b += chunk) {
    const int64_t e = std::min(mine.end, b + chunk);
    if (images.pixels.defined()) {
      fn(b, e, images.pixels.slice(0, b, e));
    } else {
      std::vector<int64_t> idx;
      for (int64_t i = b; i < e; ++i) idx.push_back(i - mine.begin);
      fn(b, e, loader->Batch(idx));
    }
  }
}

void StreamMegPredictions(const MegPredictor& p, const MegImages& images, int64_t chunk,
                          int64_t t_block, bool noise, uint64_t seed, const parallel::Comm& comm,
                          const std::function<void(int64_t t0, const at::Tensor& emb)>& sink) {
  TORCH_CHECK(chunk >= 1 && t_block >= 1, "StreamMegPredictions: chunk and t_block must be >= 1");
  const int64_t n = images.size(), t_full = p.timepoints(), k = p.prompts();
  const Range mine = PredictImageShard(n, chunk, comm.size(), comm.rank());
  // This rank's block features, chunk by chunk: (L, n_rank, E).
  std::vector<at::Tensor> parts;
  // A rank's own images may fail to decode: every rank stops together (a caller's store is open).
  parallel::RunOnAll(comm, [&] {
    ForEachImageChunk(images, p.normalization(), p.image_resolution(), mine, chunk,
                      [&](int64_t, int64_t, const at::Tensor& px) {
                        parts.push_back(p.BlockFeatures(px));
                      });
  });
  const at::Tensor feats = parts.empty() ? at::Tensor() : at::cat(parts, 1);
  parts.clear();
  const std::vector<int64_t> counts = PredictShardSizes(n, chunk, comm.size());
  const std::vector<uint64_t> keys = images.Keys();
  for (int64_t t0 = 0; t0 < t_full; t0 += t_block) {
    const int64_t count = std::min(t_block, t_full - t0);
    // (N, count, K): rows = images, so the ranks' blocks all-gather along dim 0.
    at::Tensor raw = at::zeros({n, count, k}, at::kFloat);
    // Chunk by chunk as encoded, one timepoint at a time: every product has the same shape
    // whatever the rank count and the block size, so the numbers do not depend on either.
    for (int64_t b = mine.begin; b < mine.end; b += chunk) {
      const int64_t e = std::min(mine.end, b + chunk);
      const at::Tensor f = feats.slice(1, b - mine.begin, e - mine.begin);
      for (int64_t t = 0; t < count; ++t)
        raw.slice(0, b, e).select(1, t).copy_(p.Raw(f, t0 + t, 1)[0]);
    }
    comm.AllgatherRows(raw, counts);
    at::Tensor emb = at::empty({count, n, k}, at::kFloat);
    for (int64_t t = 0; t < count; ++t)
      emb[t].copy_(
          p.Finish(raw.select(1, t).unsqueeze(0).contiguous(), t0 + t, keys, noise, seed)[0]);
    sink(t0, emb);
  }
}

}  // namespace cliphba::train
