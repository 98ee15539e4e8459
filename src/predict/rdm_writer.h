// Condensed RDMs of predictions, computed and written in shards over the ranks, so that neither
// memory nor a single rank's work grows with N^2.
//
// Dimension legend: N images, K dimensions, m = N (N - 1) / 2 pairs (condensed, row-major i < j,
// scipy's squareform order).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "core/shard.h"
#include "io/results_store.h"
#include "parallel/comm.h"

namespace cliphba::predict {

enum class RdmMetric { kCorrelation, kCosine };  // scipy pdist 'correlation' / 'cosine'

// (N, K) float64 rows prepared so that distance(i, j) = 1 - z_i . z_j: centred (correlation) and
// divided by their L2 norm. A constant (correlation) or zero row gives NaN distances, as scipy.
at::Tensor PrepareRows(const at::Tensor& x, RdmMetric metric);

// The condensed index range rank `rank` of `ranks` computes: ShardRange over the m pairs.
Range CondensedShard(int64_t n, int ranks, int rank);

// Collective. Computes this rank's CondensedShard of 1 - z_i . z_j in float64 (one matrix-vector
// product per row i over all j > i, so every entry is computed the same way whatever the rank
// count) and writes it as float32 with ResultsStore::WriteBlock: at {row, c} of a (rows, m)
// dataset, or at {c} of an (m) dataset when row < 0. Pieces of at most `piece` entries; every
// rank makes the same number of WriteBlock calls. REQUIRES: the dataset exists.
void WriteCondensed(io::ResultsStore& store, const std::string& dataset, int64_t row,
                    const at::Tensor& z, int64_t piece, const parallel::Comm& comm);

}  // namespace cliphba::predict
