// `cliphba rsa behavior`: an embedding against a human reference RDM (e.g. THINGS RDM48).
//
// Flow: load config -> read the embedding CSV, RDM NPY and RDM row names -> validate the RDM
// (square, symmetric, zero diagonal, finite: never repaired) -> align embedding rows to the RDM
// by image name -> RDMs x comparisons + triplet accuracy -> HDF5 (atomic) -> print.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/output_policy.h"
#include "io/results_store.h"
#include "rsa/behavior.h"

namespace cliphba::apps {

namespace {

void Require(const std::string& value, const char* key, const char* flag) {
  if (value.empty())
    throw ConfigError(std::string(key) + " is required: pass " + flag + " FILE or set " + key +
                      " in the --config YAML");
}

void WriteResults(const std::string& path, const config::Config& cfg,
                  const std::vector<std::string>& names, const rsa::CondensedRdm& reference,
                  const rsa::BehaviorEvaluation& eval) {
  const auto& o = cfg.rsa_behavior;
  io::ResultsStore store = io::ResultsStore::Create(path);
  io::WriteProvenance(&store, "rsa behavior", config::ConfigHash(cfg), config::DumpConfig(cfg));
  store.WriteStrings("/behavior/object_names", names);
  store.WriteTensor("/behavior/reference_rdm", reference.values);
  store.SetAttribute(
      "/behavior/reference_rdm", "layout",
      std::string("condensed upper triangle (i < j, row-major; scipy squareform order)"));
  store.SetAttribute("/behavior/reference_rdm", "source", o.rdm);
  std::vector<std::string> metric_names;
  at::Tensor scores = at::empty({int64_t(eval.per_metric.size()), 4}, at::kDouble);
  for (size_t m = 0; m < eval.per_metric.size(); ++m) {
    const auto& pm = eval.per_metric[m];
    metric_names.push_back(rsa::MetricName(pm.metric));
    const std::string ds = std::string("/behavior/model_rdm/") + rsa::MetricName(pm.metric);
    store.WriteTensor(ds, pm.model_rdm.values);
    store.SetAttribute(ds, "metric", std::string(rsa::MetricName(pm.metric)));
    for (int c = 0; c < 4; ++c) scores[m][c] = pm.scores[c];
  }
  std::vector<std::string> comparison_names;
  for (auto c : rsa::AllComparisons()) comparison_names.push_back(rsa::ComparisonName(c));
  store.WriteTensor("/behavior/scores", scores);
  store.SetAttribute("/behavior/scores", "rows", metric_names);
  store.SetAttribute("/behavior/scores", "columns", comparison_names);
  store.SetAttribute("/behavior", "embedding", o.embedding);
  store.SetAttribute("/behavior", "n_objects", eval.n_objects);
  store.SetAttribute("/behavior", "triplet_accuracy", eval.triplets.accuracy);
  store.SetAttribute("/behavior", "n_triplets", eval.triplets.n_used);
  store.SetAttribute("/behavior", "n_triplets_correct", eval.triplets.n_correct);
  store.SetAttribute("/behavior", "n_triplets_tied", eval.triplets.n_tied);
  if (eval.has_listed_triplets) {
    store.SetAttribute("/behavior", "listed_triplets", o.triplets);
    store.SetAttribute("/behavior", "listed_triplet_accuracy", eval.listed_triplets.accuracy);
    store.SetAttribute("/behavior", "listed_n_triplets", eval.listed_triplets.n_used);
    store.SetAttribute("/behavior", "listed_n_triplets_tied", eval.listed_triplets.n_tied);
  }
  store.Commit();
}

}  // namespace

int RunRsaBehavior(const CommonArgs& args, bool force) {
  config::Config cfg = config::LoadConfig(args.config_file, args.overrides);
  ApplyRuntime(cfg.log.level, cfg.runtime.threads);
  const auto& o = cfg.rsa_behavior;
  Require(o.embedding, "rsa.behavior.embedding", "--embedding");
  Require(o.rdm, "rsa.behavior.rdm", "--rdm");
  Require(o.rdm_names, "rsa.behavior.rdm_names", "--rdm-names");
  // The output policy (README.md), before any work.
  io::RefuseOutputOverInputs("rsa.behavior.out", o.out, {},
                             {o.embedding, o.rdm, o.rdm_names, o.triplets});
  std::error_code ec;
  if (!o.out.empty() && std::filesystem::exists(o.out, ec) && !force)
    throw ConfigError("rsa.behavior.out " + o.out +
                      " exists: refusing to replace a result (use --force to replace it, or "
                      "choose another --out)");
  std::vector<rsa::RdmMetric> metrics;
  for (const auto& m : o.metrics) metrics.push_back(rsa::ParseMetric(m));

  io::EmbeddingTable table = io::ReadEmbeddingCsv(o.embedding);
  std::vector<std::string> names = io::ReadNameList(o.rdm_names);
  // RDMs often come from MATLAB or scipy.io (RDM48_triplet.npy is Fortran-order): io/npy.h
  // converts them on load, as every NPY input.
  at::Tensor square = io::ReadNpy(o.rdm);
  if (square.dim() != 2 || square.size(0) != int64_t(names.size()) ||
      square.size(1) != int64_t(names.size())) {
    throw DataError(o.rdm + ": expected a square RDM with one row per name in " + o.rdm_names +
                    " (" + std::to_string(names.size()) + " x " + std::to_string(names.size()) +
                    "), got shape " + fmt::format("{}", fmt::join(square.sizes(), " x ")));
  }
  rsa::SquareCheck check;
  check.tolerance = o.symmetry_tolerance;
  rsa::CondensedRdm reference = rsa::CondenseSquare(square, o.rdm, check);
  std::vector<int64_t> rows = rsa::AlignByName(table.names, names, o.embedding, o.rdm_names);
  at::Tensor embedding = table.values.index_select(0, at::tensor(rows, at::kLong));  // (n, d)
  at::Tensor choices;
  if (!o.triplets.empty()) {
    choices = io::ReadNpy(o.triplets);
    if (choices.dim() != 2 || choices.size(1) != 3 || choices.scalar_type() != at::kLong)
      throw DataError(o.triplets + ": expected an int64 (t x 3) array of (a, b, odd) rows");
    // Checked here so that the message names the triplets file (indices are RDM rows).
    const int64_t n = int64_t(names.size());
    choices = choices.contiguous();
    const int64_t* p = choices.data_ptr<int64_t>();
    for (int64_t r = 0; r < choices.size(0); ++r) {
      const int64_t a = p[3 * r], b = p[3 * r + 1], c = p[3 * r + 2];
      if (std::min({a, b, c}) < 0 || std::max({a, b, c}) >= n)
        throw DataError(o.triplets + ": row " + std::to_string(r) + " (" + std::to_string(a) +
                        ", " + std::to_string(b) + ", " + std::to_string(c) +
                        ") has an object index outside [0, " + std::to_string(n) +
                        "); indices are rows of the RDM, in the order of " + o.rdm_names);
      if (a == b || a == c || b == c)
        throw DataError(o.triplets + ": row " + std::to_string(r) + " repeats an object");
    }
  }
  LOG_INFO("behaviour RSA: {} objects x {} dims, {} RDM types", embedding.size(0),
           embedding.size(1), metrics.size());
  rsa::BehaviorEvaluation eval;
  try {
    eval = rsa::EvaluateBehavior(embedding, reference, square.to(at::kDouble), metrics, choices);
  } catch (const DataError& e) {
    throw DataError(o.embedding + " vs " + o.rdm + ": " + e.what());
  }
  if (!o.out.empty()) WriteResults(o.out, cfg, names, reference, eval);

  nlohmann::json j;
  j["n_objects"] = eval.n_objects;
  for (const auto& pm : eval.per_metric) {
    nlohmann::json s;
    for (auto c : rsa::AllComparisons()) s[rsa::ComparisonName(c)] = pm.scores[int(c)];
    j["rdm"][rsa::MetricName(pm.metric)] = s;
  }
  j["triplet_accuracy"] = eval.triplets.accuracy;
  j["n_triplets"] = eval.triplets.n_used;
  j["n_triplets_tied"] = eval.triplets.n_tied;
  if (eval.has_listed_triplets) {
    j["listed_triplets"] = {{"accuracy", eval.listed_triplets.accuracy},
                            {"n_triplets", eval.listed_triplets.n_used},
                            {"n_triplets_tied", eval.listed_triplets.n_tied}};
  }
  j["config_hash"] = config::ConfigHash(cfg);
  if (!o.out.empty()) j["out"] = o.out;
  if (args.json) {
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("Behavioural RSA: {} objects, embedding {} vs RDM {}\n\n", eval.n_objects, o.embedding,
             o.rdm);
  fmt::print("{:<12} {:>10} {:>10} {:>14} {:>10}\n", "model RDM", "pearson", "spearman",
             "kendall_tau_a", "cosine");
  for (const auto& pm : eval.per_metric)
    fmt::print("{:<12} {:>10.6f} {:>10.6f} {:>14.6f} {:>10.6f}\n", rsa::MetricName(pm.metric),
               pm.scores[0], pm.scores[1], pm.scores[2], pm.scores[3]);
  fmt::print(
      "\ntriplet odd-one-out accuracy (SPoSE rule): {:.6f} over {} triplets ({} tied, left out)\n",
      eval.triplets.accuracy, eval.triplets.n_used, eval.triplets.n_tied);
  if (eval.has_listed_triplets)
    fmt::print("listed behavioural triplets: accuracy {:.6f} over {} ({} tied)\n",
               eval.listed_triplets.accuracy, eval.listed_triplets.n_used,
               eval.listed_triplets.n_tied);
  if (!o.out.empty()) fmt::print("results written to {}\n", o.out);
  return 0;
}

}  // namespace cliphba::apps
