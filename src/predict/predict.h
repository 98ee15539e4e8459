// `cliphba predict`: trained CLIP-HBA models applied to new images (the reference's
// inference_behavior.py, inference_meg_group.py and inference_meg_individual.py).
//
// Dimension legend: N images, K dimensions (prompts), T timepoints of the MEG axis, L vision
// blocks, m = N (N - 1) / 2 pairs.
//
// Distribution (both commands, collective over comm): images are cut into chunks of `batch`
// (chunk c = images [c batch, (c + 1) batch)), contiguous blocks of chunks per rank
// (train::PredictImageShard); every chunk is encoded alone, so the numbers do not depend on the
// rank count. Outputs go through one io::ResultsStore (parallel HDF5 under MPI): each rank writes
// its images' rows and its share of the RDM pairs (rdm_writer.h) with collective hyperslab
// writes; the file appears under its final name only when complete (NAME.partial before).
// Output policy: OUT (and --csv) must not be an input nor a folder; an existing OUT is replaced
// only with force. Everything is checked before any model work.
//
// Files (layout in results/README.md):
//   behavior: /predict/image_names (N), /predict/labels (K), /predict/embedding (N, K) float32,
//             /predict/rdm/correlation and /predict/rdm/cosine (m) float32; attributes on
//             /predict: model, model_kind, base_checkpoint, n_images, skipped_images.
//   meg:      /predict/image_names, /predict/meg/times_ms (T), and per model (group, or
//             individual/<participant>): /predict/meg/<model>/embedding (T, N, K),
//             /predict/meg/<model>/rdm (T, m) (unless no_rdm), /predict/meg/<model>/wfr (T, L),
//             /predict/meg/<model>/labels (K); attributes model_dir, noise, noise_seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "predict/behavior_model.h"
#include "predict/images.h"

namespace cliphba::predict {

struct PredictBehaviorOptions {
  std::string model;  // --model (behavior_model.h)
  ImageArgs images;
  TextArgs text;
  std::string out;  // --out OUT.h5
  std::string csv;  // --csv OUT.csv: image_name + one column per label ("" = none)
  bool force = false;
  bool strict = false;     // --strict: refuse a known OpenAI file whose SHA-256 differs
  std::string precision = "float32";  // --precision float32 | bfloat16 (the image tower)
  int64_t batch = 0;  // images per chunk; 0 = a stage-1 model's training batch (then the
                      // predictions equal `evaluate behavior`'s bit for bit), else 32
  int loader_threads = 2;
};

struct PredictBehaviorResult {
  std::string kind;  // base | behavior | converted
  int64_t n_images = 0, n_dims = 0;
  std::vector<std::string> skipped;
  std::string out, csv;
};

// Writes OUT (and CSV) as described above. Throws ConfigError / IoError / DataError (see
// LoadBehaviorModel, ResolveImageSet; an existing OUT without force, OUT over an input).
PredictBehaviorResult PredictBehavior(const PredictBehaviorOptions& o, const parallel::Comm& comm);

// The HBA logits (N, K) float32 of a behaviour model for image files, on every rank: chunks of
// the model's training batch (32 for plain CLIP) sharded over ranks (so rank-count invariant),
// decoded with `threads` loader threads, all-gathered. Collective. Throws DataError naming an
// image that does not decode (every rank stops).
at::Tensor BehaviorEmbeddings(BehaviorModel& model, const std::vector<std::string>& paths,
                              int threads, const parallel::Comm& comm);

struct PredictMegOptions {
  std::string model;  // --model: a `train meg` folder, or a `cliphba run` folder with unit/all
  std::string unit;   // --unit group | individual/<p> (run folders)
  bool all = false;   // --all: every MEG model of the run folder
  ImageArgs images;
  std::string out;
  bool force = false;
  bool no_rdm = false;      // --no-rdm: embeddings only (the RDMs are m T floats)
  bool noise = false;       // --noise-seed given: the reference's noisy inference
  uint64_t noise_seed = 0;  // seed of the noise draws (else of the jitter: the model's seed)
  int64_t batch = 0;        // images per chunk; 0 = the model's training batch (then the
                            // model RDMs equal those of its alignment bit for bit)
  int64_t t_block = 16;     // timepoints per streamed block
  int loader_threads = 2;
};

struct PredictMegResult {
  std::vector<std::string> models;  // group, individual/<p>, ...
  int64_t n_images = 0, n_dims = 0, timepoints = 0;
  std::vector<std::string> skipped;
  std::string out;
};

PredictMegResult PredictMeg(const PredictMegOptions& o, const parallel::Comm& comm);

// The `predict` unit of `cliphba run`: every model of the run folder (behavior, group,
// individual/*) on the images, into one file: /predict/image_names, /predict/behavior/...
// (as predict behavior's /predict/...), /predict/meg/... (as predict meg's). The MEG models use
// their training batch as chunk, so their RDMs equal the alignment's for the same images.
struct PredictRunOptions {
  std::string run_dir;
  ImageArgs images;
  std::string out;  // <run>/predictions.h5 (replaced: the unit decides when to redo it)
  bool rdm = true;
  int loader_threads = 2;
  std::string config_hash, config_yaml;  // provenance
};

struct PredictRunResult {
  std::vector<std::string> models;  // behavior, group, individual/<p>, ...
  int64_t n_images = 0;
};

PredictRunResult PredictRun(const PredictRunOptions& o, const parallel::Comm& comm);

}  // namespace cliphba::predict
