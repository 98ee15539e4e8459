// Null calibration of the permutation tests (slow label): on 1000 generated null datasets, the
// family-wise error rate at alpha = 0.05 of the Mantel max-statistic test and of the sign-flip
// t-max and cluster tests lies in [0.035, 0.065] (binomial sd at 1000 draws: 0.0069); the
// one-sided t-max test, conservative by MNE's design, in [0.0175, 0.065] (see kSignFlipRateLow).
// A planted effect is detected in >= 80% of datasets, so a test that never rejects cannot pass.
//
// Every dataset is a pure function of its index (CounterRng streams, per-dataset permutation and
// flip seeds), datasets run on std::threads and the counts are summed afterwards: deterministic.
// N = 199 permutations/flips: p = (1 + #{null >= obs}) / 200, so p <= 0.05 has level exactly 0.05.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "stats/cluster.h"
#include "stats/mantel.h"
#include "stats/signflip.h"

namespace cliphba::stats {
namespace {

constexpr int64_t kNullDatasets = 1000;
constexpr int64_t kPowerDatasets = 200;
constexpr int64_t kResamples = 199;  // floor(0.05 * 200) / 200 = 0.05 exactly
constexpr double kAlpha = 0.05;
constexpr double kRateLow = 0.035, kRateHigh = 0.065;
constexpr double kMinPower = 0.8;

// Stream families of the generated data (high byte), distinct from the tests' own streams.
constexpr uint64_t kModelStream = 0x21ull << 56;
constexpr uint64_t kNeuralStream = 0x22ull << 56;
constexpr uint64_t kParticipantStream = 0x23ull << 56;

// Runs fn(d) for d in [0, count) on all hardware threads (strided; fn(d) is pure, so the split
// does not matter). ATen's intra-op threads are switched off inside the workers: the datasets
// are tiny and the parallelism is across them. Rethrows the first exception.
template <typename Fn>
void ForEachDataset(int64_t count, Fn fn) {
  const int64_t workers =
      std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), count));
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&](int64_t w) {
    try {
      at::set_num_threads(1);
      for (int64_t d = w; d < count; d += workers) fn(d);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int64_t w = 0; w < workers; ++w) threads.emplace_back(work, w);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

int64_t Sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Mantel: n objects with d features each; the model RDM is the Euclidean RDM of the model
// features, the neural RDM of timepoint t that of the neural features at t. Neural features follow
// an AR(1) process over timepoints (rho), so neighbouring neural RDMs are strongly correlated and
// the max-statistic correction is far from Bonferroni. Under the null the two feature sets are
// independent; with an effect, the neural features add `effect` times the model features.

constexpr int64_t kObjects = 12;
constexpr int64_t kFeatures = 4;
constexpr int64_t kMantelTimepoints = 8;
constexpr double kNeuralRho = 0.8;

struct MantelConfig {
  const char* name;
  CorrelationKind kind;
  Tail tail;
};

constexpr MantelConfig kMantelConfigs[] = {
    {"spearman, tail 1", CorrelationKind::kSpearman, Tail::kUpper},
    {"pearson, tail 0", CorrelationKind::kPearson, Tail::kTwo},
};

// Condensed Euclidean RDM (m) of the rows of f (n x d, row-major).
std::vector<double> EuclideanRdm(const std::vector<double>& f, int64_t n, int64_t d) {
  std::vector<double> out;
  out.reserve(n * (n - 1) / 2);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double ss = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double diff = f[i * d + k] - f[j * d + k];
        ss += diff * diff;
      }
      out.push_back(std::sqrt(ss));
    }
  return out;
}

struct MantelData {
  at::Tensor model;   // (m) float64
  at::Tensor neural;  // (T, m) float64
};

MantelData MakeMantelData(uint64_t seed, int64_t dataset, double effect) {
  const int64_t n = kObjects, d = kFeatures, T = kMantelTimepoints, m = n * (n - 1) / 2;
  CounterRng model_rng(seed, kModelStream | uint64_t(dataset));
  CounterRng neural_rng(seed, kNeuralStream | uint64_t(dataset));
  std::vector<double> model(n * d), state(n * d);
  for (double& v : model) v = model_rng.Normal();
  for (double& v : state) v = neural_rng.Normal();
  MantelData out{at::from_blob(EuclideanRdm(model, n, d).data(), {m}, at::kDouble).clone(),
                 at::empty({T, m}, at::kDouble)};
  const double innovation = std::sqrt(1.0 - kNeuralRho * kNeuralRho);
  std::vector<double> neural(n * d);
  for (int64_t t = 0; t < T; ++t) {
    if (t > 0)
      for (double& v : state) v = kNeuralRho * v + innovation * neural_rng.Normal();
    for (int64_t k = 0; k < n * d; ++k) neural[k] = state[k] + effect * model[k];
    std::vector<double> rdm = EuclideanRdm(neural, n, d);
    std::copy(rdm.begin(), rdm.end(), out.neural.data_ptr<double>() + t * m);
  }
  return out;
}

