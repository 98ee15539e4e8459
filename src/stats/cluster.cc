#include "stats/cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "stats/signflip.h"
#include "stats/tdist.h"

namespace cliphba::stats {

namespace {

void CheckThreshold(double threshold, Tail tail, const char* what) {
  const bool ok = tail == Tail::kLower ? threshold <= 0.0 : threshold >= 0.0;  // false for NaN
  if (!ok)
    throw ConfigError(std::string(what) + ": cluster-forming threshold " +
                      std::to_string(threshold) + " is incompatible with tail " +
                      std::to_string(TailValue(tail)) +
                      " (it must be >= 0 for tails 0 and 1, <= 0 for tail -1, as in MNE)");
}

// Calls visit(start, stop, mass) for every cluster of t[0..n) in MNE's order.
template <typename Visit>
void ForEachCluster(const double* t, int64_t n, double threshold, Tail tail, Visit&& visit) {
  auto runs = [&](auto member) {
    int64_t i = 0;
    while (i < n) {
      if (!member(t[i])) {
        ++i;
        continue;
      }
      const int64_t start = i;
      double mass = 0.0;
      for (; i < n && member(t[i]); ++i) mass += t[i];
      visit(start, i, mass);
    }
  };
  if (tail == Tail::kLower) {
    runs([threshold](double v) { return v < threshold; });
  } else {
    runs([threshold](double v) { return v > threshold; });
    if (tail == Tail::kTwo) runs([threshold](double v) { return v < -threshold; });
  }
}

// The signed mass with the largest |mass| (first on ties), 0 without clusters.
double MaxClusterStat(const double* t, int64_t n, double threshold, Tail tail) {
  double best = 0.0, best_abs = -1.0;
  ForEachCluster(t, n, threshold, tail, [&](int64_t, int64_t, double mass) {
    if (std::fabs(mass) > best_abs) {
      best_abs = std::fabs(mass);
      best = mass;
    }
  });
  return best;
}

}  // namespace

double ClusterFormingThreshold(double p_threshold, int64_t n_participants, Tail tail) {
  if (!(p_threshold > 0.0 && p_threshold < 1.0) || n_participants < 2)
    throw ConfigError(
        "ClusterFormingThreshold: need 0 < p_threshold < 1 and >= 2 participants, "
        "got p_threshold=" +
        std::to_string(p_threshold) + ", participants=" + std::to_string(n_participants));
  const double p = tail == Tail::kTwo ? p_threshold / 2.0 : p_threshold;
  const double threshold = -StudentTQuantile(p, double(n_participants - 1));
  return tail == Tail::kLower ? -threshold : threshold;
}

std::vector<Cluster> FindClusters(const at::Tensor& t, double threshold, Tail tail) {
  if (!t.defined() || t.dim() != 1 || !at::isFloatingType(t.scalar_type()))
    throw DataError("FindClusters: t must be a 1-D floating tensor (timepoints)");
  CheckThreshold(threshold, tail, "FindClusters");
  at::Tensor x = t.to(at::kCPU, at::kDouble).contiguous();
  std::vector<Cluster> out;
  ForEachCluster(x.data_ptr<double>(), x.numel(), threshold, tail,
                 [&](int64_t start, int64_t stop, double mass) {
                   out.push_back({start, stop, mass, std::numeric_limits<double>::quiet_NaN()});
                 });
  return out;
}

double ObservedClusterStat(const std::vector<Cluster>& clusters, Tail tail) {
  if (clusters.empty()) throw DataError("ObservedClusterStat: there are no clusters");
  double v = tail == Tail::kTwo ? std::fabs(clusters[0].mass) : clusters[0].mass;
  for (const Cluster& c : clusters) {
    if (tail == Tail::kUpper) v = std::max(v, c.mass);
    if (tail == Tail::kLower) v = std::min(v, c.mass);
    if (tail == Tail::kTwo) v = std::max(v, std::fabs(c.mass));
  }
  return v;
}

void AccumulateMaxClusterStat(const at::Tensor& data, const at::Tensor& flips_block,
                              double threshold, Tail tail, double* h0_out) {
  CheckThreshold(threshold, tail, "AccumulateMaxClusterStat");
  at::Tensor d = detail::CheckedData(data, "AccumulateMaxClusterStat");
  at::Tensor f = detail::CheckedFlips(flips_block, d.size(0), "AccumulateMaxClusterStat");
  const int64_t k = f.size(0), n_times = d.size(1), chunk = detail::ChunkRows(n_times);
  for (int64_t a = 0; a < k; a += chunk) {
    const int64_t b = std::min(k, a + chunk);
    at::Tensor t = detail::FlippedTChecked(d, f.slice(0, a, b)).contiguous();
    const double* tp = t.data_ptr<double>();
    for (int64_t r = 0; r < b - a; ++r)
      h0_out[a + r] = MaxClusterStat(tp + r * n_times, n_times, threshold, tail);
  }
}

void SetClusterPValues(const at::Tensor& h0, Tail tail, std::vector<Cluster>* clusters) {
  if (!h0.defined() || h0.dim() != 1 || h0.numel() < 1)
    throw DataError("SetClusterPValues: h0 must be 1-D with at least 1 entry (observed first)");
  at::Tensor h = h0.to(at::kDouble).contiguous();
  const double* hp = h.data_ptr<double>();
  const int64_t m = h.numel();
  for (Cluster& c : *clusters) {
    int64_t count = 0;
    for (int64_t i = 0; i < m; ++i) {
      if (tail == Tail::kUpper) count += hp[i] >= c.mass;
      if (tail == Tail::kLower) count += hp[i] <= c.mass;
      if (tail == Tail::kTwo) count += std::fabs(hp[i]) >= std::fabs(c.mass);
    }
    c.p = double(count) / double(m);
  }
}

ClusterTestResult ClusterTest(const at::Tensor& data, double threshold, Tail tail,
                              const at::Tensor& flips) {
  CheckThreshold(threshold, tail, "ClusterTest");
  ClusterTestResult r;
  r.t_obs = OneSampleT(data);
  at::Tensor f = detail::CheckedFlips(flips, data.size(0), "ClusterTest");
  r.clusters = FindClusters(r.t_obs, threshold, tail);
  if (r.clusters.empty()) {  // MNE: empty clusters, p-values and H0
    r.h0 = at::empty({0}, at::kDouble);
    return r;
  }
  r.h0 = at::empty({f.size(0) + 1}, at::kDouble);
  double* h = r.h0.data_ptr<double>();
  h[0] = ObservedClusterStat(r.clusters, tail);
  AccumulateMaxClusterStat(data, f, threshold, tail, h + 1);
  SetClusterPValues(r.h0, tail, &r.clusters);
  return r;
}

}  // namespace cliphba::stats
