// Option structs: every setting of cliphba, with its default and unit.
//
// YAML files and --set overrides fill these through config/config.h; the rest of the code sees only
// these plain structs (by const&). configs/reference.yaml documents every key; a test keeps the two
// in sync. Paths are strings as given (relative to the working directory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cliphba::config {

// Settings with a fixed set of values are enums; the schema parses the YAML string once, and
// Name(value) is that string again (what `cliphba config`, DumpConfig and the hashes write).

enum class MantelStatistic { kSpearman, kPearson };  // spearman | pearson
enum class VocabRemap { kNone, kTiny };              // "" | tiny
enum class DistBackend { kAuto, kMpi, kNccl };       // auto | mpi | nccl
enum class RdmRescale { kMinMax, kNone };            // minmax | none
enum class MegMode { kGroup, kIndividual };          // group | individual
enum class WfrInit { kLast, kRamp };                 // last | ramp
enum class WeightDesign { kLognormal, kRanked };  // lognormal | ranked

inline const char* Name(MantelStatistic v) {
  return v == MantelStatistic::kPearson ? "pearson" : "spearman";
}
inline const char* Name(VocabRemap v) { return v == VocabRemap::kTiny ? "tiny" : ""; }
inline const char* Name(DistBackend v) {
  switch (v) {
    case DistBackend::kMpi:
      return "mpi";
    case DistBackend::kNccl:
      return "nccl";
    case DistBackend::kAuto:
      break;
  }
  return "auto";
}
inline const char* Name(RdmRescale v) { return v == RdmRescale::kNone ? "none" : "minmax"; }
inline const char* Name(MegMode v) { return v == MegMode::kIndividual ? "individual" : "group"; }
inline const char* Name(WfrInit v) { return v == WfrInit::kRamp ? "ramp" : "last"; }
inline const char* Name(WeightDesign v) {
  return v == WeightDesign::kRanked ? "ranked" : "lognormal";
}

struct LogOptions {
  std::string level = "info";  // trace | debug | info | warn | error | off
  bool all_ranks = false;      // print info lines on every MPI rank, not only rank 0
};

struct RuntimeOptions {
  // Intra-op threads per process (ATen and OpenBLAS). 0 = cores / ranks on this node, at least 1.
  int64_t threads = 0;
};

// `cliphba synth behavior`: a synthetic behaviour set with known latent dimensions.
struct SynthBehaviorOptions {
  std::string out_dir = "results/synth_behavior";  // created if missing
  int64_t n_objects = 48;   // objects (3..400: every distinct triplet is simulated)
  int64_t n_dims = 12;      // embedding dimensions (>= 1)
  int64_t n_active = 3;     // non-zero dimensions per object (1..n_dims): sparsity
  double scale = 1.5;       // mean value of an active dimension; sets how deterministic choices are
  int64_t repeats = 4;      // simulated choices per distinct triplet (>= 1)
  int64_t n_listed = 2000;  // behavioural triplet rows written to triplets.npy (>= 0)
  double model_noise = 0.25;  // sd of the noise in the "model" embedding, relative to scale (>= 0)
  int64_t seed = 1;           // every draw is a pure function of (seed, object/triplet)
};

// `cliphba rsa behavior`: an embedding against a human reference RDM, aligned by image name.
struct RsaBehaviorOptions {
  std::string embedding;  // CSV: `,image_name,0..d-1`
  std::string rdm;        // NPY (n x n) reference dissimilarities
  std::string rdm_names;  // names of the RDM rows, in RDM order (.txt or CSV with image_name)
  std::string triplets;   // optional NPY (t x 3) int64 behavioural choices (a, b, odd), RDM order
  std::string out;        // optional HDF5 results file
  std::vector<std::string> metrics = {"correlation", "cosine", "euclidean", "spose"};
  double symmetry_tolerance = 1e-10;  // largest accepted |a_ij - a_ji| and |a_ii|
};

