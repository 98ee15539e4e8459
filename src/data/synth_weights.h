// The synthetic cohort's participant weights of the semantic dimensions (data/synth_cohort.h):
// what makes the MEG's semantic code differ between participants, and from behaviour's.
// d = the number of semantic dimensions (>= 1).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "config/options.h"
#include "core/rng.h"

namespace cliphba::data {

// The cohort-wide MEG profile (d) float64: exp(-o.cohort_weight_spread * r) on the dimension of
// rank r in a seeded order (one draw per seed); all ones when cohort_weight_spread is 0.
at::Tensor CohortWeightProfile(const config::SynthCohortOptions& o, uint64_t seed, int64_t d);

// Participant p's weights (d) float64, mean 1, by o.weight_design:
//   lognormal: exp(o.weight_spread * N(0, 1)) each, the d normals drawn from *participant_rng;
//   ranked:    exp(-o.weight_spread * r) at rank r, rank 0 on the (p mod d)-th dimension of a
//              seeded permutation (so the first d participants have distinct first dimensions),
//              the rest in an order drawn from (seed, p); nothing is drawn from *participant_rng.
// Then multiplied by CohortWeightProfile and rescaled to mean 1. ranked with weight_spread > 0
// and a cohort profile: the largest weight is then swapped back onto the participant's own first
// dimension. With weight_spread 0 every participant has the same weights (the profile): no
// individual differences, whatever the design. A pure function of (o, seed, p, d) and the state
// of *participant_rng.
at::Tensor ParticipantWeights(const config::SynthCohortOptions& o, uint64_t seed, int64_t p,
                              int64_t d, CounterRng* participant_rng);

}  // namespace cliphba::data
