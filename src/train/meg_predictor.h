// A trained CLIP-HBA-MEG model applied to images: the best checkpoint of a `train meg` folder
// (CLIP + DoRA of the adapted vision blocks, the frozen text features, the head over the FULL MEG
// axis), and the one streaming loop that turns images into per-timepoint embeddings. Alignment
// (PredictMegRdms, EvaluateMeg) and `cliphba predict meg` both go through it, so the model RDMs
// a run's alignment used and the ones `predict meg` writes are the same numbers.
//
// Dimension legend: N images, T timepoints of the full MEG axis, L vision blocks, E joint
// embedding, K prompts, b images of one chunk.
//
// Random draws. The head adds a jitter U(0,1) * 1e-5 + 1e-6 to every embedding, and with noise
// on a term N(0,1) * std_N(raw) * noise_level[t] (model/meg_head.h). Here each (timepoint t,
// image) draws its K values from CounterRng(seed, stream) with stream a pure function of t and the
// image's key (the FNV-1a hash of its file name; of its row index for in-memory images): K normals
// first when noise is on, then K uniforms. So an image's prediction does not depend on the other
// images of the call, on how they are chunked, or on the rank count. The noise scale is the std
// over ALL N images of the call (the reference's inference takes it over its batch).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/options.h"
#include "core/shard.h"
#include "parallel/comm.h"

namespace cliphba::train {

class MegPredictor {
 public:
  // Loads o.out_dir/best.safetensors + best.json and builds the model from o (checkpoint,
  // prompts, vocab, vocab_remap, normalization, behavior_checkpoint, behavior_vision). Throws
  // IoError (no checkpoint), DataError (a checkpoint that does not fit the model, corrupt
  // metadata), ConfigError (missing keys).
  explicit MegPredictor(const config::TrainMegOptions& o);
  ~MegPredictor();
  MegPredictor(MegPredictor&&) noexcept;
  MegPredictor& operator=(MegPredictor&&) noexcept;

  int64_t timepoints() const;           // T
  std::vector<double> times_ms() const;  // (T)
  double axis_start_ms() const;
  double axis_step_ms() const;
  int64_t blocks() const;                // L
  int64_t prompts() const;               // K
  int64_t image_resolution() const;      // pixels (square)
  const std::string& normalization() const;  // things | openai
  at::Tensor Wfr() const;                // (T, L) float32 copy
  // (T, L) float32: the normalised block weights over time that the head mixes with
  // (MegHeadImpl::BlockWeights: Wfr min-max scaled and normalised per timepoint; rows sum to 1).
  at::Tensor BlockWeights() const;

  // (L, b, E) float32 per-block CLS projections of normalised images (b, 3, R, R); no gradient.
  // The tower runs in the model's train.meg.precision (a bfloat16-trained model predicts in
  // bfloat16 mixed precision, as it was validated).
  at::Tensor BlockFeatures(const at::Tensor& images) const;
  // (count, b, K) relu(scale * mix @ text^T) of timepoints [t0, t0 + count) (MegHeadImpl::Raw).
  at::Tensor Raw(const at::Tensor& block_features, int64_t t0, int64_t count) const;
  // (count, N, K) embeddings from the raw logits (count, N, K) of ALL N images of the call
  // (image i = row i, its key keys[i]), with the draws described at the top of this file.
  at::Tensor Finish(const at::Tensor& raw, int64_t t0, const std::vector<uint64_t>& keys,
                    bool noise, uint64_t seed) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// name -> image_dir/name, or name + one of the usual extensions (.jpg .jpeg .png, either case).
// Throws IoError when image_dir is not a folder, ONE DataError naming `source` and listing (up
// to 20 of) the missing names; both name the config key the folder came from.
std::vector<std::string> ResolveImages(const std::vector<std::string>& names,
                                       const std::string& image_dir, const std::string& source,
                                       const std::string& key = "train.meg.image_dir");

// The images of a prediction: image files (decoded with `threads` loader threads) or an
// in-memory (N, 3, R, R) float32 tensor of normalised images. Exactly one is set.
struct MegImages {
  std::vector<std::string> paths;
  at::Tensor pixels;
  int threads = 2;
  int64_t size() const { return pixels.defined() ? pixels.size(0) : int64_t(paths.size()); }
  // The draw keys (top of this file): FNV-1a of each path's file name, or of the row index.
  std::vector<uint64_t> Keys() const;
};

// The images rank `rank` of `ranks` encodes: whole chunks of `chunk` images (chunk c = images
// [c chunk, (c + 1) chunk)), contiguous blocks of chunks per rank (ShardRange over chunks). Every
// chunk is encoded alone, so features do not depend on the rank count.
Range PredictImageShard(int64_t n, int64_t chunk, int ranks, int rank);

// The PredictImageShard sizes of every rank (the counts of Comm::AllgatherRows).
std::vector<int64_t> PredictShardSizes(int64_t n, int64_t chunk, int ranks);

// Calls fn(begin, end, pixels (end - begin, 3, R, R)) for each chunk of `chunk` images of
// [mine.begin, mine.end), in order: in-memory images are sliced, files decoded by a loader over
// that range (normalisation `normalization`, R = `resolution`, images.threads threads). Not
// collective. Throws as the decoding does (DataError naming the file).
void ForEachImageChunk(const MegImages& images, const std::string& normalization,
                       int64_t resolution, Range mine, int64_t chunk,
                       const std::function<void(int64_t, int64_t, const at::Tensor&)>& fn);

// Collective. Encodes this rank's chunks (PredictImageShard; the (L, n_rank, E) features stay in
// memory), then for each block of at most `t_block` timepoints: Raw of this rank's images,
// all-gathered to (count, N, K), Finish on every rank, and sink(t0, embeddings (count, N, K)) on
// every rank. Memory beyond the features: O(t_block N K). Throws as the image decoding does
// (DataError naming the file).
void StreamMegPredictions(const MegPredictor& p, const MegImages& images, int64_t chunk,
                          int64_t t_block, bool noise, uint64_t seed, const parallel::Comm& comm,
                          const std::function<void(int64_t t0, const at::Tensor& emb)>& sink);

}  // namespace cliphba::train
