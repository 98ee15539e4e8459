// Stage 1 (behaviour fine-tuning) on generated images with the tiny fixture CLIP: learning,
// resume equivalence, trainable-parameter count and refusals of bad inputs.
#include "train/behavior.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "core/error.h"
#include "io/csv.h"
#include "model/checkpoint.h"
#include "tests/train/common.h"

namespace cliphba::train {
namespace {

namespace fs = std::filesystem;

const std::string kOut = std::string(CLIPHBA_TEST_OUT_DIR) + "/train_behavior";

config::TrainBehaviorOptions Options(const std::string& run) {
  fs::remove_all(kOut + "/" + run);  // each test its own data folder: ctest runs them in parallel
  return testing::SynthOptions(kOut + "/data_" + run, kOut + "/" + run);
}

const RunInfo kInfo{"hash-a", "", "test"};

TEST(TrainBehaviorTest, ValidationLossFallsAndHeldOutRdmImproves) {
  config::TrainBehaviorOptions o = Options("learn");
  o.epochs = 30;
  BehaviorTrainResult r = TrainBehavior(o, kInfo, false, parallel::Comm::Serial());
  ASSERT_EQ(r.epochs_done, 30);
  ASSERT_TRUE(r.initial.done && r.final_eval.done);
  std::printf(
      "validation loss: initial %.5f, best %.5f (epoch %lld); held-out Spearman: "
      "untrained %.4f, trained %.4f; triplet accuracy %.4f -> %.4f\n",
      r.initial_val_loss, r.best_val_loss, static_cast<long long>(r.best_epoch), r.initial.spearman,
      r.final_eval.spearman, r.initial.triplet_accuracy, r.final_eval.triplet_accuracy);
  EXPECT_LT(r.best_val_loss, 0.5 * r.initial_val_loss);
  EXPECT_LT(r.val_loss.back(), r.val_loss.front());
  EXPECT_GT(r.final_eval.spearman, r.initial.spearman + 0.1);
  EXPECT_LT(r.final_eval.target_mse, r.initial.target_mse);
  EXPECT_TRUE(fs::exists(o.out_dir + "/best.safetensors"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/evaluation.h5"));
  // evaluate behavior reproduces the final evaluation from the saved checkpoint.
  BehaviorEvaluation e = EvaluateBehavior(o, kInfo, parallel::Comm::Serial());
  EXPECT_NEAR(e.spearman, r.final_eval.spearman, 1e-9);
  EXPECT_NEAR(e.target_mse, r.final_eval.target_mse, 1e-9);
}

TEST(TrainBehaviorTest, ResumeEqualsStraightRun) {
  config::TrainBehaviorOptions straight = Options("straight");
  BehaviorTrainResult a = TrainBehavior(straight, kInfo, false, parallel::Comm::Serial());
  config::TrainBehaviorOptions parts = Options("parts");
  RunControl stop_after_2;
  stop_after_2.stop_after_epochs = 2;
  BehaviorTrainResult b1 = TrainBehavior(parts, kInfo, false, parallel::Comm::Serial(), stop_after_2);
  EXPECT_TRUE(b1.stopped);
  EXPECT_EQ(b1.epochs_done, 2);
  BehaviorTrainResult b = TrainBehavior(parts, kInfo, /*resume=*/true, parallel::Comm::Serial());
  EXPECT_FALSE(b.stopped);
  ASSERT_EQ(a.epochs_done, 4);
  ASSERT_EQ(b.epochs_done, 4);
  ASSERT_EQ(a.val_loss.size(), b.val_loss.size());
  double max_loss = 0, max_param = 0;
  for (size_t i = 0; i < a.val_loss.size(); ++i) {
    max_loss = std::max(max_loss, std::fabs(a.val_loss[i] - b.val_loss[i]));
    max_loss = std::max(max_loss, std::fabs(a.train_loss[i] - b.train_loss[i]));
  }
  ASSERT_EQ(a.trainable.size(), b.trainable.size());
  for (size_t i = 0; i < a.trainable.size(); ++i)
    max_param = std::max(max_param, double(std::fabs(a.trainable[i] - b.trainable[i])));
  std::printf("resume vs straight: max|diff| loss %.3g, parameters %.3g\n", max_loss, max_param);
  EXPECT_LT(max_loss, 1e-6);
  EXPECT_LT(max_param, 1e-6);
  EXPECT_NEAR(a.final_eval.spearman, b.final_eval.spearman, 1e-6);
  // Another configuration refuses the state.
  EXPECT_THROW(TrainBehavior(parts, RunInfo{"hash-b", "", "test"}, true, parallel::Comm::Serial()),
               ConfigError);
}

TEST(TrainBehaviorTest, TrainableParameterCount) {
  config::TrainBehaviorOptions o = Options("count");
  o.epochs = 0;
  BehaviorTrainResult r = TrainBehavior(o, kInfo, false, parallel::Comm::Serial());
  // Tiny model: vision and text width 64; rank 8 on 2 vision + 1 text block, m trainable.
  EXPECT_EQ(r.n_trainable, DoraTrainableCount(64, 64, 2, 1, 8, true));
  EXPECT_EQ(r.n_trainable, 3 * (8 * 2 * 64 + 64));
  o.dora_train_magnitude = false;
  o.dora_text_blocks = 0;
  r = TrainBehavior(o, kInfo, false, parallel::Comm::Serial());
  EXPECT_EQ(r.n_trainable, 2 * 8 * 2 * 64);
}

// Expects `fn` to throw E with every fragment in its message.
template <typename E, typename F>
void ExpectError(F fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    for (const auto& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "'" << f << "' missing from: " << e.what();
  }
}

TEST(TrainBehaviorTest, BadInputsAreClearErrors) {
  config::TrainBehaviorOptions o = Options("bad");
  fs::create_directories(o.out_dir);
  io::EmbeddingTable t = io::ReadEmbeddingCsv(o.targets_csv);
  auto run = [&](const config::TrainBehaviorOptions& opt) {
    TrainBehavior(opt, kInfo, false, parallel::Comm::Serial());
  };
  {  // missing image
    io::EmbeddingTable m = t;
    m.names[3] = "ghost_object";
    config::TrainBehaviorOptions b = o;
    b.targets_csv = o.out_dir + "/missing.csv";
    b.heldout_names = "";
    io::WriteEmbeddingCsv(b.targets_csv, m);
    ExpectError<DataError>([&] { run(b); }, {"no image file for 1 of 40", "ghost_object"});
  }
  {  // NaN target
    std::ifstream in(o.targets_csv);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    size_t line = text.find('\n', text.find('\n') + 1);  // end of the first data row
    size_t comma = text.rfind(',', line);
    text.replace(comma + 1, line - comma - 1, "nan");
    config::TrainBehaviorOptions b = o;
    b.targets_csv = o.out_dir + "/nan.csv";
    std::ofstream(b.targets_csv) << text;
    ExpectError<DataError>([&] { run(b); }, {"nan.csv"});
  }
  {  // wrong target width
    io::EmbeddingTable w = t;
    w.values = t.values.narrow(1, 0, 65).contiguous();
    config::TrainBehaviorOptions b = o;
    b.targets_csv = o.out_dir + "/width.csv";
    io::WriteEmbeddingCsv(b.targets_csv, w);
    ExpectError<DataError>([&] { run(b); }, {"width.csv", "65 target columns", "66 prompts"});
  }
  {  // a checkpoint of another architecture (no visual.proj: e.g. a ResNet CLIP)
    model::StateDict sd = model::LoadCheckpoint(o.checkpoint);
    model::StateDict other;
    for (auto& e : sd.entries)
      if (e.first != "visual.proj") other.entries.push_back(e);
    config::TrainBehaviorOptions b = o;
    b.checkpoint = o.out_dir + "/resnet_like.safetensors";
    model::SaveSafetensors(b.checkpoint, other);
    ExpectError<DataError>([&] { run(b); }, {"resnet_like.safetensors", "visual.proj"});
  }
  {  // the full vocabulary with the reduced token table
    config::TrainBehaviorOptions b = o;
    b.vocab_remap = config::VocabRemap::kNone;
    ExpectError<ConfigError>([&] { run(b); }, {"4096 token rows", "vocab_remap"});
  }
  {  // a required key
    config::TrainBehaviorOptions b = o;
    b.prompts = "";
    ExpectError<ConfigError>([&] { run(b); }, {"train.behavior.prompts is required"});
  }
  {  // an unknown held-out name
    config::TrainBehaviorOptions b = o;
    b.heldout_names = o.out_dir + "/heldout_bad.txt";
    std::ofstream(b.heldout_names) << "img_0001\nnot_there\n";
    ExpectError<DataError>([&] { run(b); }, {"heldout_bad.txt", "not_there"});
  }
  // evaluate without a trained checkpoint
  ExpectError<IoError>([&] { EvaluateBehavior(o, kInfo, parallel::Comm::Serial()); },
                       {"best.safetensors"});
}

// The shipped stage-1 configurations parse (every key known, values in range).
TEST(TrainBehaviorTest, ShippedConfigsLoad) {
  const std::string dir = std::string(CLIPHBA_SOURCE_DIR) + "/configs/";
  config::Config things = config::LoadConfig(dir + "behavior_things.yaml", {});
  EXPECT_EQ(things.train_behavior.dora_rank, 32);
  EXPECT_EQ(things.train_behavior.vocab_remap, config::VocabRemap::kNone);
  config::Config synth = config::LoadConfig(dir + "behavior_synth.yaml", {});
  EXPECT_EQ(synth.train_behavior.vocab_remap, config::VocabRemap::kTiny);
  EXPECT_EQ(synth.synth_images.n_images, 40);
}

TEST(SynthImagesTest, DeterministicBySeed) {
  config::SynthImagesOptions so;
  so.out_dir = kOut + "/synth_a";
  so.n_images = 6;
  so.n_heldout = 2;
  so.n_dims = 5;
  data::SynthImagesSummary a = data::WriteSynthImages(so);
  so.out_dir = kOut + "/synth_b";
  data::SynthImagesSummary b = data::WriteSynthImages(so);
  io::EmbeddingTable ta = io::ReadEmbeddingCsv(a.targets_csv);
  io::EmbeddingTable tb = io::ReadEmbeddingCsv(b.targets_csv);
  EXPECT_TRUE(ta.values.equal(tb.values));
  EXPECT_GE(ta.values.min().item<double>(), 0.0);
  std::ifstream fa(a.image_dir + "/img_0003.png", std::ios::binary);
  std::ifstream fb(b.image_dir + "/img_0003.png", std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(fa)), {});
  std::string sb((std::istreambuf_iterator<char>(fb)), {});
  EXPECT_FALSE(sa.empty());
  EXPECT_EQ(sa, sb);
}

}  // namespace
}  // namespace cliphba::train
