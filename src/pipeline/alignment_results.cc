#include "pipeline/alignment_results.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "io/results_reader.h"
#include "io/results_store.h"

namespace cliphba::pipeline {
namespace {

std::string ShapeOf(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void CheckPT(const at::Tensor& x, int64_t P, int64_t T, const std::string& what) {
  if (!x.defined() || x.dim() != 2 || x.size(0) != P || x.size(1) != T) {
    std::ostringstream msg;
    msg << what << ": expected shape (participants " << P << ", timepoints " << T << "), got "
        << (x.defined() ? ShapeOf(x) : std::string("an undefined tensor"));
    throw DataError(msg.str());
  }
}

std::vector<double> ToVector(const at::Tensor& x) {
  at::Tensor d = x.to(at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

}  // namespace

AlignmentAxis AxisFromTimes(const at::Tensor& times_in) {
  if (times_in.dim() != 1 || times_in.numel() < 1)
    throw DataError("MEG alignment results: times_ms must be 1-D and non-empty; got shape " +
                    ShapeOf(times_in));
  const std::vector<double> t = ToVector(times_in);
  AlignmentAxis axis;
  axis.size = int64_t(t.size());
  axis.start_ms = t[0];
  axis.step_ms = t.size() > 1 ? t[1] - t[0] : 1.0;
  if (!std::isfinite(axis.start_ms) || !(axis.step_ms > 0) || !std::isfinite(axis.step_ms))
    throw DataError("MEG alignment results: times_ms must be finite and strictly increasing");
  for (size_t i = 0; i < t.size(); ++i) {
    const double want = axis.start_ms + double(i) * axis.step_ms;
    if (!(std::fabs(t[i] - want) <= 1e-9 * std::max(1.0, std::fabs(want)))) {
      std::ostringstream msg;
      msg << "MEG alignment results: times_ms is not evenly spaced: times_ms[" << i
          << "] = " << t[i] << ", expected " << want << " (start " << axis.start_ms << " ms, step "
          << axis.step_ms << " ms)";
      throw DataError(msg.str());
    }
  }
  return axis;
}

void CheckModelName(const std::string& name) {
  const std::string prefix = "individual/";
  const bool ok = name == "group" || name == "clip" || name == "behavior" ||
                  (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                   name.find('/', prefix.size()) == std::string::npos);
  if (!ok)
    throw DataError("MEG alignment results: model name '" + name +
                    "' is invalid; expected \"group\", \"individual/<participant label>\" or a "
                    "baseline, \"clip\" or \"behavior\"");
}

void WriteMegAxes(io::ResultsStore* store, const at::Tensor& times_ms,
                  const std::vector<std::string>& participants) {
  AxisFromTimes(times_ms);
  if (participants.empty()) throw DataError("MEG alignment results: no participant labels given");
  store->WriteTensor("/meg/times_ms", times_ms.to(at::kDouble).contiguous());
  store->SetAttribute("/meg/times_ms", "units", std::string("ms"));
  store->WriteStrings("/meg/participants", participants);
}

namespace {

// The definition of o's kind; throws DataError (naming `group`) for a bad kind or counts.
std::string ObjectsDefinition(const AlignmentObjects& o, const std::string& group) {
  std::string definition;
  if (o.objects == "heldout")
    definition = "held out: objects that no compared model trained on";
  else if (o.objects == "cross_validated")
    definition = "cross-validated: mean over n_folds folds of the value on each fold's "
                 "within-fold pairs, each fold's RDM from a model trained without that fold";
  else if (o.objects == "insample")
    definition = "in-sample DIAGNOSTIC: objects the model trained on (not a result)";
  else
    throw DataError("alignment objects '" + o.objects + "' for " + group +
                    ": expected heldout, cross_validated or insample");
  if (o.n_objects < 3 || o.n_pairs < 3 || o.n_folds < 1)
    throw DataError("alignment objects for " + group + ": " + std::to_string(o.n_objects) +
                    " objects, " + std::to_string(o.n_pairs) + " pairs, " +
                    std::to_string(o.n_folds) + " folds (need >= 3, >= 3, >= 1)");
  return definition;
}

}  // namespace

void WriteObjectsAttributes(io::ResultsStore* store, const std::string& group,
                            const AlignmentObjects& o) {
  const std::string definition = ObjectsDefinition(o, group);
  store->SetAttribute(group, "objects", o.objects);
  store->SetAttribute(group, "objects_definition", definition);
  store->SetAttribute(group, "n_objects", o.n_objects);
  store->SetAttribute(group, "n_pairs", o.n_pairs);
  store->SetAttribute(group, "n_folds", o.n_folds);
}

AlignmentObjects ReadObjectsAttributes(const io::ResultsReader& in, const std::string& group) {
  if (!in.HasAttribute(group, "objects"))
    throw DataError(group + ": no 'objects' attribute (written before out-of-sample alignment; "
                    "rerun the alignment unit)");
  return {in.ReadStringAttribute(group, "objects"), in.ReadIntAttribute(group, "n_objects"),
          in.ReadIntAttribute(group, "n_pairs"), in.ReadIntAttribute(group, "n_folds")};
}

void WriteMegAlignment(io::ResultsStore* store, const std::string& model_name,
                       const rsa::TimeResolvedAlignment& alignment, const at::Tensor& times_ms,
                       const std::vector<std::string>& participants,
                       const AlignmentObjects& objects, const std::string& block) {
  CheckModelName(model_name);
  if (block != "alignment" && block != "alignment_insample")
    throw DataError("MEG alignment results: block '" + block +
                    "' is neither alignment nor alignment_insample");
  if ((block == "alignment_insample") != (objects.objects == "insample"))
    throw DataError("MEG alignment results for model '" + model_name + "': " + objects.objects +
                    " values belong in " +
                    (objects.objects == "insample" ? "alignment_insample" : "alignment") +
                    ", not " + block);
  ObjectsDefinition(objects, "/meg/" + model_name + "/" + block);  // checked before any write
  const AlignmentAxis axis = AxisFromTimes(times_ms);
  const int64_t P = int64_t(participants.size()), T = axis.size;
  const std::string what = "MEG alignment results for model '" + model_name + "'";
  CheckPT(alignment.spearman, P, T, what + ", spearman");
  CheckPT(alignment.pearson, P, T, what + ", pearson");
  const at::Tensor spearman = alignment.spearman.to(at::kDouble).contiguous();
  at::Tensor auc = at::empty({P}, at::kDouble), peak = at::empty({P}, at::kDouble);
  for (int64_t p = 0; p < P; ++p) {
    auc[p] = rsa::AreaFromZero(spearman[p], axis.start_ms, axis.step_ms);
    peak[p] = rsa::PeakLatencyMs(spearman[p], axis.start_ms, axis.step_ms);
  }
  const std::string g = "/meg/" + model_name + "/" + block;
  store->WriteTensor(g + "/spearman", spearman);
  store->WriteTensor(g + "/pearson", alignment.pearson.to(at::kDouble).contiguous());
  store->WriteTensor(g + "/auc", auc);
  store->SetAttribute(g + "/auc", "units", std::string("rho x s"));
  store->WriteTensor(g + "/peak_ms", peak);
  store->SetAttribute(g + "/peak_ms", "units", std::string("ms"));
  store->SetAttribute(g, "participants", participants);
  store->SetAttribute(g, "time_start_ms", axis.start_ms);
  store->SetAttribute(g, "time_step_ms", axis.step_ms);
  store->SetAttribute(g, "definition",
                      std::string("spearman/pearson[p, t]: model RDM at t vs participant p's MEG "
                                  "RDM at t (scipy spearmanr average ranks / pearsonr); auc: "
                                  "trapezoid of spearman over t >= 0 ms in rho x s; peak_ms: time "
                                  "of the first maximum of spearman over t >= 0 ms"));
  WriteObjectsAttributes(store, g, objects);
}

void WriteTimeGeneralization(io::ResultsStore* store, const std::string& path,
                             const at::Tensor& matrix, const at::Tensor& times_ms,
                             const std::vector<std::string>& participants,
                             const AlignmentObjects& objects, const std::string& definition) {
  const AlignmentAxis axis = AxisFromTimes(times_ms);
  const int64_t P = int64_t(participants.size()), T = times_ms.numel();
  if (matrix.dim() != 3 || matrix.size(0) != P || matrix.size(1) != T || matrix.size(2) != T)
    throw DataError("time generalisation " + path + ": expected (" + std::to_string(P) + ", " +
                    std::to_string(T) + ", " + std::to_string(T) + "), got " +
                    c10::str(matrix.sizes()));
  store->WriteTensor(path, matrix.to(at::kDouble).contiguous());
  store->SetAttribute(path, "participants", participants);
  store->SetAttribute(path, "time_start_ms", axis.start_ms);
  store->SetAttribute(path, "time_step_ms", axis.step_ms);
  store->SetAttribute(path, "definition", definition);
  WriteObjectsAttributes(store, path, objects);
}

void WriteBlockWeights(io::ResultsStore* store, const std::string& model_name,
                       const at::Tensor& weights, const at::Tensor& times_ms) {
  CheckModelName(model_name);
  const AlignmentAxis axis = AxisFromTimes(times_ms);
  const at::Tensor w = weights.to(at::kDouble).contiguous();
  if (w.dim() != 2 || w.size(0) != times_ms.numel() || w.size(1) < 1 ||
      !at::isfinite(w).all().item<bool>() || (w < 0).any().item<bool>())
    throw DataError("MEG block weights of " + model_name + ": expected finite weights >= 0 of "
                    "shape (" + std::to_string(times_ms.numel()) + ", L), got " +
                    c10::str(w.sizes()));
  const std::string d = "/meg/" + model_name + "/block_weights";
  store->WriteTensor(d, w);
  store->SetAttribute(d, "time_start_ms", axis.start_ms);
  store->SetAttribute(d, "time_step_ms", axis.step_ms);
  store->SetAttribute(d, "n_blocks", w.size(1));
  store->SetAttribute(
      d, "definition",
      std::string("the model's learned mix of vision blocks per timepoint (rows: timepoints of "
                  "/meg/times_ms, columns: vision blocks 0..L-1, each row sums to 1): Wfr "
                  "min-max scaled and normalised per timepoint, as the MEG head mixes the "
                  "blocks' CLS features; a parameter of the unit's own model, fitted on its "
                  "training objects (not an out-of-sample evaluation)"));
}

void WriteCeiling(io::ResultsStore* store, const rsa::TimeResolvedCeiling& ceiling,
                  const at::Tensor& times_ms, const std::vector<std::string>& participants,
                  const AlignmentObjects& objects) {
  const AlignmentAxis axis = AxisFromTimes(times_ms);
  const int64_t P = int64_t(participants.size()), T = axis.size;
  ObjectsDefinition(objects, "/meg/ceiling");
  CheckPT(ceiling.lower, P, T, "MEG noise ceiling results, lower");
  CheckPT(ceiling.upper, P, T, "MEG noise ceiling results, upper");
  const at::Tensor lower = ceiling.lower.to(at::kDouble).contiguous();
  const at::Tensor upper = ceiling.upper.to(at::kDouble).contiguous();
  store->WriteTensor("/meg/ceiling/lower", lower);
  store->WriteTensor("/meg/ceiling/upper", upper);
  store->SetAttribute("/meg/ceiling", "participants", participants);
  store->SetAttribute("/meg/ceiling", "comparison", std::string("spearman"));
  store->SetAttribute("/meg/ceiling", "mean_lower", ToVector(lower.mean(0)));
  store->SetAttribute("/meg/ceiling", "mean_upper", ToVector(upper.mean(0)));
  store->SetAttribute("/meg/ceiling", "definition",
                      std::string("lower[p, t]: Spearman of participant p's MEG RDM at t with the "
                                  "mean RDM of the other participants; upper[p, t]: with the mean "
                                  "RDM of all participants"));
  WriteObjectsAttributes(store, "/meg/ceiling", objects);
}

void WriteOwnVsOther(io::ResultsStore* store, const at::Tensor& matrix, const rsa::OwnVsOther& test,
                     const std::vector<std::string>& model_names,
                     const std::vector<std::string>& participants,
                     const std::vector<int64_t>& own) {
  if (!matrix.defined() || matrix.dim() != 2 || matrix.size(0) != int64_t(model_names.size()) ||
      matrix.size(1) != int64_t(participants.size()) || own.size() != model_names.size()) {
    std::ostringstream msg;
    msg << "own-vs-other results: expected a matrix (models " << model_names.size()
        << ", participants " << participants.size() << ") and one own participant per model ("
        << own.size() << " given); got matrix "
        << (matrix.defined() ? ShapeOf(matrix) : std::string("undefined"));
    throw DataError(msg.str());
  }
  for (const std::string& name : model_names) CheckModelName(name);
  const std::string g = "/meg/own_vs_other";
  store->WriteTensor(g + "/matrix", matrix.to(at::kDouble).contiguous());
  store->WriteTensor(g + "/own", at::tensor(own, at::kLong));
  store->SetAttribute(g + "/matrix", "statistic", test.statistic);
  store->SetAttribute(g + "/matrix", "p_value", test.p_value);
  store->SetAttribute(g + "/matrix", "n_permutations", test.n_permutations);
  store->SetAttribute(g + "/matrix", "exact", int64_t(test.exact ? 1 : 0));
  store->SetAttribute(g + "/matrix", "rows", model_names);
  store->SetAttribute(g + "/matrix", "columns", participants);
  store->SetAttribute(g + "/matrix", "definition",
                      std::string("matrix[i, j]: mean over t >= 0 ms of the Spearman of model i "
                                  "with participant j; statistic: mean(own entries) - mean(other "
                                  "entries); p: participant-label permutations (exact over all P! "
                                  "when P! <= n, else (1 + #{null >= obs}) / (1 + n))"));
}

}  // namespace cliphba::pipeline
