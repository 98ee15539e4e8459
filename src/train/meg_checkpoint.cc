// MEG training, the files of out_dir: best.safetensors + best.json (SaveBest) and the resume
// state state_e{E}.safetensors + last_state.json (SaveState, LoadState), over the resume helpers of
// train/common.h.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/text_file.h"
#include "model/checkpoint.h"
#include "train/common.h"
#include "train/meg_internal.h"

namespace cliphba::train::meg_detail {

namespace fs = std::filesystem;

namespace {

using detail::DoraTensors;
using detail::ReadResumeRecord;
using detail::RestoreTrainState;
using detail::Snapshot;
using detail::WriteResumeState;

}  // namespace

// Writes best.safetensors + best.json: the model after `epoch` epochs (0 = the initial model).
void SaveBest(Stage& s, const TrainMegOptions& o, const RunInfo& info, const Progress& pr,
              const Terms& val, int64_t epoch) {
  // The head's registered tensors under their module names: wfr, beta, visual_scaler, noise_level.
  Named t;
  for (const auto& p : s.head->named_parameters()) t.emplace_back(p.key(), p.value());
  for (const auto& b : s.head->named_buffers()) t.emplace_back(b.key(), b.value());
  if (s.dora_applied) {  // phase 2, or phase 1 under dora_from_start (the perturbed network)
    Named dt = DoraTensors(s.m.clip);
    t.insert(t.end(), dt.begin(), dt.end());
  }
  nlohmann::json meta = s.m.record;  // base_checkpoint, prompts, vocab, labels, ...
  meta.update(nlohmann::json{
      {"format", "cliphba MEG checkpoint"},
      {"config_hash", info.config_hash},
      {"mode", config::Name(o.mode)},
      {"participants",
       [&] {
         std::vector<std::string> l;
         for (int64_t p : s.d.ps) l.push_back(s.d.participant_labels[p]);
         return l;
       }()},
      {"behavior_checkpoint",
       o.behavior_checkpoint.empty()
           ? std::string()
           : fs::absolute(o.behavior_checkpoint).lexically_normal().string()},
      {"seed", o.seed},
      // The objects behind the model: what it may be compared on out of sample (heldout).
      {"objects",
       [&] {
         auto names_of = [&](const std::vector<int64_t>& idx) {
           std::vector<std::string> l;
           for (int64_t i : idx) l.push_back(s.d.names[size_t(i)]);
           return l;
         };
         return nlohmann::json{{"train", names_of(s.d.split.train)},
                               {"validation", names_of(s.d.split.val)},
                               {"heldout", names_of(s.d.split.heldout)}};
       }()},
      {"batch", o.batch},  // `predict meg` encodes in chunks of this size (the same numbers)
      {"noise", o.noise && o.noise_eval},
      {"behavior_vision", o.behavior_vision},
      {"phase", pr.phase},
      {"epoch", epoch},
      {"val_loss", val.total},
      {"val_pearson", val.p},
      {"val_mse", val.mse},
      {"val_generalization", val.g},
      {"p0", pr.p0},
      {"m0", pr.m0},
      {"g0", pr.g0},
      {"axis",
       {{"start_ms", s.d.axis.start_ms}, {"step_ms", s.d.axis.step_ms}, {"size", s.d.axis.size}}},
      {"window_ms", o.window_ms},
      {"wfr_init", config::Name(o.wfr_init)},
      {"dora",
       {{"applied", s.dora_applied},
        {"rank", o.dora_rank},
        {"alpha", o.dora_alpha},
        {"vision_blocks", s.dora_blocks},
        {"train_magnitude", o.dora_train_magnitude}}}});
  std::map<std::string, std::string> md{{"config_hash", info.config_hash}};
  model::SaveSafetensors(o.out_dir + "/best.safetensors", Snapshot(t), md);
  io::WriteTextFileAtomically(o.out_dir + "/best.json", meta.dump(1) + "\n");
}

void SaveState(Stage& s, const AdamW& adam, const Progress& pr, const TrainMegOptions& o,
               const RunInfo& info) {
  nlohmann::json j = {{"phase", pr.phase},
                      {"epoch", pr.epoch},
                      {"phase1_epochs", pr.phase1_epochs},
                      {"steps", pr.steps},
                      {"bad_epochs", pr.bad_epochs},
                      {"best_epoch", pr.best_epoch},
                      {"best_total", pr.best_total},
                      {"best_p", pr.best_p},
                      {"p0", pr.p0},
                      {"m0", pr.m0},
                      {"g0", pr.g0},
                      {"adam_initialised", !adam.exp_avg.empty()},
                      {"train_loss", pr.train_loss},
                      {"val_loss", pr.val_loss},
                      {"val_pearson", pr.val_p},
                      {"epoch_phase", pr.epoch_phase}};
  WriteResumeState(o.out_dir, pr.epoch, Trainable(s), adam, std::move(j), info.config_hash);
}

bool LoadState(Stage& s, AdamW* adam, Progress* pr, const TrainMegOptions& o, const RunInfo& info,
               const parallel::Comm& comm) {
  const std::string json_path = o.out_dir + "/last_state.json";
  if (!fs::exists(json_path)) return false;
  const nlohmann::json j = ReadResumeRecord(json_path, info.config_hash);
  try {
    pr->phase = j.at("phase").get<int64_t>();
    pr->epoch = j.at("epoch").get<int64_t>();
    pr->phase1_epochs = j.at("phase1_epochs").get<int64_t>();
    pr->steps = j.at("steps").get<int64_t>();
    pr->bad_epochs = j.at("bad_epochs").get<int64_t>();
    pr->best_epoch = j.at("best_epoch").get<int64_t>();
    pr->best_total = j.at("best_total").get<double>();
    pr->best_p = j.at("best_p").get<double>();
    pr->p0 = j.at("p0").get<double>();
    pr->m0 = j.at("m0").get<double>();
    pr->g0 = j.at("g0").get<double>();
    pr->train_loss = j.at("train_loss").get<std::vector<double>>();
    pr->val_loss = j.at("val_loss").get<std::vector<double>>();
    pr->val_p = j.at("val_pearson").get<std::vector<double>>();
    pr->epoch_phase = j.at("epoch_phase").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(json_path + ": corrupt resume state: " + e.what());
  }
  if (pr->phase == 2) EnterPhase2(s, o, *pr, comm);
  const std::string file = o.out_dir + "/" + j.at("file").get<std::string>();
  RestoreTrainState(model::LoadSafetensors(file), file, Trainable(s), adam,
                    j.value("adam_initialised", false));
  return true;
}

}  // namespace cliphba::train::meg_detail