// Whether the Mantel max-statistic test of dataset `dataset` rejects at any timepoint, driven as
// the permute command drives it (one timepoint chunk, one batch of all permutations).
bool MantelRejects(const MantelData& data, const MantelConfig& config, uint64_t perm_seed) {
  const int64_t T = data.neural.size(0), m = data.model.numel();
  at::Tensor zm = StandardizeRows(data.model.unsqueeze(0), config.kind, at::kDouble)[0];
  at::Tensor square = SquareFromCondensed(zm, kObjects);
  at::Tensor zn = StandardizeRows(data.neural, config.kind, at::kDouble);
  at::Tensor gather = at::empty({kResamples, m}, at::kDouble);
  at::Tensor stats = at::empty({kResamples, T}, at::kDouble);
  at::Tensor observed = MantelObserved(square, zn, gather, stats);
  MantelCounts counts = MakeMantelCounts(T, kResamples);
  at::Tensor perms = DrawPermutations(perm_seed, 0, kResamples, kObjects);
  MantelAccumulate(square, zn, observed, perms, /*first=*/0, /*t0=*/0, config.tail, gather, stats,
                   &counts);
  MantelPValues pv = MantelFinish(observed, counts, config.tail);
  return pv.p_fwer.le(kAlpha).any().item<bool>();
}

// Family-wise rejection rate of each config over `count` datasets.
std::vector<double> MantelRejectionRates(uint64_t seed, int64_t count, double effect) {
  const int64_t configs = std::size(kMantelConfigs);
  std::vector<std::vector<int64_t>> reject(configs, std::vector<int64_t>(count, 0));
  ForEachDataset(count, [&](int64_t d) {
    MantelData data = MakeMantelData(seed, d, effect);
    for (int64_t c = 0; c < configs; ++c)
      reject[c][d] = MantelRejects(data, kMantelConfigs[c], seed + 1000003 * uint64_t(d + 1));
  });
  std::vector<double> rates;
  for (const auto& r : reject) rates.push_back(double(Sum(r)) / double(count));
  return rates;
}

TEST(CalibrationTest, MantelMaxStatisticControlsFamilyWiseErrorUnderNull) {
  std::vector<double> rates = MantelRejectionRates(/*seed=*/101, kNullDatasets, /*effect=*/0.0);
  for (size_t c = 0; c < rates.size(); ++c) {
    std::printf("[calibration] Mantel max-statistic (%s): FWER %.3f over %lld null datasets\n",
                kMantelConfigs[c].name, rates[c], static_cast<long long>(kNullDatasets));
    EXPECT_GE(rates[c], kRateLow) << kMantelConfigs[c].name;
    EXPECT_LE(rates[c], kRateHigh) << kMantelConfigs[c].name;
  }
}

TEST(CalibrationTest, MantelMaxStatisticDetectsPlantedEffect) {
  std::vector<double> rates = MantelRejectionRates(/*seed=*/202, kPowerDatasets, /*effect=*/1.0);
  for (size_t c = 0; c < rates.size(); ++c) {
    std::printf("[calibration] Mantel max-statistic (%s): power %.3f over %lld datasets\n",
                kMantelConfigs[c].name, rates[c], static_cast<long long>(kPowerDatasets));
    EXPECT_GE(rates[c], kMinPower) << kMantelConfigs[c].name;
  }
}

// ---------------------------------------------------------------------------------------------
// Sign flips: participants x timepoints of AR(1) noise (rho) with unit variance, so the t curve is
// smooth and suprathreshold timepoints form clusters of several timepoints. With an effect, a
// window of timepoints has mean `effect`.

constexpr int64_t kParticipants = 14;
constexpr int64_t kFlipTimepoints = 40;
constexpr double kNoiseRho = 0.8;
constexpr int64_t kEffectStart = 15, kEffectStop = 25;

