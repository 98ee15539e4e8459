// MEG training (stages 2/3) on generated images and a generated RDM stack with the tiny fixture
// CLIP: the loss falls, the phase switch, the checkpoint rule, resume equivalence, reproducible
// noise, prediction, and the refusals of bad inputs (nothing written).
#include "train/meg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/csv.h"
#include "model/checkpoint.h"
#include "tests/train/meg_common.h"

namespace cliphba::train {
namespace {

namespace fs = std::filesystem;

const std::string kOut = std::string(CLIPHBA_TEST_OUT_DIR) + "/train_meg";
const RunInfo kInfo{"hash-meg", "", "test"};

testing::MegSynth Synth(const std::string& run) {
  fs::remove_all(kOut + "/" + run);
  fs::remove_all(kOut + "/data_" + run);
  return testing::MakeMegSynth(kOut + "/data_" + run, kOut + "/" + run);
}

double MaxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = a.size() == b.size() ? 0 : 1e9;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST(TrainMegTest, LossFallsAndPhaseTwoFollowsPhaseOne) {
  testing::MegSynth m = Synth("learn");
  config::TrainMegOptions o = m.options;
  o.epochs = 7;
  MegTrainResult r = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  ASSERT_EQ(r.epochs_done, 7);
  EXPECT_EQ(r.timepoints, 9);
  EXPECT_EQ(r.n_heldout, 4);
  EXPECT_EQ(r.phase1_epochs, 3);
  EXPECT_EQ(r.epoch_phase, (std::vector<int64_t>{1, 1, 1, 2, 2, 2, 2}));
  std::printf("P0 %.5f M0 %.5f G0 %.5f; validation loss per epoch:", r.p0, r.m0, r.g0);
  for (double v : r.val_loss) std::printf(" %.5f", v);
  std::printf("\nPearson loss per epoch:");
  for (double v : r.val_pearson) std::printf(" %.5f", v);
  std::printf("\ntrain loss per epoch:");
  for (double v : r.train_loss) std::printf(" %.5f", v);
  std::printf("\n");
  const double initial = o.p_weight + o.m_weight + o.g_weight;  // normalised initial loss
  EXPECT_GT(r.best_epoch, 0);
  EXPECT_LT(r.best_val_loss, initial);
  EXPECT_LT(r.best_val_pearson, r.p0);
  // Phase 1 hardly moves Wfr from its one-hot init (meg_head.h: a ~1e-6 gradient), so the
  // learning shows in phase 2: a checkpoint from a phase-2 epoch.
  EXPECT_EQ(r.epoch_phase[size_t(std::max<int64_t>(r.best_epoch, 1) - 1)], 2);
  EXPECT_EQ(r.n_trainable_phase1, 12 * 4);                     // Wfr: 12 timepoints x 4 blocks
  EXPECT_EQ(r.n_trainable_phase2, 12 * 4 + 4 * (4 * 2 * 64));  // + direction-only DoRA, 4 blocks
  EXPECT_EQ(int64_t(r.trainable.size()), r.n_trainable_phase2);
  ASSERT_TRUE(fs::exists(o.out_dir + "/best.safetensors"));
  model::StateDict best = model::LoadSafetensors(o.out_dir + "/best.safetensors");
  ASSERT_NE(best.Find("wfr"), nullptr);
  // A phase-2 best checkpoint carries the DoRA tensors.
  const bool phase2_best = r.epoch_phase[size_t(r.best_epoch - 1)] == 2;
  EXPECT_EQ(best.Find("visual.transformer.resblocks.3.attn.out_proj.delta_D_A") != nullptr,
            phase2_best);

  // Prediction from the checkpoint: (T_full, m), deterministic, finite.
  std::vector<std::string> names(m.names.end() - 4, m.names.end());
  at::Tensor a = PredictMegRdms(o, names, parallel::Comm::Serial());
  at::Tensor b = PredictMegRdms(o, names, parallel::Comm::Serial());
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{12, 6}));
  EXPECT_EQ(a.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_TRUE(at::isfinite(a).all().item<bool>());
  // Evaluation writes its results file.
  MegEvaluation ev = EvaluateMeg(o, kInfo, parallel::Comm::Serial());
  EXPECT_TRUE(ev.done);
  EXPECT_EQ(ev.spearman.sizes(), (std::vector<int64_t>{3, 12}));
  EXPECT_TRUE(fs::exists(o.out_dir + "/evaluation.h5"));
}

TEST(TrainMegTest, CheckpointOnlyWhenTotalAndPearsonBothImprove) {
  testing::MegSynth m = Synth("rule");
  config::TrainMegOptions o = m.options;
  o.epochs = 5;
  o.lr_wfr_1 = 0.2;  // large steps: some epochs get worse
  MegTrainResult r = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  ASSERT_EQ(r.val_loss.size(), 5u);
  double best_total = o.p_weight + o.m_weight + o.g_weight, best_p = r.p0;
  int64_t best_epoch = 0;
  for (size_t e = 0; e < r.val_loss.size(); ++e)
    if (r.val_loss[e] < best_total && r.val_pearson[e] < best_p) {
      best_total = r.val_loss[e];
      best_p = r.val_pearson[e];
      best_epoch = int64_t(e) + 1;
    }
  EXPECT_EQ(r.best_epoch, best_epoch);
  EXPECT_DOUBLE_EQ(r.best_val_loss, best_total);
  std::ifstream in(o.out_dir + "/best.json");  // epoch 0: the initial model
  std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find("\"epoch\": " + std::to_string(best_epoch)), std::string::npos) << json;
}

