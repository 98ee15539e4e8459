#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"

namespace cliphba::config {

namespace {

enum class Kind { kString, kInteger, kNumber, kBoolean, kStringList };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kString:
      return "string";
    case Kind::kInteger:
      return "integer";
    case Kind::kNumber:
      return "number";
    case Kind::kBoolean:
      return "boolean";
    case Kind::kStringList:
      return "list of strings";
  }
  return "?";
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// One key: where it lives in Config, its type, range and documentation.
struct Field {
  std::string path;
  Kind kind;
  void* target;
  std::string doc;
  double min = -kInf;
  double max = kInf;
  std::vector<std::string> choices;  // allowed values (strings and list elements); empty = any
};

Field Str(std::string path, std::string* t, std::string doc,
          std::vector<std::string> choices = {}) {
  return {std::move(path), Kind::kString, t, std::move(doc), -kInf, kInf, std::move(choices)};
}
Field Int(std::string path, int64_t* t, std::string doc, double min, double max = kInf) {
  return {std::move(path), Kind::kInteger, t, std::move(doc), min, max, {}};
}
// A random seed: any integer a double holds exactly (0 .. 2^53); doc + " (0 .. 2^53)".
Field Seed(std::string path, int64_t* t, const std::string& doc = "random seed") {
  return Int(std::move(path), t, doc + " (0 .. 2^53)", 0, 9007199254740992.0);
}
Field Num(std::string path, double* t, std::string doc, double min, double max = kInf) {
  return {std::move(path), Kind::kNumber, t, std::move(doc), min, max, {}};
}
Field Bool(std::string path, bool* t, std::string doc) {
  return {std::move(path), Kind::kBoolean, t, std::move(doc), -kInf, kInf, {}};
}
Field List(std::string path, std::vector<std::string>* t, std::string doc,
           std::vector<std::string> choices = {}) {
  return {std::move(path), Kind::kStringList, t, std::move(doc), -kInf, kInf, std::move(choices)};
}

// The schema, bound to the members of `c`. Declaration order = documentation order.
std::vector<Field> Schema(Config* c) {
  const std::vector<std::string> metrics = {"correlation", "cosine", "euclidean", "spose"};
  auto& sb = c->synth_behavior;
  auto& rb = c->rsa_behavior;
  auto& pm = c->permute;
  auto& mt = c->permute.mantel;
  auto& cl = c->permute.cluster;
  auto& si = c->synth_images;
  auto& tb = c->train_behavior;
  auto& sc = c->synth_cohort;
  auto& sm = c->synth_model;
  auto& rn = c->run;
  const std::vector<std::string> stages = {"behavior", "group", "individual", "alignment",
                                           "report"};
  auto& mr = c->meg_rdm;
  auto& me = c->meg_epochs;
  auto& tm = c->train_meg;
  return {
      Str("log.level", &c->log.level, "log verbosity",
          {"trace", "debug", "info", "warn", "error", "off"}),
      Bool("log.all_ranks", &c->log.all_ranks, "print info lines on every MPI rank"),
      Int("runtime.threads", &c->runtime.threads,
          "intra-op threads per process (ATen + OpenBLAS); 0 = cores / ranks on the node", 0, 4096),
      Str("synth.behavior.out_dir", &sb.out_dir, "output folder of the synthetic behaviour set"),
      Int("synth.behavior.n_objects", &sb.n_objects,
          "number of objects (every triplet is simulated: at most 400)", 3, 400),
      Int("synth.behavior.n_dims", &sb.n_dims, "embedding dimensions", 1, 4096),
      Int("synth.behavior.n_active", &sb.n_active, "non-zero dimensions per object (<= n_dims)", 1,
          4096),
      Num("synth.behavior.scale", &sb.scale, "mean value of an active dimension", 1e-6, 1e3),
      Int("synth.behavior.repeats", &sb.repeats, "simulated choices per distinct triplet", 1,
          100000),
      Int("synth.behavior.n_listed", &sb.n_listed, "behavioural triplet rows in triplets.npy", 0,
          1e9),
      Num("synth.behavior.model_noise", &sb.model_noise,
          "noise sd of the model embedding, relative to scale", 0, 1e3),
      Seed("synth.behavior.seed", &sb.seed),
      Str("synth.images.out_dir", &si.out_dir, "output folder of the synthetic image set"),
      Int("synth.images.n_images", &si.n_images, "number of images", 4, 100000),
      Int("synth.images.image_size", &si.image_size, "PNG height = width in pixels", 8, 4096),
      Int("synth.images.n_dims", &si.n_dims, "target dimensions (= prompts written)", 1, 4096),
      Int("synth.images.n_heldout", &si.n_heldout, "names written to heldout.txt (< n_images)", 0,
          100000),
      Seed("synth.images.seed", &si.seed),
      Str("synth.cohort.out_dir", &sc.out_dir, "output folder of the synthetic cohort"),
      Int("synth.cohort.n_objects", &sc.n_objects,
          "objects = MEG conditions (every triplet simulated)", 4, 400),
      Int("synth.cohort.n_exemplars", &sc.n_exemplars, "images per object (exemplar 0 is named)", 1,
          100),
      Int("synth.cohort.image_size", &sc.image_size, "PNG height = width in pixels", 8, 1024),
      Int("synth.cohort.n_dims", &sc.n_dims, "named behavioural dimensions (= prompts)", 1, 16),
      Int("synth.cohort.n_heldout", &sc.n_heldout, "objects in heldout.txt (< n_objects)", 0, 399),
      Int("synth.cohort.choice_repeats", &sc.choice_repeats,
          "simulated odd-one-out choices per distinct triplet", 1, 10000),
      Int("synth.cohort.n_participants", &sc.n_participants, "MEG participants", 1, 1000),
      Int("synth.cohort.n_sensors", &sc.n_sensors, "MEG channels", 1, 10000),
      Int("synth.cohort.n_times", &sc.n_times, "samples per epoch", 2, 100000),
      Num("synth.cohort.sfreq", &sc.sfreq, "sampling rate in Hz", 1e-3, 1e6),
      Num("synth.cohort.tmin_ms", &sc.tmin_ms, "time of sample 0 in ms", -1e6, 1e6),
      Int("synth.cohort.n_trials", &sc.n_trials, "trials per object per participant", 1, 10000),
      Num("synth.cohort.visual_latency_ms", &sc.visual_latency_ms,
          "peak time of the visual code in ms", -1e6, 1e6),
      Num("synth.cohort.semantic_latency_ms", &sc.semantic_latency_ms,
          "peak time of the semantic code in ms", -1e6, 1e6),
      Num("synth.cohort.latency_jitter_ms", &sc.latency_jitter_ms,
          "participant latency jitter: U(-j, +j) ms", 0, 1e6),
      Num("synth.cohort.visual_width_ms", &sc.visual_width_ms,
          "sd of the visual code's Gaussian time course in ms", 1e-3, 1e6),
      Num("synth.cohort.semantic_width_ms", &sc.semantic_width_ms,
          "sd of the semantic code's Gaussian time course in ms", 1e-3, 1e6),
      Num("synth.cohort.visual_amplitude", &sc.visual_amplitude,
          "mean peak amplitude of the visual code", 0, 1e6),
      Num("synth.cohort.semantic_amplitude", &sc.semantic_amplitude,
          "mean peak amplitude of the semantic code", 0, 1e6),
      Num("synth.cohort.weight_spread", &sc.weight_spread,
          "sd of the log participant weights of the semantic dimensions", 0, 10),
      Num("synth.cohort.noise", &sc.noise, "sd of the sensor noise per sample", 0, 1e6),
      Seed("synth.cohort.seed", &sc.seed),
      Str("synth.model.out", &sm.out, "safetensors file of the random-init CLIP"),
      Int("synth.model.vision_layers", &sm.vision_layers, "image tower blocks", 1, 256),
      Int("synth.model.vision_width", &sm.vision_width, "image tower width (multiple of 64)", 64,
          8192),
      Int("synth.model.vision_patch_size", &sm.vision_patch_size, "patch size in pixels", 1, 1024),
      Int("synth.model.image_resolution", &sm.image_resolution,
          "input height = width in pixels (multiple of the patch size)", 1, 8192),
      Int("synth.model.embed_dim", &sm.embed_dim, "joint embedding dimension", 1, 8192),
      Int("synth.model.text_layers", &sm.text_layers, "text transformer blocks", 1, 256),
      Int("synth.model.text_width", &sm.text_width, "text transformer width (multiple of 64)", 64,
          8192),
      Int("synth.model.context_length", &sm.context_length, "text positions", 1, 4096),
      Int("synth.model.vocab_size", &sm.vocab_size, "token embedding rows", 2, 1000000),
      Seed("synth.model.seed", &sm.seed, "random seed of the init"),
      Str("rsa.behavior.embedding", &rb.embedding, "embedding CSV (,image_name,0..d-1)"),
      Str("rsa.behavior.rdm", &rb.rdm, "reference RDM, NPY (n x n)"),
      Str("rsa.behavior.rdm_names", &rb.rdm_names, "RDM row names in RDM order (.txt or .csv)"),
      Str("rsa.behavior.triplets", &rb.triplets,
          "optional NPY (t x 3) int64 behavioural choices (a, b, odd) in RDM order"),
      Str("rsa.behavior.out", &rb.out, "optional HDF5 results file"),
      List("rsa.behavior.metrics", &rb.metrics, "model RDM types to compute", metrics),
      Num("rsa.behavior.symmetry_tolerance", &rb.symmetry_tolerance,
          "largest accepted asymmetry |a_ij - a_ji| and diagonal |a_ii| of the reference RDM", 0,
          1),
      Str("permute.out", &pm.out, "HDF5 results file (checkpoint: OUT.ckpt)"),
      Num("permute.time_start_ms", &pm.time_start_ms, "time of timepoint 0 in ms", -1e9, 1e9),
      Num("permute.time_step_ms", &pm.time_step_ms, "timepoint spacing in ms", 1e-9, 1e9),
      Int("permute.batch", &pm.batch, "permutations per GEMM batch", 1, 65536),
      Int("permute.chunk_timepoints", &pm.chunk_timepoints, "timepoints streamed at once", 1, 1e9),
      Int("permute.checkpoint_every", &pm.checkpoint_every, "permutations between checkpoints", 1,
          1e12),
      Str("permute.precision", &pm.precision, "Mantel kernel precision", {"float32", "float64"}),
      Str("permute.device", &pm.device, "device of the Mantel kernel", {"cpu", "cuda"}),
      Bool("permute.save_null", &pm.save_null, "also write the null maxima"),
      Num("permute.fdr_alpha", &pm.fdr_alpha, "Benjamini-Hochberg FDR level", 1e-12, 1),
      Num("permute.progress_seconds", &pm.progress_seconds, "progress line interval (s)", 0, 1e6),
      Int("permute.bootstrap_n", &pm.bootstrap_n,
          "bootstrap samples for CIs of curves, peak latency and AUC (0 = off)", 0, 1e9),
      Num("permute.bootstrap_level", &pm.bootstrap_level, "bootstrap CI level", 1e-6, 0.999999),
      Str("permute.mantel.model_rdm", &mt.model_rdm, "model RDM NPY ((n x n) or condensed)"),
      Str("permute.mantel.neural_rdm", &mt.neural_rdm,
          "neural RDM NPY: (n x n), (T x n x n) or condensed (T x m)"),
      Str("permute.mantel.neural_dataset", &mt.neural_dataset,
          "dataset inside an HDF5 neural_rdm file (e.g. /meg/rdm)"),
      Str("permute.mantel.model_names", &mt.model_names, "optional object names of the model RDM"),
      Str("permute.mantel.neural_names", &mt.neural_names,
          "optional object names of the neural RDM"),
      Str("permute.mantel.statistic", &mt.statistic, "RDM correlation", {"spearman", "pearson"}),
      Int("permute.mantel.tail", &mt.tail, "1 = upper, 0 = two-sided", 0, 1),
      Int("permute.mantel.n", &mt.n, "random permutations", 1, 1e12),
      Seed("permute.mantel.seed", &mt.seed),
      Str("permute.mantel.permutations", &mt.permutations,
          "optional NPY (N x n) int64 explicit permutations"),
      Str("permute.cluster.data", &cl.data, "NPY (participants x T) alignment values"),
      Num("permute.cluster.threshold", &cl.threshold,
          "cluster-forming t, negative for tail -1 (0 = from threshold_p)", -1e6, 1e6),
      Num("permute.cluster.threshold_p", &cl.threshold_p, "p for the t-quantile threshold", 1e-12,
          0.5),
      Int("permute.cluster.tail", &cl.tail, "-1, 0 or 1 (MNE's tail)", -1, 1),
      Int("permute.cluster.n", &cl.n, "sign-flip patterns incl. the observed", 2, 1e12),
      Seed("permute.cluster.seed", &cl.seed),
      Str("permute.cluster.flips", &cl.flips,
          "optional NPY ((n - 1) x participants) int8 +-1 explicit flips"),
      Str("train.behavior.checkpoint", &tb.checkpoint, "base CLIP checkpoint file"),
      Str("train.behavior.vocab", &tb.vocab, "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)"),
      Str("train.behavior.vocab_remap", &tb.vocab_remap,
          "token-id remap: \"\" (none) | tiny (fixtures' 4096-row vocabulary)", {"", "tiny"}),
      Str("train.behavior.prompts", &tb.prompts, "JSON list of the dimension prompts"),
      Str("train.behavior.targets_csv", &tb.targets_csv,
          "target embedding CSV (,image_name,0..K-1), K = number of prompts"),
      Str("train.behavior.image_dir", &tb.image_dir, "folder of the images"),
      Str("train.behavior.heldout_names", &tb.heldout_names,
          "optional list of held-out names (.txt or .csv)"),
      Str("train.behavior.reference_rdm", &tb.reference_rdm,
          "optional NPY (n x n) human RDM of the held-out objects"),
      Str("train.behavior.reference_rdm_names", &tb.reference_rdm_names,
          "row names of reference_rdm (.txt or .csv)"),
      Str("train.behavior.out_dir", &tb.out_dir, "checkpoints, resume state and results"),
      Int("train.behavior.image_size", &tb.image_size,
          "model input size in pixels; 0 = the checkpoint's", 0, 4096),
      Str("train.behavior.normalization", &tb.normalization,
          "image mean/std: THINGS statistics or OpenAI CLIP's", {"things", "openai"}),
      Seed("train.behavior.seed", &tb.seed),
      Num("train.behavior.val_fraction", &tb.val_fraction, "validation share", 1e-6, 0.999999),
      Int("train.behavior.batch", &tb.batch, "global batch size", 1, 1e6),
      Int("train.behavior.epochs", &tb.epochs, "maximum epochs", 0, 1e6),
      Int("train.behavior.patience", &tb.patience, "epochs without improvement before stopping", 1,
          1e6),
      Num("train.behavior.lr", &tb.lr, "AdamW learning rate", 0, 10),
      Num("train.behavior.weight_decay", &tb.weight_decay, "AdamW decoupled weight decay", 0, 10),
      Int("train.behavior.dora.rank", &tb.dora_rank, "DoRA rank r", 1, 4096),
      Num("train.behavior.dora.alpha", &tb.dora_alpha, "DoRA alpha (scaling = alpha / rank)", 1e-9,
          1e9),
      Int("train.behavior.dora.vision_blocks", &tb.dora_vision_blocks,
          "last N vision blocks adapted", 0, 1000),
      Int("train.behavior.dora.text_blocks", &tb.dora_text_blocks, "last M text blocks adapted", 0,
          1000),
      Bool("train.behavior.dora.train_magnitude", &tb.dora_train_magnitude,
           "train the DoRA magnitude m"),
      Int("train.behavior.loader_threads", &tb.loader_threads, "image decoding threads per rank", 1,
          256),
      Str("train.behavior.dist.backend", &tb.dist_backend, "gradient all-reduce backend",
          {"auto", "mpi", "nccl"}),
      Num("train.behavior.dist.bucket_mb", &tb.dist_bucket_mb, "all-reduce bucket size (MiB)",
          0.001, 1e5),
      Num("train.behavior.progress_seconds", &tb.progress_seconds, "progress line interval (s)", 0,
          1e6),
      Str("run.name", &rn.name,
          "run name (the run folder is results/<name> unless out_dir is set)"),
      Str("run.out_dir", &rn.out_dir, "run folder: unit records, locks, checkpoints"),
      List("run.stages", &rn.stages, "stages this run performs, in pipeline order", stages),
      List("run.participants", &rn.participants,
           "participant labels (or indices) to model; empty = every participant of meg.rdm"),
      Int("run.group_size", &rn.group_size,
          "MPI ranks per participant group; 0 = world / min(world, participants)", 0, 1e6),
      Seed("run.seed", &rn.seed, "seed of the run-level statistics"),
      Str("run.results", &rn.results, "results HDF5 file; \"\" = <out_dir>/results.h5"),
      Str("run.report_script", &rn.report_script,
          "report script run by /usr/bin/python3 after the results file (skipped if missing)"),
      Int("run.own_vs_other_n", &rn.own_vs_other_n,
          "own-vs-other label permutations (exact enumeration when P! <= n)", 1, 1e12),
      Int("run.cluster_n", &rn.cluster_n,
          "sign-flip patterns of the alignment cluster test, observed included (0 = none)", 0, 1e9),
      Num("run.cluster_p", &rn.cluster_p, "cluster-forming threshold p (one-sided t quantile)",
          1e-12, 0.5),
      Str("meg.rdm.path", &mr.path, "MEG RDM stacks: NPY (P,T,n,n) / (P,T,m) or HDF5"),
      Str("meg.rdm.dataset", &mr.dataset, "HDF5 dataset of the RDM stacks (rank 3 or 4)"),
      Str("meg.rdm.names", &mr.names,
          "object names in RDM order (.txt or .csv); NPY: required, HDF5: overrides /meg/names"),
      Num("meg.rdm.time_start_ms", &mr.time_start_ms, "NPY: time of timepoint 0 in ms", -1e9, 1e9),
      Num("meg.rdm.time_step_ms", &mr.time_step_ms, "NPY: timepoint spacing in ms", 1e-9, 1e9),
      Str("meg.rdm.nan_policy", &mr.nan_policy, "NaN/Inf in RDMs: refuse, or replace by 0",
          {"error", "zero"}),
      Str("meg.rdm.rescale", &mr.rescale, "global min-max rescale to [0, 1]", {"minmax", "none"}),
      Num("meg.rdm.symmetry_tolerance", &mr.symmetry_tolerance,
          "largest accepted |a_ij - a_ji| and |a_ii| of MEG RDMs", 0, 1),
      List("meg.epochs.files", &me.files, "epochs HDF5 files, one per participant"),
      List("meg.epochs.participants", &me.participants,
           "participant labels, one per file (empty: file attribute or file stem)"),
      Str("meg.epochs.method", &me.method, "RDM distance", {"correlation", "crossnobis"}),
      Num("meg.epochs.window_ms", &me.window_ms, "centred boxcar window in ms (0 = none)", 0, 1e9),
      Num("meg.epochs.step_ms", &me.step_ms, "output timepoint spacing in ms (0 = every sample)", 0,
          1e9),
      Num("meg.epochs.tmin_ms", &me.tmin_ms, "crop: first time kept (ms)", -1e9, 1e9),
      Num("meg.epochs.tmax_ms", &me.tmax_ms, "crop: last time kept (ms)", -1e9, 1e9),
      Str("meg.epochs.out", &me.out, "MEG RDM HDF5 file written"),
      Str("train.meg.mode", &tm.mode, "group (mean of participants) or individual (one)",
          {"group", "individual"}),
      List("train.meg.participants", &tm.participants,
           "participant labels or 0-based indices (group: empty = all; individual: one)"),
      Str("train.meg.checkpoint", &tm.checkpoint, "base CLIP checkpoint file"),
      Str("train.meg.vocab", &tm.vocab, "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)"),
      Str("train.meg.vocab_remap", &tm.vocab_remap, "token id remap", {"", "tiny"}),
      Str("train.meg.prompts", &tm.prompts, "JSON list of the dimension prompts"),
      Str("train.meg.behavior_checkpoint", &tm.behavior_checkpoint,
          "optional stage-1 best.safetensors whose text tower is used (frozen)"),
      Bool("train.meg.behavior_vision", &tm.behavior_vision,
           "with behavior_checkpoint: the image tower starts from the stage-1 model too"),
      Str("train.meg.image_dir", &tm.image_dir, "folder of the images, named like the RDM objects"),
      Str("train.meg.heldout_names", &tm.heldout_names,
          "optional: objects kept out of training (.txt or .csv)"),
      Str("train.meg.out_dir", &tm.out_dir, "checkpoints, resume state and results"),
      Int("train.meg.image_size", &tm.image_size, "model input in pixels (0 = the checkpoint's)", 0,
          4096),
      Str("train.meg.normalization", &tm.normalization, "image mean/std preset",
          {"things", "openai"}),
      Num("train.meg.train_start_ms", &tm.train_start_ms, "first training time (ms)", -1e9, 1e9),
      Num("train.meg.train_end_ms", &tm.train_end_ms, "last training time (ms), inclusive", -1e9,
          1e9),
      Num("train.meg.train_step_ms", &tm.train_step_ms, "training time spacing (ms)", 1e-9, 1e9),
      Num("train.meg.window_ms", &tm.window_ms, "+- window around each training time (ms)", 0, 1e9),
      Num("train.meg.noise_scale", &tm.noise_scale, "scale of the noise level curve", 0, 1e6),
      Num("train.meg.noise_sigma", &tm.noise_sigma, "Gaussian smoothing of 1 - beta (timepoints)",
          1e-9, 1e6),
      Bool("train.meg.noise", &tm.noise, "Gaussian noise term during training"),
      Str("train.meg.wfr_init", &tm.wfr_init,
          "Wfr start: last (reference: 1 on the last block) | ramp (block j: j / (L - 1))",
          {"last", "ramp"}),
      Seed("train.meg.seed", &tm.seed),
      Num("train.meg.val_fraction", &tm.val_fraction, "validation share", 1e-6, 0.999999),
      Int("train.meg.batch", &tm.batch, "global batch size (>= 3 objects)", 3, 1e6),
      Int("train.meg.epochs", &tm.epochs, "maximum epochs (both phases)", 0, 1e6),
      Int("train.meg.phase1_epochs", &tm.phase1_epochs,
          "phase-1 epochs at most (0 = until patience)", 0, 1e6),
      Int("train.meg.patience_phase1", &tm.patience_phase1,
          "phase-1 epochs without a checkpoint before phase 2", 1, 1e6),
      Int("train.meg.patience_phase2", &tm.patience_phase2,
          "phase-2 epochs without a checkpoint before stopping", 1, 1e6),
      Num("train.meg.lr_wfr_1", &tm.lr_wfr_1, "AdamW learning rate of Wfr, phase 1", 0, 10),
      Num("train.meg.lr_wfr_2", &tm.lr_wfr_2, "AdamW learning rate of Wfr, phase 2", 0, 10),
      Num("train.meg.lr_dora", &tm.lr_dora, "AdamW learning rate of DoRA, phase 2", 0, 10),
      Num("train.meg.weight_decay", &tm.weight_decay, "AdamW decoupled weight decay", 0, 10),
      Int("train.meg.dora.rank", &tm.dora_rank, "DoRA rank r", 1, 4096),
      Num("train.meg.dora.alpha", &tm.dora_alpha, "DoRA alpha (scaling = alpha / rank)", 1e-9, 1e9),
      Int("train.meg.dora.vision_blocks", &tm.dora_vision_blocks,
          "last N vision blocks adapted in phase 2 (-1 = all)", -1, 4096),
      Bool("train.meg.dora.train_magnitude", &tm.dora_train_magnitude,
           "train the DoRA magnitude m"),
      Num("train.meg.loss.p_weight", &tm.p_weight, "weight of the Pearson loss", 0, 1e6),
      Num("train.meg.loss.m_weight", &tm.m_weight, "weight of the MSE loss", 0, 1e6),
      Num("train.meg.loss.g_weight", &tm.g_weight, "weight of the generalisation loss", 0, 1e6),
      Int("train.meg.loader_threads", &tm.loader_threads, "image decoding threads per rank", 1,
          256),
      Str("train.meg.dist.backend", &tm.dist_backend, "gradient all-reduce backend",
          {"auto", "mpi", "nccl"}),
      Num("train.meg.dist.bucket_mb", &tm.dist_bucket_mb, "all-reduce bucket size (MiB)", 0.001,
          1e5),
      Num("train.meg.progress_seconds", &tm.progress_seconds, "progress line interval (s)", 0, 1e6),
  };
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string FormatNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  // Shortest text that reads back to the same double, for readability.
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) {
      s = buf;
      break;
    }
  }
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string ValueText(const Field& f) {
  switch (f.kind) {
    case Kind::kString:
      return Quote(*static_cast<std::string*>(f.target));
    case Kind::kInteger:
      return std::to_string(*static_cast<int64_t*>(f.target));
    case Kind::kNumber:
      return FormatNumber(*static_cast<double*>(f.target));
    case Kind::kBoolean:
      return *static_cast<bool*>(f.target) ? "true" : "false";
    case Kind::kStringList: {
      std::string out = "[";
      for (const auto& s : *static_cast<std::vector<std::string>*>(f.target))
        out += (out.size() > 1 ? ", " : "") + Quote(s);
      return out + "]";
    }
  }
  return "";
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggestion(const std::string& path, const std::vector<Field>& fields) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  auto consider = [&](const std::string& candidate) {
    size_t d = EditDistance(path, candidate);
    if (d < best_d) best_d = d, best = candidate;
  };
  for (const Field& f : fields) {
    consider(f.path);
    // Also every section prefix ("rsa.behavior"), for misspelt sections.
    for (size_t dot = f.path.find('.'); dot != std::string::npos; dot = f.path.find('.', dot + 1))
      consider(f.path.substr(0, dot));
  }
  if (best_d <= std::max<size_t>(3, path.size() / 3)) return "; did you mean '" + best + "'?";
  return "; see configs/reference.yaml for every key";
}

