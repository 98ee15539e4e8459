// Behavioural RSA: an embedding's RDMs and triplet choices against a human reference RDM.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "rsa/compare.h"
#include "rsa/rdm.h"
#include "rsa/triplet.h"

namespace cliphba::rsa {

// Row indices that put `available` (e.g. the embedding CSV's image names) in the order of
// `wanted` (e.g. the RDM's row names): result[w] = index of wanted[w] in available.
// Throws DataError naming both sources and listing the first (up to 5) wanted names that are
// missing from `available`, or a name repeated in `wanted`.
std::vector<int64_t> AlignByName(const std::vector<std::string>& available,
                                 const std::vector<std::string>& wanted,
                                 const std::string& available_source,
                                 const std::string& wanted_source);

struct MetricScores {
  RdmMetric metric;
  CondensedRdm model_rdm;
  double scores[4];  // indexed by Comparison: pearson, spearman, kendall_tau_a, cosine
};

struct BehaviorEvaluation {
  int64_t n_objects = 0;
  std::vector<MetricScores> per_metric;  // in the order of `metrics`
  TripletResult triplets;                // all C(n, 3) triplets of the reference RDM
  bool has_listed_triplets = false;
  TripletResult listed_triplets;  // explicit behavioural choices, if given
};

// embedding: (n, d) rows in the same object order as reference_square (n, n), which the caller
// has validated (CondenseSquare). listed_choices: optional (t, 3) int64 (a, b, odd) rows in the
// same object indexing, or an undefined tensor. Throws DataError from the RSA functions.
BehaviorEvaluation EvaluateBehavior(const at::Tensor& embedding, const CondensedRdm& reference,
                                    const at::Tensor& reference_square,
                                    const std::vector<RdmMetric>& metrics,
                                    const at::Tensor& listed_choices = at::Tensor());

}  // namespace cliphba::rsa
