// Cluster-based sign-flip permutation test for 1-D data (timepoints, no spatial adjacency), equal
// to MNE-Python 1.3's mne.stats.permutation_cluster_1samp_test(X, threshold, tail,
// n_permutations = K + 1, t_power = 1, step_down_p = 0, adjacency = None) when MNE draws exactly
// the given flips.
//
// Dimension legend as in stats/signflip.h: N participants, T timepoints, K sign flips.
//
// MNE semantics reproduced here (mne/stats/cluster_level.py, 1.3):
//  * The threshold is signed like MNE's: >= 0 for tails 0 and 1, <= 0 for tail -1. Membership is
//    strict: tail 1 takes t > threshold, tail -1 takes t < threshold, tail 0 takes t > threshold
//    (positive clusters) and t < -threshold (negative clusters); a value exactly at the threshold
//    is never in a cluster, and NaN never is either.
//  * A cluster is a maximal run of consecutive member timepoints of one sign; its mass is the sum
//    of its t values (t_power = 1).
//  * Order (scipy.ndimage.label per sign): for tail 0 all positive clusters by start, then all
//    negative clusters by start; otherwise by start.
//  * H0 has K + 1 entries. H0[0] is the observed statistic: the largest mass for tail 1, the
//    smallest (most negative) for tail -1, the largest |mass| (positive) for tail 0. H0[1 + k] is,
//    for flip row k, the mass with the largest |mass| among that flip's clusters (the first such
//    in the order above on ties, keeping its sign), or 0 if the flip has no cluster.
//  * Cluster p-value (_pval_from_histogram): #{H0 >= m} (tail 1), #{H0 <= m} (tail -1),
//    #{|H0| >= |m|} (tail 0), divided by K + 1.
//  * No observed cluster: MNE returns empty clusters, p-values and H0 (with a warning); so does
//    ClusterTest (empty clusters and an empty h0).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "stats/common.h"

namespace cliphba::stats {

struct Cluster {
  int64_t start;  // first timepoint
  int64_t stop;   // one past the last timepoint (exclusive)
  double mass;    // sum of t over [start, stop)
  double p;       // permutation p-value; NaN until set (FindClusters leaves it NaN)
};

// MNE's default cluster-forming threshold (mne.stats.cluster_level._check_fun):
// p' = p_threshold / 2 for tail 0, p_threshold otherwise; threshold = -t.ppf(p', N - 1), negated
// for tail -1 (so it is negative there). MNE's default p_threshold is 0.05.
// Throws ConfigError for p_threshold outside (0, 1) or n_participants < 2.
double ClusterFormingThreshold(double p_threshold, int64_t n_participants, Tail tail);

// Clusters of t (T, 1-D floating) at threshold for tail, as MNE's _find_clusters (see above).
// Returns them in MNE's order with p = NaN. Throws DataError if t is not 1-D floating; ConfigError
// if threshold is NaN or its sign is incompatible with tail (MNE raises ValueError).
std::vector<Cluster> FindClusters(const at::Tensor& t, double threshold, Tail tail);

// The observed H0[0] for non-empty clusters: max mass (tail 1), min mass (tail -1), max |mass|
// (tail 0). Throws DataError if clusters is empty.
double ObservedClusterStat(const std::vector<Cluster>& clusters, Tail tail);

// Streaming null distribution: h0_out[k] = the signed mass with the largest |mass| among the
// clusters of FlippedT(data, flips_block)[k] (0 if none), for the K_b rows of flips_block
// (K_b x N). h0_out must hold K_b doubles. Threshold checked as in FindClusters; data and flips as
// in FlippedT.
void AccumulateMaxClusterStat(const at::Tensor& data, const at::Tensor& flips_block,
                              double threshold, Tail tail, double* h0_out);

// Sets clusters[i].p from h0 (K + 1 entries, observed included, any order) as
// _pval_from_histogram. Throws DataError if h0 is empty or not 1-D.
void SetClusterPValues(const at::Tensor& h0, Tail tail, std::vector<Cluster>* clusters);

struct ClusterTestResult {
  at::Tensor t_obs;               // (T) float64: OneSampleT(data)
  std::vector<Cluster> clusters;  // MNE's order, with p-values; empty if none
  at::Tensor h0;                  // (K + 1) float64 as above; (0) if there is no observed cluster
};

// The whole test: data (N x T), flips (K x N) of +-1. Throws as OneSampleT, FlippedT and
// FindClusters.
ClusterTestResult ClusterTest(const at::Tensor& data, double threshold, Tail tail,
                              const at::Tensor& flips);

}  // namespace cliphba::stats