TEST(TrainMegTest, PatienceEndsPhaseOne) {
  testing::MegSynth m = Synth("patience");
  config::TrainMegOptions o = m.options;
  o.phase1_epochs = 0;
  o.patience_phase1 = 1;
  o.lr_wfr_1 = 0;  // nothing improves: phase 1 ends after one epoch
  o.epochs = 3;
  o.patience_phase2 = 1;
  o.lr_wfr_2 = 0;
  o.lr_dora = 0;
  MegTrainResult r = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_EQ(r.phase1_epochs, 1);
  EXPECT_EQ(r.epochs_done, 2);  // one phase-2 epoch, then its patience of 1 runs out
  EXPECT_TRUE(r.early_stopped);
  EXPECT_EQ(r.best_epoch, 0);
  // The checkpoint is the initial model (epoch 0), so predictions still have a model.
  ASSERT_TRUE(fs::exists(o.out_dir + "/best.safetensors"));
  std::ifstream in(o.out_dir + "/best.json");
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find("\"epoch\": 0"), std::string::npos) << json;
}

TEST(TrainMegTest, IndividualModeUsesOneParticipant) {
  testing::MegSynth m = Synth("individual");
  config::TrainMegOptions o = m.options;
  o.epochs = 0;  // the initial validation losses are enough to see the target
  o.out_dir = kOut + "/individual/group";
  MegTrainResult group = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  o.mode = config::MegMode::kIndividual;
  o.participants = {"2"};
  o.out_dir = kOut + "/individual/p2";
  MegTrainResult p2 = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  o.participants = {"1"};
  o.out_dir = kOut + "/individual/p1";
  MegTrainResult p1 = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_NE(p2.m0, group.m0);
  EXPECT_NE(p2.m0, p1.m0);
  // A group of one participant is that participant.
  o.mode = config::MegMode::kGroup;
  o.participants = {"2"};
  o.out_dir = kOut + "/individual/g2";
  MegTrainResult g2 = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_DOUBLE_EQ(g2.m0, p2.m0);
  EXPECT_DOUBLE_EQ(g2.p0, p2.p0);
}