at::Tensor MakeSignFlipData(uint64_t seed, int64_t dataset, double effect) {
  at::Tensor data = at::empty({kParticipants, kFlipTimepoints}, at::kDouble);
  double* x = data.data_ptr<double>();
  const double innovation = std::sqrt(1.0 - kNoiseRho * kNoiseRho);
  for (int64_t i = 0; i < kParticipants; ++i) {
    CounterRng rng(seed, kParticipantStream | uint64_t(dataset * kParticipants + i));
    double e = rng.Normal();
    for (int64_t t = 0; t < kFlipTimepoints; ++t) {
      if (t > 0) e = kNoiseRho * e + innovation * rng.Normal();
      x[i * kFlipTimepoints + t] = e + (t >= kEffectStart && t < kEffectStop ? effect : 0.0);
    }
  }
  return data;
}

// The four sign-flip tests of one dataset, in this order.
constexpr const char* kSignFlipNames[] = {"t-max, tail 0", "t-max, tail 1", "cluster, tail 0",
                                          "cluster, tail 1"};
constexpr int64_t kSignFlipTests = std::size(kSignFlipNames);

// Lowest admissible null rejection rate of each test. The one-sided t-max test is conservative
// by design: like MNE's permutation_t_test it compares t with the null of max |t| for every tail
// (stats/signflip.h), whose 95% quantile c satisfies P(max t >= c) in [alpha / 2, alpha] for a
// symmetric null (0.024 measured over 20000 datasets). Its band is therefore [0.035 / 2, 0.065].
constexpr double kSignFlipRateLow[] = {kRateLow, kRateLow / 2, kRateLow, kRateLow};

std::vector<double> SignFlipRejectionRates(uint64_t seed, int64_t count, double effect) {
  std::vector<std::vector<int64_t>> reject(kSignFlipTests, std::vector<int64_t>(count, 0));
  ForEachDataset(count, [&](int64_t d) {
    at::Tensor data = MakeSignFlipData(seed, d, effect);
    at::Tensor flips = DrawSignFlips(kResamples, kParticipants, seed + 1000003 * uint64_t(d + 1));
    int64_t k = 0;
    for (Tail tail : {Tail::kTwo, Tail::kUpper}) {
      TMaxResult r = TMaxTest(data, flips, tail);
      ASSERT_EQ(r.h0.numel(), kResamples + 1);
      reject[k++][d] = r.p.le(kAlpha).any().item<bool>();
    }
    for (Tail tail : {Tail::kTwo, Tail::kUpper}) {
      const double threshold = ClusterFormingThreshold(0.05, kParticipants, tail);
      ClusterTestResult r = ClusterTest(data, threshold, tail, flips);
      bool any = false;
      for (const Cluster& c : r.clusters) any = any || c.p <= kAlpha;
      reject[k++][d] = any;
    }
  });
  std::vector<double> rates;
  for (const auto& r : reject) rates.push_back(double(Sum(r)) / double(count));
  return rates;
}

TEST(CalibrationTest, SignFlipTMaxAndClusterControlFamilyWiseErrorUnderNull) {
  std::vector<double> rates = SignFlipRejectionRates(/*seed=*/303, kNullDatasets, /*effect=*/0.0);
  for (int64_t k = 0; k < kSignFlipTests; ++k) {
    std::printf("[calibration] sign-flip %s: FWER %.3f over %lld null datasets\n",
                kSignFlipNames[k], rates[k], static_cast<long long>(kNullDatasets));
    EXPECT_GE(rates[k], kSignFlipRateLow[k]) << kSignFlipNames[k];
    EXPECT_LE(rates[k], kRateHigh) << kSignFlipNames[k];
  }
}

TEST(CalibrationTest, SignFlipTMaxAndClusterDetectPlantedEffect) {
  std::vector<double> rates = SignFlipRejectionRates(/*seed=*/404, kPowerDatasets, /*effect=*/1.2);
  for (int64_t k = 0; k < kSignFlipTests; ++k) {
    std::printf("[calibration] sign-flip %s: power %.3f over %lld datasets\n", kSignFlipNames[k],
                rates[k], static_cast<long long>(kPowerDatasets));
    EXPECT_GE(rates[k], kMinPower) << kSignFlipNames[k];
  }
}

}  // namespace
}  // namespace cliphba::stats