// `cliphba permute`: permutation tests. A Mantel test runs when mantel.model_rdm is set, a
// sign-flip cluster test when cluster.data is set; both write to `out`.
struct MantelOptions {
  std::string model_rdm;       // NPY (n x n) or condensed (m)
  std::string neural_rdm;      // NPY or HDF5 file: (n x n), (T x n x n) or condensed (T x m)
  std::string neural_dataset;  // dataset path inside an HDF5 neural_rdm (e.g. /meg/rdm)
  std::string model_names;     // optional object names of the model RDM rows
  std::string neural_names;    // optional object names of the neural RDM rows (must equal model's)
  MantelStatistic statistic = MantelStatistic::kSpearman;  // spearman | pearson
  int64_t tail = 1;                    // 1 (model fits better than chance) | 0 (two-sided)
  int64_t n = 1000;                    // random permutations N (p = (1 + #{null >= obs}) / (1 + N))
  int64_t seed = 1;                    // permutation k is a pure function of (seed, k)
  std::string permutations;  // optional NPY (N x n) int64 explicit permutations (overrides n, seed)
};

struct ClusterOptions {
  std::string data;      // NPY (participants x T) alignment values
  double threshold = 0;  // cluster-forming t (negative for tail -1, as MNE); 0 = from threshold_p
  double threshold_p = 0.05;  // used when threshold is 0: t quantile at 1 - p/2 (tail 0) or 1 - p
  int64_t tail = 0;           // -1 | 0 | 1 (MNE's tail)
  int64_t n = 1000;           // sign-flip patterns incl. the observed one (MNE's n_permutations)
  int64_t seed = 1;           // flip k is a pure function of (seed, k)
  std::string flips;          // optional NPY (n - 1 x participants) int8 +-1 explicit flips
};

struct PermuteOptions {
  std::string out;                    // HDF5 results file (checkpoint beside it: OUT.ckpt)
  double time_start_ms = 0;           // time of timepoint 0
  double time_step_ms = 1;            // spacing of timepoints (> 0)
  int64_t batch = 64;                 // permutations per GEMM batch (B)
  int64_t chunk_timepoints = 64;      // timepoints streamed and standardised at once (Tc)
  int64_t checkpoint_every = 2000;    // permutations between checkpoints (rounded up to batches)
  std::string precision = "float32";  // float32 | float64 kernel (observed values are float64)
  std::string device = "cpu";         // cpu | cuda: where the gather + GEMM kernel runs
  bool save_null = false;             // also write the null maxima (N)
  double fdr_alpha = 0.05;            // Benjamini-Hochberg level reported with the FDR-adjusted p
  double progress_seconds = 10;       // rank-0 progress line interval
  int64_t bootstrap_n = 0;            // percentile bootstrap samples for CIs (0 = no bootstrap)
  double bootstrap_level = 0.95;      // CI level
  MantelOptions mantel;
  ClusterOptions cluster;
};

// `cliphba synth images`: coloured shapes on noisy backgrounds with targets that are a known
// function of the shape features (data/behavior_dataset.h), for tests and demos of stage 1.
struct SynthImagesOptions {
  std::string out_dir = "results/synth_images";  // created if missing
  int64_t n_images = 40;                         // images (>= 4)
  int64_t image_size = 32;                       // PNG height = width (pixels)
  int64_t n_dims = 66;                           // target dimensions = prompts written
  int64_t n_heldout = 10;                        // names written to heldout.txt (< n_images)
  int64_t seed = 1;  // every image and target is a pure function of (seed, image index)
};