TEST(TrainMegTest, ResumeEqualsUninterruptedRun) {
  testing::MegSynth ms = Synth("straight");
  MegTrainResult a = TrainMeg(ms.options, kInfo, false, parallel::Comm::Serial());
  testing::MegSynth mp = Synth("parts");
  RunControl stop2;
  stop2.stop_after_epochs = 2;
  MegTrainResult b1 = TrainMeg(mp.options, kInfo, false, parallel::Comm::Serial(), stop2);
  EXPECT_TRUE(b1.stopped);
  EXPECT_EQ(b1.epochs_done, 2);
  MegTrainResult b2 = TrainMeg(mp.options, kInfo, true, parallel::Comm::Serial(), stop2);  // -> 4
  EXPECT_EQ(b2.epochs_done, 4);
  MegTrainResult b = TrainMeg(mp.options, kInfo, true, parallel::Comm::Serial());
  ASSERT_EQ(a.epochs_done, 6);
  ASSERT_EQ(b.epochs_done, 6);
  const double dl = std::max({MaxDiff(a.val_loss, b.val_loss), MaxDiff(a.train_loss, b.train_loss),
                              MaxDiff(a.val_pearson, b.val_pearson)});
  double dp = a.trainable.size() == b.trainable.size() ? 0 : 1e9;
  for (size_t i = 0; i < a.trainable.size() && i < b.trainable.size(); ++i)
    dp = std::max(dp, double(std::fabs(a.trainable[i] - b.trainable[i])));
  std::printf("resume vs straight: max|diff| losses %.3g, parameters %.3g\n", dl, dp);
  EXPECT_LT(dl, 1e-6);
  EXPECT_LT(dp, 1e-6);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  // Another configuration may not resume this state.
  RunInfo other = kInfo;
  other.config_hash = "other";
  EXPECT_THROW(TrainMeg(mp.options, other, true, parallel::Comm::Serial()), ConfigError);
}

TEST(TrainMegTest, NoiseIsSeededAndSwitchable) {
  testing::MegSynth m = Synth("noise");
  config::TrainMegOptions o = m.options;
  o.epochs = 2;
  o.out_dir = kOut + "/noise/a";
  MegTrainResult a = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  o.out_dir = kOut + "/noise/b";
  MegTrainResult b = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_EQ(a.train_loss, b.train_loss);  // bitwise: same seed, same draws
  EXPECT_EQ(a.trainable, b.trainable);
  o.out_dir = kOut + "/noise/c";
  o.seed = 2;  // another split and other draws
  MegTrainResult c = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_NE(a.train_loss, c.train_loss);
  o.seed = 1;
  o.noise = false;
  o.out_dir = kOut + "/noise/d";
  MegTrainResult d = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_GT(MaxDiff(a.train_loss, d.train_loss), 1e-7);
  // Validation never has noise: the initial losses agree.
  EXPECT_DOUBLE_EQ(a.p0, d.p0);
}

