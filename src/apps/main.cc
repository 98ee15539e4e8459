// cliphba: the command-line entry point. Parses the command line, runs one subcommand, and catches
// errors once: a cliphba::Error prints its message and exits with its documented code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <memory>

#include "apps/commands.h"
#include "apps/run_commands.h"
#include "apps/train_commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "parallel/comm.h"

using cliphba::apps::CommonArgs;

namespace {

// Adds --config/--set/--json to a subcommand.
void AddCommon(CLI::App* cmd, CommonArgs* args) {
  cmd->add_option("--config", args->config_file,
                  "YAML configuration file (see configs/reference.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args->overrides,
                  "override a configuration key: --set key.path=value (repeatable)")
      ->allow_extra_args(false)
      ->take_all();
  cmd->add_flag("--json", args->json, "print one machine-readable JSON object on stdout");
}

// An explicit flag bound to a configuration key: recorded as an override applied after --set.
void AddKeyOption(CLI::App* cmd, const std::string& flag, const std::string& key,
                  const std::string& help, std::vector<std::string>* flag_overrides) {
  cmd->add_option_function<std::string>(
      flag, [=](const std::string& v) { flag_overrides->push_back(key + "=" + v); },
      help + " (config key " + key + ")");
}

}  // namespace

// Under MPI with more than one rank, an error on one rank aborts the job with the error's code.
void AbortOtherRanks(int code) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int main(int argc, char** argv) {
  // Log lines go to stderr (the default spdlog logger writes to stdout, which is reserved for
  // results and --json).
  cliphba::SetLogRank(0, 1);
  CLI::App app{"cliphba: brain-aligned CLIP models of individual people, at cohort scale"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return std::string("cliphba ") + cliphba::Version(); });

  CommonArgs args;
  std::vector<std::string> flag_overrides;
  int (*run)(const CommonArgs&) = nullptr;
  bool run_encode = false, run_tokenize = false;

  CLI::App* version = app.add_subcommand(
      "version", "versions of cliphba, LibTorch, MPI, HDF5 (parallel?) and the loaded BLAS");
  version->add_flag("--json", args.json, "print one JSON object");
  version->callback([&] { run = cliphba::apps::RunVersion; });

  CLI::App* config = app.add_subcommand("config", "print the resolved configuration as YAML");
  AddCommon(config, &args);
  config->callback([&] { run = cliphba::apps::RunConfigShow; });
  std::string config_get;  // `cliphba config --get KEY`: one resolved value, for shell scripts
  config->add_option("--get", config_get,
                     "print only the resolved value of KEY (a.b.c): a scalar as text, a list one "
                     "item per line, a section as YAML");

  CLI::App* synth = app.add_subcommand("synth", "generate synthetic data with known ground truth");
  synth->require_subcommand(1);
  CLI::App* synth_behavior = synth->add_subcommand(
      "behavior", "a behaviour set: sparse embedding + triplet-derived human RDM (SPoSE rule)");
  AddCommon(synth_behavior, &args);
  AddKeyOption(synth_behavior, "--out-dir", "synth.behavior.out_dir", "output folder",
               &flag_overrides);
  AddKeyOption(synth_behavior, "--n-objects", "synth.behavior.n_objects", "number of objects",
               &flag_overrides);
  AddKeyOption(synth_behavior, "--seed", "synth.behavior.seed", "random seed", &flag_overrides);
  synth_behavior->callback([&] { run = cliphba::apps::RunSynthBehavior; });

  CLI::App* rsa = app.add_subcommand("rsa", "representational similarity analyses");
  rsa->require_subcommand(1);
  CLI::App* rsa_behavior = rsa->add_subcommand(
      "behavior", "an embedding vs a human RDM: 4 RDM types x 4 comparisons, triplet accuracy");
  AddCommon(rsa_behavior, &args);
  AddKeyOption(rsa_behavior, "--embedding", "rsa.behavior.embedding",
               "embedding CSV (,image_name,0..d-1)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--rdm", "rsa.behavior.rdm", "reference RDM (n x n NPY)",
               &flag_overrides);
  AddKeyOption(rsa_behavior, "--rdm-names", "rsa.behavior.rdm_names",
               "names of the RDM rows in RDM order (.txt or CSV)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--triplets", "rsa.behavior.triplets",
               "behavioural choices (t x 3 int64 NPY: a, b, odd)", &flag_overrides);
  AddKeyOption(rsa_behavior, "--out", "rsa.behavior.out", "HDF5 results file", &flag_overrides);
  rsa_behavior->callback([&] { run = cliphba::apps::RunRsaBehavior; });

  cliphba::apps::EncodeArgs encode_args;
  CLI::App* encode = app.add_subcommand(
      "encode",
      "CLIP features of images (and prompts): image/text features, per-block CLS, logits");
  AddCommon(encode, &args);
  encode->add_option("--checkpoint", encode_args.checkpoint,
                     "CLIP checkpoint: safetensors, torch.save zip or TorchScript archive");
  encode->add_option("--images", encode_args.images_dir, "folder of .jpg/.png images");
  encode->add_option("--images-npy", encode_args.images_npy,
                     "normalised float32 (N, 3, H, W) images as NPY");
  encode->add_option("--prompts", encode_args.prompts,
                     "JSON list of prompts (e.g. the 66 dimensions)");
  encode->add_option("--vocab", encode_args.vocab,
                     "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
  encode->add_option("--vocab-remap", encode_args.vocab_remap,
                     "'tiny': the fixtures' reduced-vocabulary id remap");
  encode->add_option("--out", encode_args.out_dir, "output folder for the .npy files");
  encode->add_option("--normalization", encode_args.normalization,
                     "image mean/std for --images: things (default) or openai");
  encode->callback([&] {
    run = nullptr;
    run_encode = true;
  });

  std::string tokenize_vocab;
  CLI::App* tokenize = app.add_subcommand(
      "tokenize", "CLIP BPE token ids (77 per line) of the texts on stdin, one per line");
  AddCommon(tokenize, &args);
  tokenize->add_option("--vocab", tokenize_vocab, "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
  tokenize->callback([&] { run_tokenize = true; });

  // `cliphba permute` (and later the pipeline) run under MPI.
  cliphba::apps::PermuteArgs permute_args;
  bool needs_mpi = false;
  auto add_permute_flags = [&](CLI::App* cmd) {
    AddCommon(cmd, &args);
    cmd->add_flag("--resume", permute_args.resume, "continue from OUT.ckpt if it exists");
    cmd->add_flag("--force", permute_args.force,
                  "resume/overwrite even if OUT or OUT.ckpt came from other settings");
    AddKeyOption(cmd, "--out", "permute.out", "HDF5 results file", &flag_overrides);
  };
  CLI::App* permute = app.add_subcommand(
      "permute",
      "permutation tests: Mantel over time, sign-flip cluster and t-max (MPI, resumable)");
  add_permute_flags(permute);
  permute->callback([&] { needs_mpi = true; });
  CLI::App* mantel = permute->add_subcommand("mantel", "one Mantel test (model vs neural RDMs)");
  add_permute_flags(mantel);
  AddKeyOption(mantel, "--model-rdm", "permute.mantel.model_rdm", "model RDM NPY", &flag_overrides);
  AddKeyOption(mantel, "--neural-rdm", "permute.mantel.neural_rdm",
               "neural RDM NPY: one (n x n) or a (T x n x n) stack", &flag_overrides);
  AddKeyOption(mantel, "--statistic", "permute.mantel.statistic", "spearman | pearson",
               &flag_overrides);
  AddKeyOption(mantel, "--n", "permute.mantel.n", "permutations", &flag_overrides);
  AddKeyOption(mantel, "--seed", "permute.mantel.seed", "random seed", &flag_overrides);
  AddKeyOption(mantel, "--tail", "permute.mantel.tail", "1 | 0", &flag_overrides);
  AddKeyOption(mantel, "--permutations", "permute.mantel.permutations",
               "explicit (N x n) int64 permutations NPY", &flag_overrides);
  mantel->callback([&] { permute_args.only = "mantel"; });
  CLI::App* cluster = permute->add_subcommand("cluster", "one sign-flip cluster test (MNE-equal)");
  add_permute_flags(cluster);
  AddKeyOption(cluster, "--data", "permute.cluster.data", "(participants x T) NPY",
               &flag_overrides);
  AddKeyOption(cluster, "--threshold", "permute.cluster.threshold", "cluster-forming t",
               &flag_overrides);
  AddKeyOption(cluster, "--tail", "permute.cluster.tail", "-1 | 0 | 1", &flag_overrides);
  AddKeyOption(cluster, "--n", "permute.cluster.n", "sign patterns incl. the observed",
               &flag_overrides);
  AddKeyOption(cluster, "--seed", "permute.cluster.seed", "random seed", &flag_overrides);
  AddKeyOption(cluster, "--flips", "permute.cluster.flips", "explicit int8 (flips x N) NPY",
               &flag_overrides);
  cluster->callback([&] { permute_args.only = "cluster"; });

  // Stage 1: `cliphba train behavior`, `cliphba evaluate behavior` (collective under an MPI
  // launcher, like permute) and `cliphba synth images` (their demo data).
  bool train_resume = false;
  int (*run_mpi)(const CommonArgs&, bool, const cliphba::parallel::Comm&) = nullptr;
  CLI::App* train = app.add_subcommand("train", "fine-tune CLIP-HBA (stage 1: behaviour)");
  train->require_subcommand(1);
  CLI::App* train_behavior = train->add_subcommand(
      "behavior", "DoRA fine-tuning on the behavioural dimensions (MPI data parallel, resumable)");
  AddCommon(train_behavior, &args);
  train_behavior->add_flag("--resume", train_resume, "continue from OUT_DIR/last_state.json");
  AddKeyOption(train_behavior, "--out-dir", "train.behavior.out_dir",
               "checkpoints, resume state and results", &flag_overrides);
  train_behavior->callback([&] {
    run_mpi = [](const CommonArgs& a, bool resume, const cliphba::parallel::Comm& c) {
      return cliphba::apps::RunTrainBehavior(a, resume, c);
    };
  });
  CLI::App* evaluate = app.add_subcommand("evaluate", "evaluate a fine-tuned CLIP-HBA model");
  evaluate->require_subcommand(1);
  CLI::App* evaluate_behavior = evaluate->add_subcommand(
      "behavior", "held-out RDM Spearman and triplet accuracy of OUT_DIR/best.safetensors");
  AddCommon(evaluate_behavior, &args);
  AddKeyOption(evaluate_behavior, "--out-dir", "train.behavior.out_dir",
               "folder of best.safetensors (evaluation.h5 is written there)", &flag_overrides);
  evaluate_behavior->callback([&] {
    run_mpi = [](const CommonArgs& a, bool, const cliphba::parallel::Comm& c) {
      return cliphba::apps::RunEvaluateBehavior(a, c);
    };
  });
  // Stages 2/3: `cliphba train meg`, `cliphba evaluate meg` (collective like stage 1).
  CLI::App* train_meg = train->add_subcommand(
      "meg", "MEG fine-tuning: Wfr on cached features, then + DoRA (MPI data parallel, resumable)");
  AddCommon(train_meg, &args);
  train_meg->add_flag("--resume", train_resume, "continue from OUT_DIR/last_state.json");
  AddKeyOption(train_meg, "--out-dir", "train.meg.out_dir", "checkpoints, resume state, results",
               &flag_overrides);
  train_meg->callback([&] {
    run_mpi = [](const CommonArgs& a, bool resume, const cliphba::parallel::Comm& c) {
      return cliphba::apps::RunTrainMeg(a, resume, c);
    };
  });
  CLI::App* evaluate_meg = evaluate->add_subcommand(
      "meg", "time-resolved alignment of OUT_DIR/best.safetensors on the held-out objects");
  AddCommon(evaluate_meg, &args);
  AddKeyOption(evaluate_meg, "--out-dir", "train.meg.out_dir",
               "folder of best.safetensors (evaluation.h5 is written there)", &flag_overrides);
  evaluate_meg->callback([&] {
    run_mpi = [](const CommonArgs& a, bool, const cliphba::parallel::Comm& c) {
      return cliphba::apps::RunEvaluateMeg(a, c);
    };
  });
  CLI::App* synth_images = synth->add_subcommand(
      "images", "coloured shapes with learnable targets (a stage-1 demo set)");
  AddCommon(synth_images, &args);
  AddKeyOption(synth_images, "--out-dir", "synth.images.out_dir", "output folder", &flag_overrides);
  synth_images->callback([&] { run = cliphba::apps::RunSynthImages; });

  // `cliphba run`: the whole pipeline as resumable units (collective under an MPI launcher).
  cliphba::apps::RunCommandArgs run_args;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "the pipeline: behaviour -> group -> individual MEG models -> alignment -> report");
  AddCommon(run_cmd, &args);
  run_cmd->add_option("--only", run_args.only,
                      "run only this stage: behavior|group|individual|alignment|report "
                      "(repeatable)");
  run_cmd->add_option("--participants", run_args.participants,
                      "individual stage: these participants (labels or indices, e.g. 3,4)");
  run_cmd->add_flag("--force", run_args.force,
                    "redo the units whose configuration changed (and the units downstream)");
  AddKeyOption(run_cmd, "--out-dir", "run.out_dir", "run folder", &flag_overrides);
  bool is_run = false;
  run_cmd->callback([&] { is_run = needs_mpi = true; });
  // MEG data: `cliphba meg rdm` (epochs -> time-resolved RDMs).
  CLI::App* meg =
      app.add_subcommand("meg", "MEG data: time-resolved RDMs from epoched sensor data");
  meg->require_subcommand(1);
  CLI::App* meg_rdm = meg->add_subcommand(
      "rdm", "epochs HDF5 files (scripts/fif_to_h5.py) -> MEG RDM HDF5 (correlation | crossnobis)");
  AddCommon(meg_rdm, &args);
  AddKeyOption(meg_rdm, "--out", "meg.epochs.out", "MEG RDM HDF5 file written", &flag_overrides);
  AddKeyOption(meg_rdm, "--method", "meg.epochs.method", "correlation | crossnobis",
               &flag_overrides);
  meg_rdm->callback([&] { run = cliphba::apps::RunMegRdm; });

  // `cliphba synth cohort|model`: the commands that refuse to write over an existing output
  // unless --force (one flag variable: only one subcommand runs).
  int (*run_forced)(const CommonArgs&, bool) = nullptr;
  bool force = false;
  // `cliphba synth cohort` (issue 6): the synthetic THINGS-like cohort with MEG epochs.
  CLI::App* synth_cohort = synth->add_subcommand(
      "cohort", "images, behaviour and per-participant MEG epochs with known ground truth");
  AddCommon(synth_cohort, &args);
  synth_cohort->add_flag("--force", force,
                         "write over an out_dir that holds something other than this cohort");
  AddKeyOption(synth_cohort, "--out-dir", "synth.cohort.out_dir", "output folder", &flag_overrides);
  AddKeyOption(synth_cohort, "--seed", "synth.cohort.seed", "random seed", &flag_overrides);
  synth_cohort->callback([&] { run_forced = cliphba::apps::RunSynthCohort; });

  // `cliphba synth model`: a seeded random-init CLIP (the demos' base model; config synth.model).
  CLI::App* synth_model = synth->add_subcommand(
      "model", "a seeded random-init OpenAI CLIP ViT as safetensors (demo/test base model)");
  AddCommon(synth_model, &args);
  synth_model->add_flag("--force", force, "replace an existing synth.model.out");
  AddKeyOption(synth_model, "--out", "synth.model.out", "safetensors file to write",
               &flag_overrides);
  AddKeyOption(synth_model, "--seed", "synth.model.seed", "random seed", &flag_overrides);
  synth_model->callback([&] { run_forced = cliphba::apps::RunSynthModel; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    if (code == 0) return 0;
    // CLI11 reports a missing subcommand before unexpected arguments: name what was not understood.
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      for (const std::string& extra : app.remaining(true))
        std::fprintf(stderr, "cliphba: error: unknown command or argument '%s'\n", extra.c_str());
    }
    return static_cast<int>(cliphba::ExitCode::kUsage);
  }
  args.overrides.insert(args.overrides.end(), flag_overrides.begin(), flag_overrides.end());
  // MPI outlives the command so that an error can abort every rank (a failing rank must not leave
  // the others waiting in a collective).
  std::unique_ptr<cliphba::parallel::MpiEnvironment> mpi;
  int code = 0;
  try {
    if (run_encode) return cliphba::apps::RunEncode(args, encode_args);
    if (run_tokenize) return cliphba::apps::RunTokenize(args, tokenize_vocab);
    if (run_forced != nullptr) return run_forced(args, force);
    if (!config_get.empty()) return cliphba::apps::RunConfigGet(args, config_get);
    if (run_mpi != nullptr || needs_mpi) {
      // Collective commands: MPI_COMM_WORLD under an MPI launcher; started plainly, one process
      // without MPI.
      cliphba::parallel::Comm comm = cliphba::parallel::Comm::Serial();
      if (cliphba::parallel::LaunchedByMpi()) {
        mpi = std::make_unique<cliphba::parallel::MpiEnvironment>(&argc, &argv);
        comm = cliphba::parallel::Comm(MPI_COMM_WORLD);
      }
      if (run_mpi != nullptr) return run_mpi(args, train_resume, comm);
      if (is_run) return cliphba::apps::RunRun(args, run_args, comm);
      return cliphba::apps::RunPermute(args, permute_args, comm);
    }
    return run(args);
  } catch (const cliphba::Error& e) {
    std::fprintf(stderr, "cliphba: error: %s\n", e.what());
    code = static_cast<int>(e.code());
    // Preemption is collective (every rank checkpointed and stops together): exit normally.
    if (mpi && e.code() != cliphba::ExitCode::kPreempted) AbortOtherRanks(code);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cliphba: internal error: %s\n", e.what());
    code = static_cast<int>(cliphba::ExitCode::kInternal);
    if (mpi) AbortOtherRanks(code);
  }
  return code;
}