// `cliphba train behavior` / `cliphba evaluate behavior`: stage 1 of CLIP-HBA (METHOD.md).
struct TrainBehaviorOptions {
  std::string checkpoint;   // base CLIP checkpoint (safetensors, torch.save zip or TorchScript)
  std::string vocab;        // CLIP BPE merges, bpe_simple_vocab_16e6.txt.gz
  VocabRemap vocab_remap = VocabRemap::kNone;  // "" (full 49408-row vocab) | tiny (fixtures' 4096)
  std::string prompts;      // JSON list of the dimension prompts (one per target column)
  std::string labels;       // optional: one label per prompt (text file); "" = the prompt texts
  std::string targets_csv;  // THINGS embedding CSV: ,image_name,0..K-1 (values >= 0)
  std::string image_dir;    // folder of the images; image_name -> file (name, or name + .jpg/.png)
  std::string heldout_names;        // optional: names held out of training, used for evaluation
  std::string reference_rdm;        // optional NPY (n x n): human RDM of the held-out objects
  std::string reference_rdm_names;  // its row names (.txt or CSV); required with reference_rdm
  std::string out_dir = "results/behavior";  // checkpoints, resume state and results
  int64_t image_size = 0;                // model input (pixels); 0 = the checkpoint's resolution
  std::string normalization = "things";  // things | openai: per-channel image mean/std
  int64_t seed = 1;                  // split, shuffles and DoRA init are pure functions of the seed
  double val_fraction = 0.2;         // share of the non-held-out objects used for validation
  int64_t batch = 64;                // global batch size (split across ranks)
  int64_t epochs = 500;              // maximum epochs
  int64_t patience = 20;             // epochs without a validation improvement before stopping
  double lr = 3e-4;                  // AdamW learning rate
  double weight_decay = 0.01;        // AdamW decoupled weight decay (PyTorch's default)
  int64_t dora_rank = 32;            // YAML dora.rank
  double dora_alpha = 16;            // YAML dora.alpha: scaling = alpha / rank (reference: 16)
  int64_t dora_vision_blocks = 2;    // YAML dora.vision_blocks: last N vision blocks adapted
  int64_t dora_text_blocks = 1;      // YAML dora.text_blocks: last M text blocks adapted
  bool dora_train_magnitude = true;  // YAML dora.train_magnitude
  int64_t loader_threads = 2;        // image decoding threads per rank
  std::string precision = "float32";  // float32 | bfloat16 (mixed: GEMMs in bf16, model/precision.h)
  DistBackend dist_backend = DistBackend::kAuto;  // YAML dist.backend: auto | mpi | nccl
  double dist_bucket_mb = 25;         // YAML dist.bucket_mb: gradient all-reduce bucket (MiB)
  double progress_seconds = 10;       // rank-0 progress line interval (s)
};

// The synthetic cohort's behavioural dimensions by name (synth.cohort.dimensions), in the order of
// data::CohortDimensionPrompts(): dimension k is named CohortDimensionNames()[k].
inline const std::vector<std::string>& CohortDimensionNames() {
  static const std::vector<std::string> names = {
      "red",    "round",   "green",  "angular", "blue",  "pointy", "striped",   "crossed",
      "yellow", "large",   "purple", "cyan",    "plain", "small",  "red_round", "green_pointy"};
  return names;
}

