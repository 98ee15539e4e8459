#include "rsa/behavior.h"

#include <unordered_map>

#include "core/error.h"

namespace cliphba::rsa {

std::vector<int64_t> AlignByName(const std::vector<std::string>& available,
                                 const std::vector<std::string>& wanted,
                                 const std::string& available_source,
                                 const std::string& wanted_source) {
  std::unordered_map<std::string, int64_t> index;
  for (size_t i = 0; i < available.size(); ++i) index.emplace(available[i], int64_t(i));
  std::unordered_map<std::string, int64_t> seen;
  std::vector<int64_t> rows;
  std::vector<std::string> missing;
  size_t n_missing = 0;
  for (size_t w = 0; w < wanted.size(); ++w) {
    if (!seen.emplace(wanted[w], int64_t(w)).second)
      throw DataError(wanted_source + ": object name '" + wanted[w] + "' appears twice");
    auto it = index.find(wanted[w]);
    if (it == index.end()) {
      if (missing.size() < 5) missing.push_back(wanted[w]);
      ++n_missing;
    } else {
      rows.push_back(it->second);
    }
  }
  if (n_missing > 0) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "'" : ", '") + m + "'";
    throw DataError(std::to_string(n_missing) + " of " + std::to_string(wanted.size()) +
                    " object names in " + wanted_source + " are missing from " + available_source +
                    " (first: " + list +
                    "); objects are matched by exact image name, never by row order");
  }
  return rows;
}

BehaviorEvaluation EvaluateBehavior(const at::Tensor& embedding, const CondensedRdm& reference,
                                    const at::Tensor& reference_square,
                                    const std::vector<RdmMetric>& metrics,
                                    const at::Tensor& listed_choices) {
  if (embedding.dim() != 2 || embedding.size(0) != reference.n)
    throw DataError("behaviour RSA: the embedding has " + std::to_string(embedding.size(0)) +
                    " rows but the reference RDM has " + std::to_string(reference.n) + " objects");
  BehaviorEvaluation out;
  out.n_objects = reference.n;
  for (RdmMetric metric : metrics) {
    MetricScores s{metric, ComputeRdm(embedding, metric), {0, 0, 0, 0}};
    for (Comparison c : AllComparisons())
      s.scores[int(c)] = Compare(c, s.model_rdm.values, reference.values);
    out.per_metric.push_back(std::move(s));
  }
  at::Tensor similarity = DotSimilarity(embedding);
  out.triplets = TripletAccuracyAll(similarity, reference_square);
  if (listed_choices.defined()) {
    out.has_listed_triplets = true;
    out.listed_triplets = TripletAccuracyChoices(similarity, listed_choices);
  }
  return out;
}

}  // namespace cliphba::rsa