struct Source {
  std::string name;  // file path or "--set"
  std::string Where(const YAML::Mark& mark) const {
    if (name == "--set" || mark.is_null()) return name;
    return name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
};

[[noreturn]] void Fail(const Source& src, const YAML::Mark& mark, const std::string& path,
                       const std::string& what) {
  throw ConfigError(src.Where(mark) + ": " + path + ": " + what);
}

std::string Describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing (null)";
}

void CheckChoice(const Field& f, const std::string& value, const Source& src,
                 const YAML::Mark& mark) {
  if (f.choices.empty() || std::find(f.choices.begin(), f.choices.end(), value) != f.choices.end())
    return;
  std::string list;
  for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
  Fail(src, mark, f.path, "expected one of " + list + ", got '" + value + "'");
}

std::string RangeText(const Field& f) {
  std::string lo = f.kind == Kind::kInteger ? std::to_string(int64_t(f.min)) : FormatNumber(f.min);
  std::string hi = f.kind == Kind::kInteger ? std::to_string(int64_t(f.max)) : FormatNumber(f.max);
  if (f.max == kInf) return ">= " + lo;
  return "in [" + lo + ", " + hi + "]";
}

// Assigns `node` (a YAML value) to field `f`. raw_string: take a --set string value verbatim.
void Assign(const Field& f, const YAML::Node& node, const Source& src, const char* raw_string) {
  const YAML::Mark mark = node.Mark();
  const std::string expected =
      std::string("expected ") + (f.kind == Kind::kInteger ? "an " : "a ") + KindName(f.kind);
  if (f.kind == Kind::kStringList) {
    if (!node.IsSequence()) Fail(src, mark, f.path, expected + ", got " + Describe(node));
    std::vector<std::string> values;
    for (const auto& item : node) {
      if (!item.IsScalar()) Fail(src, item.Mark(), f.path, "expected a list of strings");
      CheckChoice(f, item.Scalar(), src, item.Mark());
      values.push_back(item.Scalar());
    }
    *static_cast<std::vector<std::string>*>(f.target) = values;
    return;
  }
  if (raw_string == nullptr && !node.IsScalar())
    Fail(src, mark, f.path, expected + ", got " + Describe(node));
  const std::string text = raw_string ? raw_string : node.Scalar();
  switch (f.kind) {
    case Kind::kString:
      CheckChoice(f, text, src, mark);
      *static_cast<std::string*>(f.target) = text;
      return;
    case Kind::kBoolean: {
      static const std::vector<std::string> t = {"true", "True", "TRUE", "yes", "on"};
      static const std::vector<std::string> fl = {"false", "False", "FALSE", "no", "off"};
      if (std::find(t.begin(), t.end(), text) != t.end()) {
        *static_cast<bool*>(f.target) = true;
      } else if (std::find(fl.begin(), fl.end(), text) != fl.end()) {
        *static_cast<bool*>(f.target) = false;
      } else {
        Fail(src, mark, f.path, "expected a boolean (true or false), got '" + text + "'");
      }
      return;
    }
    case Kind::kInteger:
    case Kind::kNumber: {
      char* end = nullptr;
      errno = 0;
      double v = 0;
      if (f.kind == Kind::kInteger) {
        long long iv = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE)
          Fail(src, mark, f.path, "expected an integer " + RangeText(f) + ", got '" + text + "'");
        v = double(iv);
        if (v < f.min || v > f.max)
          Fail(src, mark, f.path, "expected an integer " + RangeText(f) + ", got " + text);
        *static_cast<int64_t*>(f.target) = iv;
      } else {
        v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v))
          Fail(src, mark, f.path,
               "expected a finite number " + RangeText(f) + ", got '" + text + "'");
        if (v < f.min || v > f.max)
          Fail(src, mark, f.path, "expected a number " + RangeText(f) + ", got " + text);
        *static_cast<double*>(f.target) = v;
      }
      return;
    }
    case Kind::kStringList:
      break;
  }
}

