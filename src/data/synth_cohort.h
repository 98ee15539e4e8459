// A THINGS-like synthetic cohort with known ground truth (issue 6): no THINGS images or MEG data
// exist on the build machines, so the pipeline and its statistics are tested on this.
//
// Dimension legend: n objects (= MEG conditions), N = n + behavior_only_objects objects in all,
// E exemplars per object, d behavioural dimensions, F = 8 low-level visual features,
// P participants, S sensors, T timepoints, R = n * n_trials trials.
// Objects 0 .. N - n - 1 are behaviour-only (images and behaviour data, no MEG); the MEG
// conditions are the last n objects, so with n_heldout >= n every MEG object is also held out of
// the behaviour fine-tune (as a THINGS study keeps its MEG test images out of training).
//
// Objects: latent features drawn from (seed, object): hue, shape class (circle, square, triangle,
// cross), texture (stripe) frequency, position x/y, size. Exemplar e of object i adds nuisance
// variation drawn from (seed, i, e): position jitter, brightness, background grey, pixel noise.
// Behaviour: a non-negative sparse embedding (n, d) over named dimensions ("red; warm", ...), each
// a fixed non-linear function of the object's latents (colour categories, shape classes, texture,
// size; not position); its RDM comes from simulated odd-one-out choices (SPoSE rule,
// data/synth_behavior.h). MEG (per participant p, trial r showing object i, exemplar r mod E):
//   x[r, :, t] = av_p g(t; Lv_p, wv) A_p z_v(i, e) + as_p g(t; Ls_p, ws) B_p (w_p * z_s(i)) + noise
// with g a Gaussian time course peaking at the participant's latency (planted latency + U(-j, j)),
// av_p, as_p the planted amplitudes times exp(amplitude_spread * N(0, 1)),
// z_v the standardised low-level features of the shown exemplar (F), z_s the centred, scaled
// behavioural embedding (d), w_p participant weights of the semantic dimensions (log-normal,
// mean 1: what makes participants individual; with weight_design ranked every participant has
// the profile exp(-weight_spread r) over ranks r, in an order whose first dimension is its own
// among the first d participants; cohort_weight_spread > 0 multiplies every w_p by one cohort-wide
// profile, so the MEG's code differs from behaviour's; data/synth_weights.h), A_p (S, F) and B_p
// (S, d) random spatial mixing, drawn per participant (or once for the cohort with
// shared_sensor_patterns: a correlation RDM over sensors is not invariant to the mixing, so
// per-participant patterns alone give each participant a geometry of their own).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::data {

// The named behavioural dimensions available (16), dimension k named
// config::CohortDimensionNames()[k]; synth.cohort.dimensions picks them by name, else
// synth.cohort.n_dims takes the first ones.
const std::vector<std::string>& CohortDimensionPrompts();

struct SynthCohortSummary {
  std::string out_dir;
  int64_t n_objects = 0, n_images = 0, n_dims = 0, n_participants = 0, n_trials_total = 0;
  std::vector<std::string> files;  // relative to out_dir, in the order written (cohort.json last)
};

// Writes the cohort into options.out_dir (layout in cohort.json and configs/synth.yaml):
//   images/objNNNN_EE.png       N * E PNGs (EE = exemplar + 1)
//   behavior/embedding.csv      (N, d) embedding, THINGS layout `,image_name,0..d-1`; the names
//                               are the exemplar-1 files (objNNNN_01.png) = the training images
//   behavior/prompts.json       d prompts; behavior/rdm.npy (N, N) float64 triplet RDM in object
//   behavior/rdm_names.txt      order, its names; behavior/heldout.txt the last n_heldout names
//   meg/sub-PP_epochs.h5        P epochs files (io/epochs_h5.h), condition_names = the n MEG
//                               objects' names
//   meg/rdm.h5                  the MEG RDM stack of all participants (meg::WriteMegRdms,
//                               correlation distance of condition means at every sample)
//   ground_truth.json           config, latencies, amplitudes, weights, patterns, latents
//   cohort.json                 the manifest: every file with size and FNV-1a hash; written LAST,
//                               so a folder without it is an unfinished cohort.
// Deterministic: equal options give byte-identical files, except meg/rdm.h5 whose provenance
// attributes hold the creation time (its datasets are identical). An existing non-empty out_dir is
// refused (ConfigError naming it) unless its cohort.json records the same options or `force`;
// with `force` the files listed by a previous cohort.json are removed first (nothing else is).
// Throws IoError when a file cannot be written.
SynthCohortSummary GenerateSynthCohort(const config::SynthCohortOptions& options, bool force);

// The shapes world as image-caption pairs, for pre-training the base CLIP (`cliphba synth model`
// with synth.model.pretrain_steps; train/pretrain.h), as real CLIPs learn from captioned photos.
// Attributes named in a caption (indices into ShapesWorldVocabulary()): colour = the nearest of 8
// named hues, the shape, the stripes' frequency in thirds (wide, medium, fine), the size in
// thirds; e.g. "a large red circle with wide stripes". Position, brightness and background are
// nuisance (never named). 8 x 4 x 3 x 3 = 288 captions.
struct WorldAttributes {
  int colour = 0, shape = 0, texture = 0, size = 0;
};
struct WorldVocabulary {
  std::vector<std::string> colours, shapes, textures, sizes;
};
struct WorldSample {
  at::Tensor rgb;  // (S, S, 3) uint8, rendered as the cohort's images are
  WorldAttributes attributes;
  std::string caption;
};
const WorldVocabulary& ShapesWorldVocabulary();
std::string ShapesWorldCaption(const WorldAttributes& attributes);

// Item `item` of the world: an object with fresh latents and one exemplar, drawn from
// (seed, item) in RNG streams no cohort uses (a cohort's objects are never pre-training items,
// whatever the seeds). Pure function of (seed, item, image_size). REQUIRES: item < 2^48,
// image_size >= 1.
WorldSample ShapesWorldSample(uint64_t seed, uint64_t item, int64_t image_size);

}  // namespace cliphba::data