// The reference's behaviours behind train.meg.{dora_from_start, noise_eval, fixed_batches}.
TEST(TrainMegTest, ReferenceDoraFromStartNoiseEvalAndFixedBatches) {
  testing::MegSynth m = Synth("reference");
  config::TrainMegOptions o = m.options;
  o.epochs = 5;
  o.phase1_epochs = 2;
  o.out_dir = kOut + "/reference/plain";
  MegTrainResult plain = TrainMeg(o, kInfo, false, parallel::Comm::Serial());

  // DoRA before phase 1: P0 is measured on the perturbed network, phase 1's checkpoints carry the
  // adapters, and the run resumes exactly (the adapters are a pure function of the seed).
  o.dora_from_start = true;
  o.out_dir = kOut + "/reference/dora";
  RunControl stop1;
  stop1.stop_after_epochs = 1;
  MegTrainResult d1 = TrainMeg(o, kInfo, false, parallel::Comm::Serial(), stop1);
  ASSERT_EQ(d1.epochs_done, 1);
  EXPECT_NE(d1.p0, plain.p0) << "phase 1 must see the DoRA-perturbed network";
  model::StateDict phase1 = model::LoadSafetensors(o.out_dir + "/best.safetensors");
  bool has_dora = false;
  for (const auto& [name, t] : phase1.entries) has_dora |= name.find("delta_D_A") != std::string::npos;
  EXPECT_TRUE(has_dora) << "a phase-1 checkpoint of the perturbed network carries its adapters";
  MegTrainResult d = TrainMeg(o, kInfo, true, parallel::Comm::Serial());
  o.out_dir = kOut + "/reference/dora_straight";
  MegTrainResult ds = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  ASSERT_EQ(d.epochs_done, 5);
  EXPECT_LT(MaxDiff(d.val_loss, ds.val_loss), 1e-6) << "resume vs straight";
  EXPECT_EQ(d.epoch_phase, ds.epoch_phase);

  // Curves from every participant and object (the reference): other beta / visual_scaler curves
  // in the checkpoint than from the training objects alone.
  o.dora_from_start = false;
  o.curves_from_all = true;
  o.epochs = 1;
  o.out_dir = kOut + "/reference/curves_all";
  TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  const model::StateDict all_curves = model::LoadSafetensors(o.out_dir + "/best.safetensors");
  const model::StateDict own_curves = model::LoadSafetensors(kOut + "/reference/plain/best.safetensors");
  ASSERT_NE(all_curves.Find("beta"), nullptr);
  EXPECT_GT((*all_curves.Find("beta") - *own_curves.Find("beta")).abs().max().item<double>(), 1e-6);
  o.curves_from_all = false;

  // Noise in validation: seeded (two runs agree bitwise) and it changes P0.
  o.dora_from_start = false;
  o.noise_eval = true;
  o.epochs = 1;
  o.out_dir = kOut + "/reference/noise_a";
  MegTrainResult na = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  o.out_dir = kOut + "/reference/noise_b";
  MegTrainResult nb = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_EQ(na.p0, nb.p0);
  EXPECT_NE(na.p0, plain.p0);

  // Fixed batches: epoch 0's compositions in a new sequence each epoch, so the training losses
  // differ from fresh permutations.
  o.noise_eval = false;
  o.fixed_batches = true;
  o.epochs = 5;
  o.out_dir = kOut + "/reference/fixed";
  MegTrainResult f = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  ASSERT_EQ(f.epochs_done, 5);
  EXPECT_GT(MaxDiff(f.train_loss, plain.train_loss), 1e-7);
}

// Each bad input: the typed error, and out_dir is never created.
template <typename E>
void ExpectRefused(const config::TrainMegOptions& o, const std::string& want) {
  fs::remove_all(o.out_dir);
  try {
    TrainMeg(o, kInfo, false, parallel::Comm::Serial());
    ADD_FAILURE() << "no error; expected one mentioning '" << want << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_dir)) << "written despite the error: " << o.out_dir;
}

TEST(TrainMegTest, RefusesBadInputsWithoutWriting) {
  testing::MegSynth m = Synth("bad");
  const config::TrainMegOptions good = m.options;
  config::TrainMegOptions o = good;
  // An object without an image.
  const std::string dir = kOut + "/data_bad/images_missing";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(good.image_dir))
    if (e.path().filename().string() != m.names[5] + ".png")
      fs::copy_file(e.path(), dir / e.path().filename(), fs::copy_options::overwrite_existing);
  o.image_dir = dir;
  ExpectRefused<DataError>(o, m.names[5]);
  // Training window not covered by the axis (-20 .. 90 ms).
  o = good;
  o.train_end_ms = 100;
  ExpectRefused<DataError>(o, "outside the MEG time axis");
  o = good;
  o.train_start_ms = -30;
  ExpectRefused<DataError>(o, "outside the MEG time axis");
  // Window wider than the axis.
  o = good;
  o.window_ms = 60;  // 13 rows > 12
  ExpectRefused<DataError>(o, "window_ms");
  // Participants that do not exist; individual mode with two.
  o = good;
  o.participants = {"0", "7"};
  ExpectRefused<DataError>(o, "'7' is not a participant");
  o = good;
  o.mode = config::MegMode::kIndividual;
  o.participants = {"0", "1"};
  ExpectRefused<ConfigError>(o, "exactly one participant");
  // NaN in the RDMs.
  {
    at::Tensor st = io::ReadNpy(good.rdm.path);
    st[1][4][2][3] = std::nan("");
    st[1][4][3][2] = std::nan("");
    o = good;
    o.rdm.path = kOut + "/data_bad/meg_rdm_nan.npy";
    io::WriteNpy(o.rdm.path, st);
    fs::remove_all(o.out_dir);
    EXPECT_THROW(TrainMeg(o, kInfo, false, parallel::Comm::Serial()), DataError);
    EXPECT_FALSE(fs::exists(o.out_dir));
  }
  // A stage-1 checkpoint of another architecture: DoRA tensors of width 128, not 64.
  {
    const std::string s1 = kOut + "/data_bad/stage1";
    fs::create_directories(s1);
    model::StateDict sd;
    const std::string p = "transformer.resblocks.1.attn.out_proj.";
    sd.entries = {{p + "m", at::ones({128})},
                  {p + "D", at::ones({128, 128})},
                  {p + "delta_D_A", at::ones({4, 128})},
                  {p + "delta_D_B", at::ones({128, 4})},
                  {p + "bias", at::zeros({128})}};
    model::SaveSafetensors(s1 + "/best.safetensors", sd);
    std::ofstream(s1 + "/best.json") << R"({"dora": {"rank": 4, "alpha": 16, "vision_blocks": 0,
      "text_blocks": 1, "train_magnitude": true}, "base_checkpoint": "ViT-B-32.pt"})";
    o = good;
    o.behavior_checkpoint = s1 + "/best.safetensors";
    ExpectRefused<DataError>(o, "another architecture");
  }
}

