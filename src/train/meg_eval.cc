// MEG prediction and evaluation: the best checkpoint of out_dir as a model (CLIP + DoRA, text
// features, the head over the full axis), its model RDMs of named objects (PredictMegRdms) and
// their alignment with the MEG RDMs (EvaluateMeg). See meg.h for the contract.
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

namespace cliphba::train {

namespace fs = std::filesystem;
using config::TrainMegOptions;

namespace {

using detail::LoadDora;
using detail::ReadJsonFile;
using meg_detail::BuildModel;
using meg_detail::EncodeAll;
using meg_detail::kEvalStream;
using meg_detail::MakeGenerator;
using meg_detail::ModelParts;
using meg_detail::ResolveImages;
using meg_detail::ResolveParticipants;

// The best checkpoint as a model: CLIP (+ DoRA), text features, the head over the FULL axis.
struct Predictor {
  ModelParts m;
  model::MegHead head{nullptr};
  meg::TimeAxis axis;
};

Predictor LoadPredictor(const TrainMegOptions& o) {
  const std::string best = o.out_dir + "/best.safetensors", json_path = o.out_dir + "/best.json";
  if (!fs::exists(best) || !fs::exists(json_path))
    throw IoError(best + ": no trained MEG checkpoint; run `cliphba train meg` first");
  Predictor p;
  p.m = BuildModel(o);
  const nlohmann::json meta = ReadJsonFile(json_path, "not valid JSON");
  model::StateDict sd = model::LoadSafetensors(best);
  try {
    p.axis.start_ms = meta.at("axis").at("start_ms").get<double>();
    p.axis.step_ms = meta.at("axis").at("step_ms").get<double>();
    p.axis.size = meta.at("axis").at("size").get<int64_t>();
    if (meta.at("dora").at("applied").get<bool>()) {
      const auto& d = meta.at("dora");
      const int64_t vb = d.at("vision_blocks").get<int64_t>();
      if (vb > p.m.cfg.vision_layers)
        throw DataError(best + ": DoRA on " + std::to_string(vb) + " vision blocks, but " +
                        o.checkpoint + " has " + std::to_string(p.m.cfg.vision_layers));
      torch::manual_seed(0);
      model::ApplyDora(p.m.clip, vb, 0, d.at("rank").get<int64_t>(), d.at("alpha").get<double>(),
                       d.at("train_magnitude").get<bool>());
      LoadDora(p.m.clip, sd, "visual.", best,
               "does not fit the model built from train.meg.checkpoint:");
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(json_path + ": corrupt checkpoint metadata: " + e.what());
  }
  p.m.clip->eval();
  auto get = [&](const std::string& name) {
    const at::Tensor* t = sd.Find(name);
    if (t == nullptr) throw DataError(best + ": lacks tensor " + name);
    return *t;
  };
  model::MegHeadOptions h;
  h.axis_start_ms = p.axis.start_ms;
  h.axis_step_ms = p.axis.step_ms;
  h.axis_size = p.axis.size;
  h.train_start_ms = p.axis.start_ms;
  h.train_end_ms = p.axis.TimeAt(p.axis.size - 1);
  h.train_step_ms = p.axis.step_ms;
  h.window_ms = meta.value("window_ms", o.window_ms);
  // The head's module names; checkpoints written before the head was a module (2026-12) named
  // the curves curves/{richness,beta,noise}.
  auto curve = [&](const std::string& name, const std::string& old) {
    return sd.Find(name) != nullptr ? get(name) : get(old);
  };
  p.head = model::MegHead(h, p.m.cfg.vision_layers, curve("visual_scaler", "curves/richness"),
                          curve("beta", "curves/beta"), curve("noise_level", "curves/noise"));
  at::Tensor w = get("wfr");
  if (w.sizes() != p.head->wfr.sizes())
    throw DataError(best + ": wfr has another shape than (" + std::to_string(p.axis.size) + ", " +
                    std::to_string(p.m.cfg.vision_layers) + ")");
  p.head->SetWfr(w);
  return p;
}

at::Tensor Predict(Predictor& p, const TrainMegOptions& o, const std::vector<std::string>& names,
                   const parallel::Comm& comm) {
  if (names.size() < 3)
    throw ConfigError("MEG model RDMs need at least 3 objects, got " +
                      std::to_string(names.size()));
  const std::vector<std::string> paths = ResolveImages(names, o.image_dir, "the requested names");
  at::Tensor feats =
      EncodeAll(p.m.clip, paths, p.m.image_options, o.batch, int(o.loader_threads), comm);
  at::NoGradGuard no_grad;
  at::Tensor emb = p.head->Embeddings(feats, p.m.text_norm, p.m.scale_exp,
                                      o.noise && o.noise_eval,
                                      MakeGenerator(uint64_t(o.seed), kEvalStream));
  return UpperTriangles(PearsonRdm(emb.to(at::kDouble))).contiguous();  // (T_full, m)
}

}  // namespace

at::Tensor PredictMegRdms(const TrainMegOptions& o, const std::vector<std::string>& names,
                          const parallel::Comm& comm) {
  Predictor p = LoadPredictor(o);
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
  Predictor p = LoadPredictor(o);
  if (p.axis.size != st.timepoints() || std::abs(p.axis.start_ms - st.time().start_ms) > 1e-9 ||
      std::abs(p.axis.step_ms - st.time().step_ms) > 1e-9)
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