const Field* Find(const std::vector<Field>& fields, const std::string& path) {
  for (const Field& f : fields)
    if (f.path == path) return &f;
  return nullptr;
}

bool IsSection(const std::vector<Field>& fields, const std::string& path) {
  for (const Field& f : fields)
    if (f.path.compare(0, path.size() + 1, path + ".") == 0) return true;
  return false;
}

void Walk(const YAML::Node& map, const std::string& prefix, const std::vector<Field>& fields,
          const Source& src) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (const Field* f = Find(fields, path)) {
      Assign(*f, kv.second, src, nullptr);
    } else if (IsSection(fields, path)) {
      if (kv.second.IsNull()) continue;  // an empty section
      if (!kv.second.IsMap())
        Fail(src, kv.second.Mark(), path, "expected a mapping of keys, got " + Describe(kv.second));
      Walk(kv.second, path, fields, src);
    } else {
      Fail(src, kv.first.Mark(), path, "unknown key" + Suggestion(path, fields));
    }
  }
}

void ValidateCrossField(const Config& c) {
  if (c.synth_behavior.n_active > c.synth_behavior.n_dims) {
    throw ConfigError("synth.behavior.n_active (" + std::to_string(c.synth_behavior.n_active) +
                      ") must not exceed synth.behavior.n_dims (" +
                      std::to_string(c.synth_behavior.n_dims) + ")");
  }
  {
    const auto& m = c.synth_model;
    if (m.vision_width % 64 != 0 || m.text_width % 64 != 0)
      throw ConfigError("synth.model.vision_width (" + std::to_string(m.vision_width) +
                        ") and synth.model.text_width (" + std::to_string(m.text_width) +
                        ") must be multiples of 64 (CLIP's heads are width / 64)");
    if (m.image_resolution % m.vision_patch_size != 0)
      throw ConfigError("synth.model.image_resolution (" + std::to_string(m.image_resolution) +
                        ") must be a multiple of synth.model.vision_patch_size (" +
                        std::to_string(m.vision_patch_size) + ")");
  }
  if (c.synth_images.n_heldout >= c.synth_images.n_images)
    throw ConfigError("synth.images.n_heldout (" + std::to_string(c.synth_images.n_heldout) +
                      ") must be smaller than synth.images.n_images (" +
                      std::to_string(c.synth_images.n_images) + ")");
  if (c.train_behavior.reference_rdm.empty() != c.train_behavior.reference_rdm_names.empty())
    throw ConfigError(
        "train.behavior.reference_rdm and train.behavior.reference_rdm_names go together: set "
        "both or neither");
  if (c.synth_cohort.n_heldout >= c.synth_cohort.n_objects)
    throw ConfigError("synth.cohort.n_heldout (" + std::to_string(c.synth_cohort.n_heldout) +
                      ") must be smaller than synth.cohort.n_objects (" +
                      std::to_string(c.synth_cohort.n_objects) + ")");
  if (c.rsa_behavior.metrics.empty())
    throw ConfigError("rsa.behavior.metrics: expected at least one RDM type");
  if (c.meg_epochs.tmin_ms > c.meg_epochs.tmax_ms)
    throw ConfigError("meg.epochs.tmin_ms must not exceed meg.epochs.tmax_ms");
  if (!c.meg_epochs.participants.empty() &&
      c.meg_epochs.participants.size() != c.meg_epochs.files.size())
    throw ConfigError("meg.epochs.participants: expected one label per file in meg.epochs.files (" +
                      std::to_string(c.meg_epochs.files.size()) + "), got " +
                      std::to_string(c.meg_epochs.participants.size()));
}

}  // namespace

