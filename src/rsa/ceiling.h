// Noise ceilings of a set of participant RDMs and temporal generalisation of an RDM time course.
#pragma once

#include <ATen/ATen.h>

#include "rsa/compare.h"

namespace cliphba::rsa {

struct NoiseCeiling {
  at::Tensor lower;  // (P) float64: participant p vs the mean RDM of the other participants
  at::Tensor upper;  // (P) float64: participant p vs the mean RDM of all participants
  double lower_mean = 0;
  double upper_mean = 0;
};

// rdms: (P, m) condensed RDMs of P >= 2 participants over the same objects.
// comparison: how an RDM is compared with a mean RDM (Spearman is the usual choice).
// Throws DataError for fewer than 2 participants or NaN/Inf.
NoiseCeiling ComputeNoiseCeiling(const at::Tensor& rdms, Comparison comparison);

// Temporal generalisation: the (T, T) matrix of Pearson correlations between the condensed RDMs
// of every pair of timepoints (numpy.corrcoef of the rows). stack: (T, m), T >= 1, m >= 2.
// One GEMM. Throws DataError for NaN/Inf or a constant row.
at::Tensor TemporalGeneralisation(const at::Tensor& stack);

}  // namespace cliphba::rsa
