#include "data/synth_weights.h"

#include <cmath>
#include <vector>

namespace cliphba::data {
namespace {

// Streams of their own (data/synth_cohort.cc lists the cohort's other streams, 0x11-0x19).
constexpr uint64_t kWeightTopStream = 0x1aull << 56;     // (one draw: the first dimensions)
constexpr uint64_t kWeightOrderStream = 0x1bull << 56;   // | participant
constexpr uint64_t kCohortWeightStream = 0x1cull << 56;  // (one draw: the cohort profile's order)

}  // namespace

at::Tensor CohortWeightProfile(const config::SynthCohortOptions& o, uint64_t seed, int64_t d) {
  std::vector<int64_t> order(d);
  RandomPermutation(seed, kCohortWeightStream, d, order.data());
  at::Tensor c = at::empty({d}, at::kDouble);
  for (int64_t r = 0; r < d; ++r) c[order[r]] = std::exp(-o.cohort_weight_spread * double(r));
  return c;
}

at::Tensor ParticipantWeights(const config::SynthCohortOptions& o, uint64_t seed, int64_t p,
                              int64_t d, CounterRng* participant_rng) {
  std::vector<int64_t> top(d);  // participant p's first dimension (ranked): top[p mod d]
  RandomPermutation(seed, kWeightTopStream, d, top.data());
  const int64_t own = top[p % d];
  at::Tensor w = at::empty({d}, at::kDouble);
  if (o.weight_design == config::WeightDesign::kRanked) {
    std::vector<int64_t> rest(d - 1), others;  // the other dimensions, in an order of p's own
    RandomPermutation(seed, kWeightOrderStream | uint64_t(p), d - 1, rest.data());
    for (int64_t k = 0; k < d; ++k)
      if (k != own) others.push_back(k);
    w[own] = 1.0;
    for (int64_t r = 1; r < d; ++r) w[others[rest[r - 1]]] = std::exp(-o.weight_spread * double(r));
  } else {
    for (int64_t k = 0; k < d; ++k) w[k] = std::exp(o.weight_spread * participant_rng->Normal());
  }
  if (o.cohort_weight_spread > 0) w = w * CohortWeightProfile(o, seed, d);
  w = w / w.mean();
  if (o.weight_design == config::WeightDesign::kRanked && o.cohort_weight_spread > 0 &&
      o.weight_spread > 0) {
    // The cohort profile may have moved the largest weight: it goes back to the own dimension.
    const int64_t largest = w.argmax().item<int64_t>();
    const double v = w[own].item<double>();
    w[own] = w[largest].item<double>();
    w[largest] = v;
  }
  return w;
}

}  // namespace cliphba::data