// `cliphba synth cohort`: a THINGS-like cohort with known ground truth (data/synth_cohort.h):
// rendered images of objects with latent features, a behavioural embedding over named dimensions
// and its triplet RDM, and per-participant MEG epochs with an early visual and a later semantic
// code.
struct SynthCohortOptions {
  std::string out_dir = "results/synth_cohort";  // created; refused if it holds something else
  int64_t n_objects = 32;          // objects = MEG conditions (4..400; every triplet is simulated)
  // Objects with images and behaviour data only (no MEG), listed before the MEG objects: the
  // behavioural embedding, its triplet RDM and heldout.txt cover n_objects + these, as THINGS'
  // behaviour covers more objects than an MEG study shows. 0 = every object is an MEG condition.
  int64_t behavior_only_objects = 0;
  int64_t n_exemplars = 2;         // images per object; exemplar 0 (`*_01.png`) is the named one
  int64_t image_size = 32;         // PNG height = width (pixels)
  int64_t n_dims = 12;             // behavioural dimensions = prompts (1..16, named)
  // The behavioural dimensions by name (data::CohortDimensionNames(), e.g. "red", "large"), in
  // order; when non-empty they replace the first n_dims of that list (n_dims is then ignored).
  std::vector<std::string> dimensions;
  int64_t n_heldout = 8;           // objects listed in heldout.txt (the last; < all objects)
  int64_t choice_repeats = 4;      // simulated odd-one-out choices per distinct triplet
  int64_t n_participants = 6;      // MEG participants (own-vs-other permutation: 6! = 720)
  int64_t n_sensors = 32;          // MEG channels
  int64_t n_times = 71;            // samples per epoch
  double sfreq = 100;              // sampling rate (Hz): step = 1000 / sfreq ms
  double tmin_ms = -100;           // time of sample 0 (ms)
  int64_t n_trials = 6;            // trials per object per participant (exemplars in turn)
  double visual_latency_ms = 100;  // peak of the visual code's Gaussian time course (ms)
  double semantic_latency_ms = 250;  // peak of the semantic code's time course (ms)
  double latency_jitter_ms = 20;     // participant latencies: latency + U(-jitter, +jitter)
  double visual_width_ms = 25;       // sd of the visual time course (ms)
  double semantic_width_ms = 40;     // sd of the semantic time course (ms)
  double visual_amplitude = 0.6;     // mean peak amplitude of the visual code (per sensor, ~sd)
  double semantic_amplitude = 0.8;   // mean peak amplitude of the semantic code
  double weight_spread = 0.6;        // sd of log participant weights of the semantic dimensions
  // lognormal: each weight exp(weight_spread * N(0, 1)) on its own. ranked: every participant
  // has the same profile, the weight at rank r being exp(-weight_spread * r), in an order of its
  // own whose first dimension no other of the first d participants has first (a seeded
  // permutation of the dimensions, participant p -> its (p mod d)-th), the rest in a random order.
  WeightDesign weight_design = WeightDesign::kLognormal;
  // The MEG's own emphasis of the semantic dimensions, shared by the cohort and absent from the
  // behaviour data: profile exp(-cohort_weight_spread r) at rank r over a seeded order of the
  // dimensions, multiplying every participant's weights (ranked: then each participant's largest
  // weight is swapped back onto its own first dimension). 0: none (the MEG's code is behaviour's).
  double cohort_weight_spread = 0;
  double amplitude_spread = 0.2;     // sd of the log participant amplitudes (visual and semantic)
  // The sensor patterns A_p, B_p: drawn per participant (false), or one draw (participant 0's)
  // for the whole cohort (true). A correlation RDM over sensors is not invariant to the pattern,
  // so per-participant patterns give each participant a geometry of their own even with no
  // planted weights or latencies; a cohort with no individual differences needs true.
  bool shared_sensor_patterns = false;
  double noise = 1;                  // sd of the sensor noise per sample
  int64_t seed = 1;                  // every draw is a pure function of (seed, stream, item)
};

// `cliphba synth model`: a seeded random-init OpenAI CLIP ViT written as safetensors (OpenAI key
// names). The base model of the demos and tests when no real CLIP may be downloaded: the shared
// tiny fixture has 2 vision blocks, and with 2 blocks the MEG head's min-max block weights are
// always one-hot (Wfr cannot learn), so the quickstart uses a deeper one made here.
struct SynthModelOptions {
  std::string out = "results/synth_model/clip.safetensors";  // written atomically
  int64_t vision_layers = 6;      // residual blocks of the image tower
  int64_t vision_width = 64;      // multiple of 64 (heads = width / 64)
  int64_t vision_patch_size = 8;  // pixels
  int64_t image_resolution = 32;  // pixels; a multiple of the patch size
  int64_t embed_dim = 32;         // joint embedding E
  int64_t text_layers = 2;        // text transformer blocks
  int64_t text_width = 64;        // multiple of 64
  int64_t context_length = 77;    // text positions (the tokenizer writes 77)
  int64_t vocab_size = 49408;     // token rows: 49408 = the real CLIP BPE ids (no remap needed)
  int64_t seed = 1;               // torch generator seed of the init (and the pre-training world)
  // Contrastive pre-training on captioned images of the shapes world (train/pretrain.h); 0 = the
  // random init as it is.
  int64_t pretrain_steps = 0;
  int64_t pretrain_batch = 128;   // image-caption pairs per step
  double pretrain_lr = 1e-3;      // peak AdamW learning rate (warm-up, cosine decay)
  std::string vocab;              // CLIP BPE merges (.txt.gz); needed when pretrain_steps > 0
};

