// MEG prediction and evaluation: the model RDMs of named objects (PredictMegRdms, through
// train/meg_predictor.h) and their alignment with the MEG RDMs (EvaluateMeg). See meg.h.
#include <torch/utils.h>  // torch::manual_seed

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/csv.h"
#include "io/results_store.h"
#include "meg/rdm_stack.h"
#include "model/checkpoint.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "rsa/compare.h"
#include "train/common.h"
#include "train/meg.h"
#include "train/meg_internal.h"
#include "train/meg_loss.h"
#include "train/meg_predictor.h"

namespace cliphba::train {

namespace fs = std::filesystem;
using config::TrainMegOptions;

namespace {

using meg_detail::ResolveParticipants;

// Model RDMs (T, m) float64 of `names` (see PredictMegRdms).
at::Tensor Predict(const MegPredictor& p, const TrainMegOptions& o,
                   const std::vector<std::string>& names, const parallel::Comm& comm) {
  if (names.size() < 3)
    throw ConfigError("MEG model RDMs need at least 3 objects, got " +
                      std::to_string(names.size()));
  MegImages images;
  images.paths = ResolveImages(names, o.image_dir, "the requested names");
  images.threads = int(o.loader_threads);
  at::Tensor emb;  // (T, N, K)
  StreamMegPredictions(p, images, o.batch, p.timepoints(), o.noise && o.noise_eval,
                       uint64_t(o.seed), comm,
                       [&](int64_t, const at::Tensor& e) { emb = e; });
  return UpperTriangles(PearsonRdm(emb.to(at::kDouble))).contiguous();  // (T_full, m)
}

}  // namespace

at::Tensor PredictMegRdms(const TrainMegOptions& o, const std::vector<std::string>& names,
                          const parallel::Comm& comm, at::Tensor* block_weights) {
  const MegPredictor p(o);
  if (block_weights) *block_weights = p.BlockWeights();
  return Predict(p, o, names, comm);
}

MegEvaluation EvaluateMeg(const TrainMegOptions& o, const RunInfo& info,
                          const parallel::Comm& comm) {
  if (o.heldout_names.empty())
    throw ConfigError("evaluate meg: set train.meg.heldout_names (at least 3 objects)");
  const std::vector<std::string> names = io::ReadNameList(o.heldout_names);
  if (names.size() < 3)
    throw ConfigError("evaluate meg: " + o.heldout_names + " lists fewer than 3 objects");
  if (o.rdm.path.empty()) throw ConfigError("meg.rdm.path is required");
  meg::RdmStack st = meg::RdmStack::Open(o.rdm);
  const std::vector<int64_t> idx =
      meg::IndicesOfNames(st.names(), names, st.source(), o.heldout_names);
  const std::vector<int64_t> ps = ResolveParticipants(o, st);
  const MegPredictor p(o);
  if (p.timepoints() != st.timepoints() ||
      std::abs(p.axis_start_ms() - st.time().start_ms) > 1e-9 ||
      std::abs(p.axis_step_ms() - st.time().step_ms) > 1e-9)
    throw DataError(o.out_dir + "/best.json: the checkpoint's time axis differs from " +
                    st.source() + "'s");
  at::Tensor model_rdm = Predict(p, o, names, comm);  // (T, m) float64
  const int64_t t_full = st.timepoints(), n_p = st.participants();
  MegEvaluation ev;
  ev.n_objects = int64_t(names.size());
  ev.participants = st.participant_labels();
  for (int64_t t = 0; t < t_full; ++t) ev.times_ms.push_back(st.time().TimeAt(t));
  ev.spearman = at::zeros({n_p, t_full}, at::kDouble);
  ev.pearson = at::zeros({n_p, t_full}, at::kDouble);
  ev.target_spearman = at::zeros({t_full}, at::kDouble);
  auto condensed = [](const at::Tensor& stack) {
    return UpperTriangles(stack.to(at::kDouble)).contiguous();
  };
  for (int64_t q = 0; q < n_p; ++q) {
    at::Tensor meg = condensed(st.Read(q, 0, t_full, idx));
    for (int64_t t = 0; t < t_full; ++t) {
      ev.spearman[q][t] = rsa::Spearman(model_rdm[t], meg[t]);
      ev.pearson[q][t] = rsa::Pearson(model_rdm[t], meg[t]);
    }
  }
  at::Tensor target = condensed(st.ReadMean(ps, 0, t_full, idx));
  double sum = 0;
  int64_t count = 0;
  for (int64_t t = 0; t < t_full; ++t) {
    const double r = rsa::Spearman(model_rdm[t], target[t]);
    ev.target_spearman[t] = r;
    if (ev.times_ms[t] >= 0) {
      sum += r;
      ++count;
    }
  }
  ev.mean_target_spearman_from0 = count > 0 ? sum / double(count) : 0.0;
  ev.done = true;
  if (comm.is_root()) {
    const std::string group = o.mode == config::MegMode::kGroup
                                  ? std::string("/meg/group")
                                  : "/meg/individual/" + st.participant_labels()[ps[0]];
    io::ResultsStore store = io::ResultsStore::Create(o.out_dir + "/evaluation.h5");
    store.SetAttribute("/", "schema_version", int64_t(1));
    store.SetAttribute("/", "config_hash", info.config_hash);
    store.SetAttribute("/", "config_yaml", info.config_yaml);
    store.SetAttribute("/", "command", info.command);
    store.WriteTensor("/meg/times_ms", at::tensor(ev.times_ms, at::kDouble));
    store.WriteStrings("/meg/participants", ev.participants);
    store.WriteStrings(group + "/object_names", names);
    store.WriteTensor(group + "/model_rdm", model_rdm);
    store.WriteTensor(group + "/alignment/spearman", ev.spearman);
    store.WriteTensor(group + "/alignment/pearson", ev.pearson);
    store.WriteTensor(group + "/target_spearman", ev.target_spearman);
    store.SetAttribute(group, "mean_target_spearman_from0", ev.mean_target_spearman_from0);
    store.Commit();
    ev.out = o.out_dir + "/evaluation.h5";
  }
  comm.Barrier();
  return ev;
}

}  // namespace cliphba::train
