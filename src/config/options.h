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

struct Config {
  LogOptions log;
  RuntimeOptions runtime;
  SynthBehaviorOptions synth_behavior;  // YAML: synth.behavior
  RsaBehaviorOptions rsa_behavior;      // YAML: rsa.behavior
};

}  // namespace cliphba::config
