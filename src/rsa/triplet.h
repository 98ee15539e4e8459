// Triplet odd-one-out accuracy of a model against human judgements.
//
// For a triplet {i, j, k} the model chooses the pair with the LARGEST similarity (the SPoSE rule:
// similarity = dot product of the embedding rows, see DotSimilarity) and the reference chooses the
// pair with the LOWEST dissimilarity; the odd one out is the remaining object. A triplet in which
// either choice is tied (the extreme value shared by two or three pairs, exact equality) has no
// defined choice: it is left out of the accuracy and counted in n_tied.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cliphba::rsa {

struct TripletResult {
  double accuracy = 0;    // n_correct / n_used; NaN if n_used == 0
  int64_t n_used = 0;     // triplets in which both choices are defined
  int64_t n_correct = 0;  // of those, triplets where the model's pair equals the reference's
  int64_t n_tied = 0;     // triplets left out because a choice is tied
};

// Every one of the C(n, 3) triplets i < j < k.
// model_similarity: (n, n) float; reference_rdm: (n, n) float dissimilarities (validated by the
// caller, e.g. with CondenseSquare). Cost O(n^3), parallel over i.
TripletResult TripletAccuracyAll(const at::Tensor& model_similarity,
                                 const at::Tensor& reference_rdm);

// Listed triplets, reference choice from the RDM. triplets: (t, 3) int64 object indices in
// [0, n), three distinct per row. Throws DataError for an index out of range or a repeated index.
TripletResult TripletAccuracyListed(const at::Tensor& model_similarity,
                                    const at::Tensor& reference_rdm, const at::Tensor& triplets);

// Behavioural choices: each row (a, b, odd) records that a person judged a and b the most similar
// pair (odd = the odd one out), the layout of the THINGS/SPoSE triplet files. Only model ties are
// possible (n_tied). Throws DataError as TripletAccuracyListed.
TripletResult TripletAccuracyChoices(const at::Tensor& model_similarity,
                                     const at::Tensor& triplets);

}  // namespace cliphba::rsa