TEST(TrainMegTest, Stage1TextTowerIsUsed) {
  // A stage-1 checkpoint that fits (DoRA on the last text block) changes the text features and so
  // the initial losses; one that has identical A = 0 (delta 0) and m = column norms does not.
  testing::MegSynth m = Synth("stage1");
  config::TrainMegOptions o = m.options;
  o.epochs = 0;
  MegTrainResult base = TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  // A stage-1 folder (best.safetensors + best.json with its DoRA placement) holding `sd`; trains
  // a MEG model on it into kOut/stage1/<name> and returns the result.
  auto train_on_stage1 = [&](const std::string& name, const model::StateDict& sd) {
    const std::string dir = kOut + "/data_stage1/" + name;
    fs::create_directories(dir);
    model::SaveSafetensors(dir + "/best.safetensors", sd);
    std::ofstream(dir + "/best.json") << R"({"dora": {"rank": 4, "alpha": 16, "vision_blocks": 0,
    "text_blocks": 1, "train_magnitude": true}})";
    o.behavior_checkpoint = dir + "/best.safetensors";
    o.out_dir = kOut + "/stage1/" + name;
    return TrainMeg(o, kInfo, false, parallel::Comm::Serial());
  };
  // Build the adapter tensors from the base checkpoint's last text block out_proj.
  model::StateDict ck = model::LoadSafetensors(o.checkpoint);
  const std::string p = "transformer.resblocks.1.attn.out_proj.";
  at::Tensor w = *ck.Find(p + "weight"), bias = *ck.Find(p + "bias");
  at::Tensor mag = w.t().norm(2, {0});
  model::StateDict sd;
  sd.entries = {{p + "m", mag * 1.5},  // a visible change: larger output projection
                {p + "D", (w.t() / mag).contiguous()},
                {p + "delta_D_A", at::zeros({4, 64})},
                {p + "delta_D_B", at::zeros({64, 4})},
                {p + "bias", bias.clone()}};
  MegTrainResult tuned = train_on_stage1("stage1", sd);
  EXPECT_GT(std::fabs(tuned.p0 - base.p0), 1e-6);
  // The identity adapter (m = the column norms, delta 0) reproduces the base text features: the
  // same initial losses (so the change above comes from the adapter, not from loading one).
  sd.entries[0].second = mag.clone();
  MegTrainResult same = train_on_stage1("identity", sd);
  EXPECT_NEAR(same.p0, base.p0, 1e-6);
  EXPECT_NEAR(same.m0, base.m0, 1e-6);
}

}  // namespace
}  // namespace cliphba::train
