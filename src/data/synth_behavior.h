// A synthetic behaviour set with known ground truth, for demos and tests (no THINGS images or
// human data are needed).
//
// Objects have a sparse non-negative embedding X (n x d): each object has n_active dimensions
// drawn at random, with values scale * (0.5 + u), u ~ U(0, 1). "Human" odd-one-out choices are
// simulated under the SPoSE choice rule: in triplet {i, j, k} the pair {i, j} is chosen with
// probability exp(x_i.x_j) / (exp(x_i.x_j) + exp(x_i.x_k) + exp(x_j.x_k)). Every distinct triplet
// is judged `repeats` times; the human RDM is 1 - (times a pair was chosen) / (times it was
// shown), like the fully sampled THINGS RDM48. A "model" embedding adds Gaussian noise to X.
// Every draw is a pure function of (seed, object or triplet index).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::data {

struct SynthBehaviorSummary {
  std::string out_dir;
  int64_t n_objects = 0;
  int64_t n_dims = 0;
  int64_t n_choices = 0;  // simulated choices behind the RDM
  int64_t n_listed = 0;   // rows in triplets.npy
  double mean_dissimilarity = 0;
  std::vector<std::string> files;  // written, in order
};

// Writes into options.out_dir (created if missing):
//   embedding.csv        the true embedding (n x d), object order  (,image_name,0..d-1)
//   model_embedding.csv  true embedding + noise, clipped at 0, object order
//   rdm.npy              (n x n) float64 human RDM, rows in a shuffled order given by
//   rdm_names.txt        the image names of the RDM rows (NOT the CSV order: align by name)
//   triplets.npy         (n_listed x 3) int64 choices (a, b, odd) as RDM row indices
//   ground_truth.json    settings, per-object active dimensions; written last (completion marker)
// REQUIRES: options validated by config (3 <= n_objects <= 400, 1 <= n_active <= n_dims).
// Throws IoError if the folder or a file cannot be written.
SynthBehaviorSummary GenerateSynthBehavior(const config::SynthBehaviorOptions& options);

// The "human" RDM of an embedding from simulated odd-one-out choices (SPoSE rule above): every
// distinct triplet i < j < k (t-th in lexicographic order) is judged `repeats` times with draws
// from CounterRng(seed, stream_family | t); RDM = 1 - (times a pair was chosen) / (times shown).
// x: (n, d) float64, n >= 3. Returns (n, n) float64, symmetric, zero diagonal, values in [0, 1].
at::Tensor SimulateTripletRdm(const at::Tensor& x, int64_t repeats, uint64_t seed,
                              uint64_t stream_family);

}  // namespace cliphba::data