// `cliphba run`: the pipeline as resumable units of work in one run folder (pipeline/run.h).
struct RunOptions {
  std::string name = "run";  // run name (results/<name> when out_dir is empty)
  std::string out_dir;       // run folder: unit records, locks, checkpoints; "" = results/<name>
  std::vector<std::string> stages = {"behavior", "group", "individual", "alignment", "report"};
  std::vector<std::string> participants;  // labels (or indices) to model; empty = all of meg.rdm
  int64_t group_size = 0;  // ranks per participant group; 0 = world / min(world, participants)
  int64_t seed = 1;        // seed of the run-level statistics (own-vs-other permutations)
  std::string results;     // results file; "" = <out_dir>/results.h5
  std::string report_script = "scripts/report.py";  // run by /usr/bin/python3 if it exists
  int64_t own_vs_other_n = 10000;  // random label permutations of the own-vs-other test (exact
                                   // enumeration when P! <= n)
  int64_t cluster_n = 1000;  // sign-flip patterns (observed included) of the cluster test of each
                             // model's alignment curve over participants (0 = no cluster test)
  double cluster_p = 0.05;   // cluster-forming threshold as a one-sided t quantile (MNE's default)
  // Out-of-sample MEG alignment when train.meg.heldout_names is empty: every MEG model unit also
  // trains cv_folds models, each without one fold of the objects (folds: data::ObjectFolds of
  // train.meg.seed), and the alignment compares each fold's objects through the model that never
  // trained on them.
  int64_t cv_folds = 4;
  // Comparisons (alignment unit, /compare): bootstrap samples of the CIs of model differences
  // (over participants; over objects for behaviour); 0 = no comparisons.
  int64_t compare_bootstrap_n = 2000;
  // Per-participant peak and AUC CIs (alignment unit): bootstrap samples over objects (within
  // folds) of each participant's curve with the group model and with their own individual
  // model; 0 = none. Skipped (logged) when the work would exceed ~4e9 pair visits.
  int64_t participant_ci_n = 1000;
  // The `predict` stage: every model of the run on these images (a folder, or a text file with
  // one image path per line); "" = the images of train.meg.image_dir (or train.behavior.image_dir
  // when the run has no MEG stage). predict_rdm: also write the model RDMs.
  std::string predict_images;
  bool predict_rdm = true;
};

// MEG RDM stacks (YAML `meg.rdm`): what the MEG loader (meg/rdm_stack.h) reads. NPY inputs are
// (P, T, n, n) or condensed (P, T, m); HDF5 inputs are the dataset `dataset` (rank 4 or 3) with
// names and time axis read from the file (results/README.md, "MEG RDM file").
struct MegRdmOptions {
  std::string path;                 // NPY or HDF5 (.h5/.hdf5) file of RDM stacks
  std::string dataset = "/meg/rdm";  // HDF5 only: dataset path
  std::string names;  // object names in RDM order (.txt or CSV); required for NPY, optional for
                      // HDF5 (overrides /meg/names)
  double time_start_ms = 0;  // NPY only: time of timepoint 0 (ms); HDF5 reads attributes
  double time_step_ms = 1;   // NPY only: timepoint spacing (ms), > 0
  std::string nan_policy = "error";  // error | zero (NaN/Inf replaced by 0 with a warning count)
  RdmRescale rescale = RdmRescale::kMinMax;  // minmax (reference load_rdm: global [0, 1]) | none
  double symmetry_tolerance = 1e-6;  // largest accepted |a_ij - a_ji| and |a_ii|
  double smooth_ms = 0;  // block-mean downsampling (the reference's smoothen_rdm); 0 = off
};

