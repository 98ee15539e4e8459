// The keys of the data sections: synth.behavior.*, synth.images.*, synth.cohort.*, synth.model.*,
// rsa.behavior.*, meg.rdm.* and meg.epochs.*. Declared in config/schema.h.
#include <iterator>

#include "config/schema.h"

namespace cliphba::config::detail {

void AddSynthBehaviorKeys(SynthBehaviorOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("synth.behavior.out_dir", &o->out_dir, "output folder of the synthetic behaviour set"),
      Int("synth.behavior.n_objects", &o->n_objects,
          "number of objects (every triplet is simulated: at most 400)", 3, 400),
      Int("synth.behavior.n_dims", &o->n_dims, "embedding dimensions", 1, 4096),
      Int("synth.behavior.n_active", &o->n_active, "non-zero dimensions per object (<= n_dims)", 1,
          4096),
      Num("synth.behavior.scale", &o->scale, "mean value of an active dimension", 1e-6, 1e3),
      Int("synth.behavior.repeats", &o->repeats, "simulated choices per distinct triplet", 1,
          100000),
      Int("synth.behavior.n_listed", &o->n_listed, "behavioural triplet rows in triplets.npy", 0,
          1e9),
      Num("synth.behavior.model_noise", &o->model_noise,
          "noise sd of the model embedding, relative to scale", 0, 1e3),
      Seed("synth.behavior.seed", &o->seed),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddSynthImagesKeys(SynthImagesOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("synth.images.out_dir", &o->out_dir, "output folder of the synthetic image set"),
      Int("synth.images.n_images", &o->n_images, "number of images", 4, 100000),
      Int("synth.images.image_size", &o->image_size, "PNG height = width in pixels", 8, 4096),
      Int("synth.images.n_dims", &o->n_dims, "target dimensions (= prompts written)", 1, 4096),
      Int("synth.images.n_heldout", &o->n_heldout, "names written to heldout.txt (< n_images)", 0,
          100000),
      Seed("synth.images.seed", &o->seed),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddSynthCohortKeys(SynthCohortOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("synth.cohort.out_dir", &o->out_dir, "output folder of the synthetic cohort"),
      Int("synth.cohort.n_objects", &o->n_objects,
          "objects = MEG conditions (every triplet simulated)", 4, 400),
      Int("synth.cohort.n_exemplars", &o->n_exemplars, "images per object (exemplar 0 is named)", 1,
          100),
      Int("synth.cohort.image_size", &o->image_size, "PNG height = width in pixels", 8, 1024),
      Int("synth.cohort.behavior_only_objects", &o->behavior_only_objects,
          "objects with images and behaviour data only, before the MEG objects", 0, 396),
      Int("synth.cohort.n_dims", &o->n_dims, "named behavioural dimensions (= prompts)", 1, 16),
      List("synth.cohort.dimensions", &o->dimensions,
           "behavioural dimensions by name, in order (replaces the first n_dims)",
           CohortDimensionNames()),
      Int("synth.cohort.n_heldout", &o->n_heldout, "objects in heldout.txt (< all objects)", 0, 399),
      Int("synth.cohort.choice_repeats", &o->choice_repeats,
          "simulated odd-one-out choices per distinct triplet", 1, 10000),
      Int("synth.cohort.n_participants", &o->n_participants, "MEG participants", 1, 1000),
      Int("synth.cohort.n_sensors", &o->n_sensors, "MEG channels", 1, 10000),
      Int("synth.cohort.n_times", &o->n_times, "samples per epoch", 2, 100000),
      Num("synth.cohort.sfreq", &o->sfreq, "sampling rate in Hz", 1e-3, 1e6),
      Num("synth.cohort.tmin_ms", &o->tmin_ms, "time of sample 0 in ms", -1e6, 1e6),
      Int("synth.cohort.n_trials", &o->n_trials, "trials per object per participant", 1, 10000),
      Num("synth.cohort.visual_latency_ms", &o->visual_latency_ms,
          "peak time of the visual code in ms", -1e6, 1e6),
      Num("synth.cohort.semantic_latency_ms", &o->semantic_latency_ms,
          "peak time of the semantic code in ms", -1e6, 1e6),
      Num("synth.cohort.latency_jitter_ms", &o->latency_jitter_ms,
          "participant latency jitter: U(-j, +j) ms", 0, 1e6),
      Num("synth.cohort.visual_width_ms", &o->visual_width_ms,
          "sd of the visual code's Gaussian time course in ms", 1e-3, 1e6),
      Num("synth.cohort.semantic_width_ms", &o->semantic_width_ms,
          "sd of the semantic code's Gaussian time course in ms", 1e-3, 1e6),
      Num("synth.cohort.visual_amplitude", &o->visual_amplitude,
          "mean peak amplitude of the visual code", 0, 1e6),
      Num("synth.cohort.semantic_amplitude", &o->semantic_amplitude,
          "mean peak amplitude of the semantic code", 0, 1e6),
      Num("synth.cohort.weight_spread", &o->weight_spread,
          "participant weights: sd of the log weights (lognormal), log ratio of ranks (ranked)",
          0, 10),
      Choice("synth.cohort.weight_design", &o->weight_design,
             "participant weights: lognormal (each exp(spread N(0, 1))) or ranked (one profile, "
             "exp(-spread r) at rank r, a distinct first dimension per participant)",
             {WeightDesign::kLognormal, WeightDesign::kRanked}),
      Num("synth.cohort.cohort_weight_spread", &o->cohort_weight_spread,
          "the MEG's cohort-wide weighting of the semantic dimensions, absent from behaviour: "
          "exp(-spread r) at rank r (0: none)", 0, 10),
      Num("synth.cohort.amplitude_spread", &o->amplitude_spread,
          "sd of the log participant amplitudes of both codes", 0, 10),
      Bool("synth.cohort.shared_sensor_patterns", &o->shared_sensor_patterns,
           "one pair of sensor patterns for the whole cohort (no individual geometry)"),
      Num("synth.cohort.noise", &o->noise, "sd of the sensor noise per sample", 0, 1e6),
      Seed("synth.cohort.seed", &o->seed),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddSynthModelKeys(SynthModelOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("synth.model.out", &o->out, "safetensors file of the random-init CLIP"),
      Int("synth.model.vision_layers", &o->vision_layers, "image tower blocks", 1, 256),
      Int("synth.model.vision_width", &o->vision_width, "image tower width (multiple of 64)", 64,
          8192),
      Int("synth.model.vision_patch_size", &o->vision_patch_size, "patch size in pixels", 1, 1024),
      Int("synth.model.image_resolution", &o->image_resolution,
          "input height = width in pixels (multiple of the patch size)", 1, 8192),
      Int("synth.model.embed_dim", &o->embed_dim, "joint embedding dimension", 1, 8192),
      Int("synth.model.text_layers", &o->text_layers, "text transformer blocks", 1, 256),
      Int("synth.model.text_width", &o->text_width, "text transformer width (multiple of 64)", 64,
          8192),
      Int("synth.model.context_length", &o->context_length, "text positions", 1, 4096),
      Int("synth.model.vocab_size", &o->vocab_size, "token embedding rows", 2, 1000000),
      Seed("synth.model.seed", &o->seed, "random seed of the init and the pre-training world"),
      Int("synth.model.pretrain_steps", &o->pretrain_steps,
          "contrastive pre-training steps on captioned shapes-world images (0: random init)", 0,
          1e7),
      Int("synth.model.pretrain_batch", &o->pretrain_batch, "image-caption pairs per step", 2,
          65536),
      Num("synth.model.pretrain_lr", &o->pretrain_lr, "peak AdamW learning rate", 1e-8, 1.0),
      Str("synth.model.vocab", &o->vocab,
          "CLIP BPE merges file (.txt.gz), needed when pretrain_steps > 0"),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddRsaBehaviorKeys(RsaBehaviorOptions* o, std::vector<Field>* fields) {
  const std::vector<std::string> metrics = {"correlation", "cosine", "euclidean", "spose"};
  const Field keys[] = {
      Str("rsa.behavior.embedding", &o->embedding, "embedding CSV (,image_name,0..d-1)"),
      Str("rsa.behavior.rdm", &o->rdm, "reference RDM, NPY (n x n)"),
      Str("rsa.behavior.rdm_names", &o->rdm_names, "RDM row names in RDM order (.txt or .csv)"),
      Str("rsa.behavior.triplets", &o->triplets,
          "optional NPY (t x 3) int64 behavioural choices (a, b, odd) in RDM order"),
      Str("rsa.behavior.out", &o->out, "optional HDF5 results file"),
      List("rsa.behavior.metrics", &o->metrics, "model RDM types to compute", metrics),
      Num("rsa.behavior.symmetry_tolerance", &o->symmetry_tolerance,
          "largest accepted asymmetry |a_ij - a_ji| and diagonal |a_ii| of the reference RDM", 0,
          1),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddMegRdmKeys(MegRdmOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("meg.rdm.path", &o->path, "MEG RDM stacks: NPY (P,T,n,n) / (P,T,m) or HDF5"),
      Str("meg.rdm.dataset", &o->dataset, "HDF5 dataset of the RDM stacks (rank 3 or 4)"),
      Str("meg.rdm.names", &o->names,
          "object names in RDM order (.txt or .csv); NPY: required, HDF5: overrides /meg/names"),
      Num("meg.rdm.time_start_ms", &o->time_start_ms, "NPY: time of timepoint 0 in ms", -1e9, 1e9),
      Num("meg.rdm.time_step_ms", &o->time_step_ms, "NPY: timepoint spacing in ms", 1e-9, 1e9),
      Str("meg.rdm.nan_policy", &o->nan_policy, "NaN/Inf in RDMs: refuse, or replace by 0",
          {"error", "zero"}),
      Choice("meg.rdm.rescale", &o->rescale, "global min-max rescale to [0, 1]",
             {RdmRescale::kMinMax, RdmRescale::kNone}),
      Num("meg.rdm.symmetry_tolerance", &o->symmetry_tolerance,
          "largest accepted |a_ij - a_ji| and |a_ii| of MEG RDMs", 0, 1),
      Num("meg.rdm.smooth_ms", &o->smooth_ms,
          "block means of this many ms after timepoint 0 (smoothen_rdm); 0 = off", 0, 1e9),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddMegEpochsKeys(MegEpochsOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      List("meg.epochs.files", &o->files, "epochs HDF5 files, one per participant"),
      List("meg.epochs.participants", &o->participants,
           "participant labels, one per file (empty: file attribute or file stem)"),
      Str("meg.epochs.method", &o->method, "RDM distance", {"correlation", "crossnobis"}),
      Num("meg.epochs.window_ms", &o->window_ms, "centred boxcar window in ms (0 = none)", 0, 1e9),
      Num("meg.epochs.step_ms", &o->step_ms, "output timepoint spacing in ms (0 = every sample)", 0,
          1e9),
      Num("meg.epochs.tmin_ms", &o->tmin_ms, "crop: first time kept (ms)", -1e9, 1e9),
      Num("meg.epochs.tmax_ms", &o->tmax_ms, "crop: last time kept (ms)", -1e9, 1e9),
      Str("meg.epochs.out", &o->out, "MEG RDM HDF5 file written"),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

}  // namespace cliphba::config::detail
