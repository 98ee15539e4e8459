// The curves the CLIP-HBA-MEG head needs, computed as the reference does (CLIP-HBA
// train_meg_things_pipeline.py: get_richness, compute_rdm_generalization, compute_noise_level).
//
// Dimension legend: P participants, T timepoints of the full axis, k objects, m = k (k - 1) / 2.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "meg/rdm_stack.h"

namespace cliphba::meg {

struct Curves {
  at::Tensor richness, beta, noise;  // each (T) float32 over the full time axis
};

// participant_stacks: P >= 1 tensors, each (T, k, k) (k >= 3) floating point, typically
// RdmStack::Read(...) of the training objects after RescaleMinMax. With zpos =
// axis.ZeroMsPosition() clipped to [0, T]:
//  richness = minmax_T(mean_p(mean over all k x k entries at t)), then [:zpos] = 0.
//  beta     = mean_p(minmax_T(mean over rows of np.corrcoef(upper triangles (T, m)))), [:zpos] = 0.
//  noise    = minmax_T(gaussian_filter1d(1 - beta, sigma; mode reflect, truncate 4)) * noise_scale.
// Computed in float64. Throws DataError when a curve is constant before its min-max (max == min),
// or a timepoint's upper triangle is constant (its correlation is undefined), naming participant
// and timepoint; ConfigError when axis.size != T or sigma <= 0.
Curves ComputeCurves(const std::vector<at::Tensor>& participant_stacks, const TimeAxis& axis,
                     double noise_scale, double sigma = 3.0);

// scipy.ndimage.gaussian_filter1d(x, sigma, mode='reflect', truncate=4.0) of a 1-D float64 tensor:
// kernel radius int(4 * sigma + 0.5), weights exp(-x^2 / (2 sigma^2)) normalised to sum 1, input
// extended by half-sample symmetric reflection (d c b a | a b c d | d c b a), repeatedly when the
// radius exceeds the length. Returns float64 (same length).
at::Tensor GaussianFilter1d(const at::Tensor& x, double sigma);

}  // namespace cliphba::meg