// `cliphba meg rdm` (YAML `meg.epochs`): epoched sensor data -> time-resolved RDMs per participant.
struct MegEpochsOptions {
  std::vector<std::string> files;         // epochs HDF5 files, one per participant
  std::vector<std::string> participants;  // labels (one per file); empty = file attribute or stem
  std::string method = "correlation";     // correlation | crossnobis
  double window_ms = 0;      // centred boxcar average over time (ms); 0 = none
  double step_ms = 0;        // output spacing (ms), an integer multiple of 1/sfreq; 0 = every sample
  double tmin_ms = -1e9;     // crop: first time kept (ms)
  double tmax_ms = 1e9;      // crop: last time kept (ms)
  std::string out;           // MEG RDM HDF5 file written (atomically)
};

// `cliphba train meg` / `cliphba evaluate meg`: CLIP-HBA-MEG stages 2 (group) and 3 (individual),
// METHOD.md. Defaults = METHOD.md's group defaults; values METHOD.md does not give are marked
// "(chosen)". The RDM source is the config's `meg.rdm` section (the app copies it into `rdm`).
struct TrainMegOptions {
  MegRdmOptions rdm;                   // NOT a train.meg key: filled from `meg.rdm` by the app
  MegMode mode = MegMode::kGroup;      // group (target = mean of participants) | individual (one)
  std::vector<std::string> participants;  // labels (or 0-based indices); group: empty = all
  std::string checkpoint;              // base CLIP checkpoint (safetensors, torch zip, TorchScript)
  std::string vocab;                   // CLIP BPE merges, bpe_simple_vocab_16e6.txt.gz
  VocabRemap vocab_remap = VocabRemap::kNone;  // "" | "tiny" (fixtures' 4096-row table)
  std::string prompts;                 // JSON list of the K dimension prompts
  std::string labels;                  // optional: one label per prompt; "" = the prompt texts
  std::string behavior_checkpoint;     // optional stage-1 best.safetensors: its text tower (DoRA)
  // With behavior_checkpoint: true = start the image tower from the stage-1 model too (its adapted
  // vision blocks merged into the base weights; chosen); false = the base checkpoint's image tower
  // with the stage-1 text tower only, which is what the reference does (it loads the stage-1 text
  // encoder and keeps the plain CLIP vision tower).
  bool behavior_vision = true;
  std::string image_dir;               // images named like the RDM objects (name, name.png/.jpg)
  std::string heldout_names;           // optional: objects kept out of training (alignment)
  std::string out_dir = "results/meg_group";  // checkpoints, resume state, evaluation
  int64_t image_size = 0;                // 0 = the checkpoint's resolution
  std::string normalization = "things";  // things | openai
  double train_start_ms = 0;   // first training time (ms) (chosen)
  double train_end_ms = 700;   // last training time (ms), inclusive (chosen)
  double train_step_ms = 5;    // spacing of training times (ms) (chosen; 0..700/5 = 141 points)
  double window_ms = 10;       // +- window of Wfr rows, richness and beta means (ms) (chosen)
  double noise_scale = 1.0;    // noise level curve = minmax(smoothed 1 - beta) * noise_scale (chosen)
  double noise_sigma = 3.0;    // Gaussian smoothing of 1 - beta (timepoints)
  bool noise = true;           // Gaussian noise term in training
  // The noise term in validation and prediction too, drawn from seeded streams (the reference
  // adds it everywhere, so it enters P0/M0/G0 and the checkpoint choice). Needs `noise`.
  bool noise_eval = false;
  // Batch compositions drawn once (epoch 0's order) and only their order shuffled per epoch, as
  // the reference's list(train_loader) + random.shuffle; false = a fresh permutation every epoch.
  bool fixed_batches = false;
  // DoRA on the vision blocks from the start (the reference: applied before phase 1 and kept
  // fixed there, so Wfr, P0/M0/G0 and phase 1's features come from the perturbed network, and
  // phase 2 continues from the same adapters); false = DoRA added, freshly drawn, at phase 2.
  bool dora_from_start = false;
  // The head's curves (richness, beta, noise) from every participant of the stack and every
  // object, held-out ones included (the reference); false = the modelled participants' training
  // objects only (no held-out object informs training).
  bool curves_from_all = false;
  int64_t seed = 1;            // split, shuffles, DoRA init and noise draws: pure functions of it
  double val_fraction = 0.2;   // validation share of the non-held-out objects
  int64_t batch = 50;          // global batch size (objects)
  int64_t epochs = 50;         // maximum epochs, both phases together
  int64_t phase1_epochs = 0;   // phase 1 (Wfr only) at most this many epochs; 0 = until patience
  int64_t patience_phase1 = 3;   // phase-1 epochs without a checkpoint before phase 2 (chosen)
  int64_t patience_phase2 = 10;  // phase-2 epochs without a checkpoint before stopping (chosen)
  // Wfr's start: "last" = the reference's (1 on the last block, 0 elsewhere; its weights sit on
  // relu's kink, where the only gradient is ~1e-6, see model/meg_head.h) or "ramp" = block j gets
  // j / (L - 1) at every timepoint (the same last-block-first ordering, off the kink).
  WfrInit wfr_init = WfrInit::kRamp;  // the reference: kLast (src/train/README.md, differences)
  double lr_wfr_1 = 3e-3;      // AdamW learning rate of Wfr in phase 1
  double lr_wfr_2 = 3e-3;      // ... of Wfr in phase 2 (chosen: unchanged)
  double lr_dora = 3e-5;       // ... of the DoRA parameters in phase 2
  double weight_decay = 0.01;  // AdamW decoupled weight decay (PyTorch's default)
  int64_t dora_rank = 32;             // YAML dora.rank
  double dora_alpha = 16;             // YAML dora.alpha (reference DoRALayer default)
  int64_t dora_vision_blocks = -1;    // YAML dora.vision_blocks: last N vision blocks; -1 = all
  bool dora_train_magnitude = false;  // YAML dora.train_magnitude: direction only by default
  double p_weight = 1.0;    // YAML loss.p_weight: Pearson term
  double m_weight = 0.1;    // YAML loss.m_weight: MSE term
  double g_weight = 0.15;   // YAML loss.g_weight: time-generalisation term
  int64_t loader_threads = 2;         // image decoding threads per rank
  std::string precision = "float32";  // float32 | bfloat16 (phase 2's image tower in bf16)
  DistBackend dist_backend = DistBackend::kAuto;  // YAML dist.backend
  double dist_bucket_mb = 25;         // YAML dist.bucket_mb
  double progress_seconds = 10;       // rank-0 progress line interval (s)
};

struct Config {
  LogOptions log;
  RuntimeOptions runtime;
  SynthBehaviorOptions synth_behavior;  // YAML: synth.behavior
  SynthImagesOptions synth_images;      // YAML: synth.images
  RsaBehaviorOptions rsa_behavior;      // YAML: rsa.behavior
  PermuteOptions permute;               // YAML: permute
  TrainBehaviorOptions train_behavior;  // YAML: train.behavior
  SynthCohortOptions synth_cohort;      // YAML: synth.cohort
  SynthModelOptions synth_model;        // YAML: synth.model
  RunOptions run;                       // YAML: run
  MegRdmOptions meg_rdm;                // YAML: meg.rdm
  MegEpochsOptions meg_epochs;          // YAML: meg.epochs
  TrainMegOptions train_meg;            // YAML: train.meg (+ meg.rdm)
};

}  // namespace cliphba::config