Config LoadConfig(const std::string& file, const std::vector<std::string>& overrides) {
  Config config;
  std::vector<Field> fields = Schema(&config);
  if (!file.empty()) {
    std::ifstream probe(file);
    if (!probe) throw IoError(file + ": cannot open the configuration file");
    YAML::Node root;
    try {
      root = YAML::LoadFile(file);
    } catch (const YAML::ParserException& e) {
      throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
      throw ConfigError(file + ": cannot parse YAML: " + e.what());
    }
    Source src{file};
    if (root.IsMap()) {
      Walk(root, "", fields, src);
    } else if (!root.IsNull()) {
      Fail(src, root.Mark(), "(top level)", "expected a mapping of keys, got " + Describe(root));
    }
  }
  Source set{"--set"};
  for (const std::string& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set '" + o + "': expected key.path=value");
    const std::string path = o.substr(0, eq), value = o.substr(eq + 1);
    const Field* f = Find(fields, path);
    if (f == nullptr)
      Fail(set, YAML::Mark::null_mark(), path, "unknown key" + Suggestion(path, fields));
    if (f->kind == Kind::kString) {
      Assign(*f, YAML::Node(), set, value.c_str());
      continue;
    }
    YAML::Node node;
    try {
      node = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      Fail(set, YAML::Mark::null_mark(), path, "cannot parse value '" + value + "' as YAML");
    }
    if (f->kind != Kind::kStringList && node.IsScalar()) {
      Assign(*f, node, set, value.c_str());
    } else {
      Assign(*f, node, set, nullptr);
    }
  }
  ValidateCrossField(config);
  return config;
}

