// Percentile bootstrap confidence intervals for alignment curves (e.g. model-vs-MEG correlation
// over time).
//
// Dimension legend: N participants, T timepoints, n objects, m = n (n - 1) / 2 object pairs,
// B bootstrap samples, K statistics.
//
// Statistics of one curve c (T) on the time axis times_ms (T, milliseconds, strictly increasing):
//   * peak latency: times_ms[argmax c], the first index on ties (ms);
//   * area from 0 ms: the trapezoid rule over the timepoints with times_ms >= 0 only (no
//     interpolation to exactly 0 ms when 0 is not a sample), with time converted to seconds, so the
//     unit is value x seconds (e.g. rho x s). numpy: np.trapz(c[t >= 0], t[t >= 0] / 1000).
//     Zero when fewer than two timepoints lie at or after 0 ms.
// A confidence interval at level L is [percentile 100 (1 - L) / 2, percentile 100 (1 + L) / 2] of
// the bootstrap distribution (percentile method), with numpy.percentile's default 'linear'
// interpolation, separately for every timepoint of the curve, for the peak latency and for the
// area.
//
// Reproducibility and sharding: bootstrap sample b is a pure function of (seed, b). Its resampling
// indices are N (participants) or n (objects) draws of CounterRng::Below from the Philox stream
//   (seed, kBootstrapParticipantsStream | b)  or  (seed, kBootstrapObjectsStream | b),
// b < 2^56. So any block [first, first + count) of samples can be computed alone (one MPI rank, a
// resumed run) and blocks merged (MergeBootstrapSamples) give exactly the all-at-once result.
// Every function that draws also has an overload taking an explicit (B x N) int64 index matrix
// (row b: the resampled unit indices of sample b), for reference tests and external resamplers.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "rsa/compare.h"