std::vector<KeyInfo> ConfigKeys() {
  Config defaults;
  std::vector<KeyInfo> keys;
  for (const Field& f : Schema(&defaults))
    keys.push_back({f.path, KindName(f.kind), ValueText(f), f.doc});
  return keys;
}

std::string DumpConfig(const Config& config) {
  Config copy = config;
  std::ostringstream out;
  std::vector<std::string> open;  // the section path currently open
  for (const Field& f : Schema(&copy)) {
    std::vector<std::string> parts;
    std::stringstream ss(f.path);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common])
      ++common;
    open.resize(common);
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << std::string(2 * i, ' ') << parts[i] << ":\n";
      open.push_back(parts[i]);
    }
    out << std::string(2 * (parts.size() - 1), ' ') << parts.back() << ": " << ValueText(f) << "\n";
  }
  return out.str();
}

std::string ConfigHash(const Config& config) { return HashHex(DumpConfig(config)); }

namespace {
template <typename Options>
void ResetNonResultKeysOf(Options* o) {
  const Options d;
  o->loader_threads = d.loader_threads;
  o->progress_seconds = d.progress_seconds;
  o->dist_backend = d.dist_backend;
  o->dist_bucket_mb = d.dist_bucket_mb;
}
}  // namespace

void ResetNonResultKeys(TrainBehaviorOptions* o) { ResetNonResultKeysOf(o); }
void ResetNonResultKeys(TrainMegOptions* o) { ResetNonResultKeysOf(o); }

std::string GetConfigValue(const Config& config, const std::string& key) {
  YAML::Node node = YAML::Load(DumpConfig(config));
  std::string walked;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    walked += (walked.empty() ? "" : ".") + part;
    if (part.empty() || !node.IsMap() || !node[part])
      throw ConfigError("cliphba config --get: unknown key '" + key + "' (no '" + walked +
                        "'; `cliphba config` lists every key)");
    node.reset(node[part]);  // reset, not operator=: assignment would write into the tree
  }
  if (key.empty()) throw ConfigError("cliphba config --get: empty key");
  std::string out;
  if (node.IsScalar()) return node.Scalar() + "\n";
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      YAML::Emitter e;
      e << item;
      out += (item.IsScalar() ? item.Scalar() : std::string(e.c_str())) + "\n";
    }
    return out;
  }
  if (node.IsNull()) return "\n";
  YAML::Emitter e;
  e << node;
  return std::string(e.c_str()) + "\n";
}

}  // namespace cliphba::config