namespace cliphba::stats {

// RNG stream families (high byte of the 64-bit stream id; the low 56 bits are the sample index).
inline constexpr uint64_t kBootstrapParticipantsStream = 0xB1ull << 56;
inline constexpr uint64_t kBootstrapObjectsStream = 0xB2ull << 56;

// Confidence intervals of one alignment curve.
struct CurveCi {
  at::Tensor estimate;  // (T) float64: the statistic on the original data
  at::Tensor lower;     // (T) float64: lower CI bound per timepoint
  at::Tensor upper;     // (T) float64: upper CI bound per timepoint
  double peak_ms = 0, peak_lower = 0, peak_upper = 0;  // peak latency (ms) and its CI
  double auc = 0, auc_lower = 0, auc_upper = 0;        // area from 0 ms (value x s) and its CI
  double level = 0;                                    // e.g. 0.95
  int64_t n_boot = 0;                                  // bootstrap samples drawn
  int64_t n_valid = 0;  // samples used: those whose curve is finite everywhere (see objects)
};

// The statistics of the bootstrap samples [first, first + size()).
struct BootstrapSamples {
  int64_t first = 0;   // index of the first sample
  at::Tensor curves;   // (B, T) float64
  at::Tensor peak_ms;  // (B) float64; NaN where the curve has a NaN
  at::Tensor auc;      // (B) float64; NaN where the curve has a NaN
  int64_t size() const { return curves.defined() ? curves.size(0) : 0; }
};

// ---- Helpers ----------------------------------------------------------------------------------

// Peak latency of curve (T) on times_ms (T): times_ms at the first maximum. Throws DataError for
// mismatched or empty inputs or a NaN in the curve.
double PeakLatency(const at::Tensor& curve, const at::Tensor& times_ms);

// Area under curve (T) from 0 ms, in value x seconds (see the file comment). Throws as PeakLatency.
double AreaFromZero(const at::Tensor& curve, const at::Tensor& times_ms);

// q-th percentile (0 <= q <= 100) along dimension 0 with numpy's 'linear' method:
// samples (B) or (B, K), B >= 1, finite -> a 0-d or (K) float64 tensor, equal to
// numpy.percentile(samples, q, axis=0). Throws DataError for NaN or B == 0, ConfigError for q.
at::Tensor Percentile(const at::Tensor& samples, double q);

// Resampling indices of samples [first, first + count): (count, n) int64, row r drawn with
// replacement from [0, n) on the stream (seed, stream_family | (first + r)).
// REQUIRES-checked (ConfigError): n >= 1, count >= 0, first >= 0, first + count <= 2^56.
at::Tensor ResampleIndices(uint64_t seed, uint64_t stream_family, int64_t first, int64_t count,
                           int64_t n);

// Concatenates blocks that together cover [first, first + B) without gaps or overlaps, in any
// order. Throws DataError otherwise or if the blocks' T differ.
BootstrapSamples MergeBootstrapSamples(const std::vector<BootstrapSamples>& blocks);

// CIs from the bootstrap samples and the original-data curve estimate (T). Samples whose curve
// is not finite everywhere are left out (n_valid counts the rest); level in (0, 1).
// Throws DataError if no sample is valid or shapes disagree, ConfigError for level.
CurveCi SummarizeBootstrap(const at::Tensor& estimate, const at::Tensor& times_ms,
                           const BootstrapSamples& samples, double level);

// ---- Bootstrap over participants --------------------------------------------------------------
// values: (N, T) floating point, N >= 1, finite (e.g. per-participant model-vs-MEG Spearman per
// timepoint); times_ms: (T) strictly increasing, finite. Sample b resamples the N participants
// with replacement and its curve is the mean over the resampled rows. The estimate is the mean
// over all participants. Throws DataError for bad shapes or values, ConfigError for n_boot < 1,
// level outside (0, 1).

// Samples [first, first + count) drawn from seed.
BootstrapSamples BootstrapParticipantsBlock(const at::Tensor& values, const at::Tensor& times_ms,
                                            uint64_t seed, int64_t first, int64_t count);
// Samples given by indices: (B, N) int64 in [0, N); the result's first is 0.
BootstrapSamples BootstrapParticipantsBlock(const at::Tensor& values, const at::Tensor& times_ms,
                                            const at::Tensor& indices);
// Samples [0, n_boot) drawn from seed, summarised.
CurveCi BootstrapParticipants(const at::Tensor& values, const at::Tensor& times_ms, int64_t n_boot,
                              uint64_t seed, double level);
// Samples given by indices (B, N), summarised.
CurveCi BootstrapParticipants(const at::Tensor& values, const at::Tensor& times_ms,
                              const at::Tensor& indices, double level);

// ---- Bootstrap over objects (stimuli) ---------------------------------------------------------
// model: (n, n) square RDM or (m) condensed RDM (squareform order; n is inferred from m);
// neural: (T, n, n) square RDMs or (T, m) condensed RDMs; times_ms: (T). Square inputs are
// validated by rsa::CondenseSquare (symmetric, zero diagonal); everything must be finite, n >= 3.
// comparison: rsa::Comparison::kSpearman or kPearson (rsa::Spearman / rsa::Pearson).
//
// Sample b resamples the n objects with replacement: s_0, ..., s_{n-1}. Its sub-RDMs hold, for
// every pair of positions a < b, the dissimilarity between objects s_a and s_b, EXCEPT the pairs
// with s_a == s_b (an object compared with a copy of itself: its dissimilarity is the diagonal, 0,
// which would inflate the correlation). Pairs of distinct objects drawn several times appear
// as often as they were drawn (object 3 twice, object 5 once -> pair (3, 5) twice). The sample's
// curve at t is the comparison of the model sub-RDM with the neural sub-RDM at t. It is NaN where
// undefined: at every t when fewer than 2 pairs remain or the model sub-RDM is constant; at t when
// the neural sub-RDM at t is constant. Such samples are left out of the CIs (n_valid).
// The estimate is the comparison on the original (unresampled) RDMs; DataError if undefined.

BootstrapSamples BootstrapObjectsBlock(const at::Tensor& model, const at::Tensor& neural,
                                       const at::Tensor& times_ms, rsa::Comparison comparison,
                                       uint64_t seed, int64_t first, int64_t count);
// indices: (B, n) int64 in [0, n); the result's first is 0.
BootstrapSamples BootstrapObjectsBlock(const at::Tensor& model, const at::Tensor& neural,
                                       const at::Tensor& times_ms, rsa::Comparison comparison,
                                       const at::Tensor& indices);
// A time-resolved model (e.g. an MEG model): model (T, m) condensed, row t its RDM at timepoint t;
// neural (T, m). Sample b's curve at t compares model row t with neural row t on the same
// resampled pairs; NaN at t where either sub-RDM is constant (or fewer than 2 pairs remain).
// Otherwise as above (the same indices give the same pairs).
BootstrapSamples BootstrapObjectsTimeResolvedBlock(const at::Tensor& model,
                                                   const at::Tensor& neural,
                                                   const at::Tensor& times_ms,
                                                   rsa::Comparison comparison,
                                                   const at::Tensor& indices);

// Samples from their curves (B, T) on times_ms (T), e.g. combined from several blocks (a mean over
// folds): peak_ms and auc filled as the blocks fill them; first = 0.
BootstrapSamples SamplesFromCurves(const at::Tensor& curves, const at::Tensor& times_ms);

CurveCi BootstrapObjects(const at::Tensor& model, const at::Tensor& neural,
                         const at::Tensor& times_ms, int64_t n_boot, uint64_t seed, double level,
                         rsa::Comparison comparison = rsa::Comparison::kSpearman);
CurveCi BootstrapObjects(const at::Tensor& model, const at::Tensor& neural,
                         const at::Tensor& times_ms, const at::Tensor& indices, double level,
                         rsa::Comparison comparison = rsa::Comparison::kSpearman);

// The estimate curves on the original data: (T) float64.
at::Tensor ParticipantsEstimate(const at::Tensor& values, const at::Tensor& times_ms);
at::Tensor ObjectsEstimate(const at::Tensor& model, const at::Tensor& neural,
                           const at::Tensor& times_ms, rsa::Comparison comparison);

}  // namespace cliphba::stats
