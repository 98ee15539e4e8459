// The command table of `cliphba` (apps/command_table.h): every subcommand's help text, options and
// run function. Options are declared in the order `--help` lists them.
#include "apps/command_table.h"

#include <CLI/CLI.hpp>
#include <initializer_list>

#include "apps/train_commands.h"
#include "config/config.h"

namespace cliphba::apps {

namespace {

// Adds --config/--set/--json to a subcommand.
void AddCommon(CLI::App* cmd, ParsedArgs* parsed) {
  CommonArgs* args = &parsed->common;
  // No CLI11 existence check: a missing file is an I/O error (exit 3) like every other input,
  // reported by config::LoadConfig with the file's name.
  cmd->add_option("--config", args->config_file,
                  "YAML configuration file (see configs/reference.yaml)");
  cmd->add_option("--set", args->overrides,
                  "override a configuration key: --set key.path=value (repeatable)")
      ->allow_extra_args(false)
      ->take_all();
  cmd->add_flag("--json", args->json, "print one machine-readable JSON object on stdout");
}

// An explicit flag bound to a configuration key: recorded as an override applied after --set.
struct KeyOption {
  const char* flag;  // "--out-dir"
  const char* key;   // "synth.behavior.out_dir"
  const char* help;  // the help text; " (config key KEY)" is appended
};

// Adds the key options to cmd, in order.
// A configuration key's description (config/config.h), for the help text.
const config::KeyInfo* InfoOf(const std::string& key) {
  static const std::vector<config::KeyInfo> keys = config::ConfigKeys();
  for (const auto& k : keys)
    if (k.path == key) return &k;
  return nullptr;
}

// The default as the help shows it ("" for none or an empty string).
std::string DefaultOf(const std::string& key) {
  const config::KeyInfo* k = InfoOf(key);
  return k == nullptr || k->default_value == "\"\"" ? std::string() : k->default_value;
}

// CLI11's type column: INT, NUMBER, BOOL or TEXT, from the key's type.
std::string TypeNameOf(const std::string& key) {
  const config::KeyInfo* k = InfoOf(key);
  if (k == nullptr) return "TEXT";
  if (k->type == "integer") return "INT";
  if (k->type == "number") return "NUMBER";
  if (k->type == "boolean") return "BOOL";
  return "TEXT";
}

void AddKeyOptions(CLI::App* cmd, ParsedArgs* parsed, std::initializer_list<KeyOption> options) {
  std::vector<std::string>* flag_overrides = &parsed->flag_overrides;
  for (const KeyOption& option : options) {
    std::string key = option.key;
    const std::string fallback = DefaultOf(key);
    cmd->add_option_function<std::string>(
           option.flag,
           [=](const std::string& v) {
             // "--flag:key=value": config errors name the flag (config/config.h).
             flag_overrides->push_back(std::string(option.flag) + ":" + key + "=" + v);
           },
           std::string(option.help) + " (config key " + key +
               (fallback.empty() ? std::string(")") : ", default " + fallback + ")"))
        ->type_name(TypeNameOf(key));
  }
}

// A configured command whose only options besides --config/--set/--json are key options.
void DeclareKeyed(CLI::App* cmd, ParsedArgs* parsed, std::initializer_list<KeyOption> options) {
  AddCommon(cmd, parsed);
  AddKeyOptions(cmd, parsed, options);
}

void DeclareVersion(CLI::App* cmd, ParsedArgs* parsed) {
  cmd->add_flag("--json", parsed->common.json, "print one JSON object");
}

void DeclareConfig(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  // `cliphba config --get KEY`: one resolved value, for shell scripts.
  cmd->add_option("--get", parsed->config_get,
                  "print only the resolved value of KEY (a.b.c): a scalar as text, a list one "
                  "item per line, a section as YAML");
}

void DeclareEncode(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  EncodeArgs* e = &parsed->encode;
  cmd->add_option("--checkpoint", e->checkpoint,
                  "CLIP checkpoint: safetensors, torch.save zip or TorchScript archive");
  cmd->add_option("--images", e->images_dir, "folder of .jpg/.png images");
  cmd->add_option("--images-npy", e->images_npy, "normalised float32 (N, 3, H, W) images as NPY");
  cmd->add_option("--prompts", e->prompts, "JSON list of prompts (e.g. the 66 dimensions)");
  cmd->add_option("--vocab", e->vocab, "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
  cmd->add_option("--vocab-remap", e->vocab_remap,
                  "'tiny': the fixtures' reduced-vocabulary id remap");
  cmd->add_option("--out", e->out_dir, "output folder for the .npy files");
  cmd->add_option("--normalization", e->normalization,
                  "image mean/std for --images: things (default) or openai");
  cmd->add_option("--precision", e->precision,
                  "float32 | bfloat16: the image tower's GEMMs in bf16 (mixed precision; "
                  "default float32)");
  cmd->add_flag("--force", e->force,
                "write over an earlier encode's files in --out (its stale files are removed)");
}

void DeclareTokenize(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  cmd->add_option("--vocab", parsed->tokenize_vocab,
                  "CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
}

// The options of `permute`, also taken by `permute mantel` and `permute cluster`.
void DeclarePermute(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  cmd->add_flag("--resume", parsed->permute.resume, "continue from OUT.ckpt if it exists");
  cmd->add_flag("--force", parsed->permute.force,
                "replace an existing OUT or discard OUT.ckpt, even from other settings "
                "(refused otherwise)");
  AddKeyOptions(cmd, parsed, {{"--out", "permute.out", "HDF5 results file"}});
}

// `permute` with `only` set to the ad-hoc test of the subcommand.
int RunPermuteOnly(const ParsedArgs& parsed, const char* only, const parallel::Comm& comm) {
  PermuteArgs permute_args = parsed.permute;
  permute_args.only = only;
  return RunPermute(parsed.common, permute_args, comm);
}

// `train behavior|meg`: the stage's --resume and output folder.
void DeclareTrain(CLI::App* cmd, ParsedArgs* parsed, const KeyOption& out_dir) {
  AddCommon(cmd, parsed);
  cmd->add_flag("--resume", parsed->resume, "continue from OUT_DIR/last_state.json");
  cmd->add_flag("--force", parsed->force,
                "train over an OUT_DIR that holds an earlier run (refused otherwise)");
  AddKeyOptions(cmd, parsed, {out_dir});
}

// `synth *`: the commands that refuse to write over an existing output unless --force.
void DeclareForced(CLI::App* cmd, ParsedArgs* parsed, const char* force_help,
                   std::initializer_list<KeyOption> options) {
  AddCommon(cmd, parsed);
  cmd->add_flag("--force", parsed->force, force_help);
  AddKeyOptions(cmd, parsed, options);
}

void DeclareRun(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  RunCommandArgs* r = &parsed->run;
  cmd->add_option("--only", r->only,
                  "run only this stage: behavior|group|individual|predict|alignment|report "
                  "(repeatable)");
  cmd->add_option("--participants", r->participants,
                  "individual stage: these participants (labels or indices, e.g. 3,4)");
  cmd->add_flag("--force", r->force,
                "redo the units whose configuration changed (and the units downstream)");
  AddKeyOptions(cmd, parsed, {{"--out-dir", "run.out_dir", "run folder"}});
}

// The image source and run options of both `predict` commands.
void DeclareImages(CLI::App* cmd, predict::ImageArgs* images, int64_t* batch, int64_t* threads) {
  cmd->add_option("--images", images->dir, "folder of .jpg/.jpeg/.png images (sorted by name)");
  cmd->add_option("--image-list", images->list,
                  "text file: one image path per line (relative to the list's folder)");
  cmd->add_option("--images-npy", images->npy, "normalised float32 (N, 3, R, R) images as NPY");
  cmd->add_flag("--skip-bad-images", images->skip_bad,
                "leave out (and list) images that do not decode instead of failing");
  cmd->add_option("--batch", *batch,
                  "images per chunk (behavior: 32; meg: the model's training batch)");
  cmd->add_option("--threads", *threads, "threads per process (default: cores / ranks)");
}

void DeclarePredictBehavior(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  predict::PredictBehaviorOptions* o = &parsed->predict.behavior;
  cmd->add_option("--model", o->model,
                  "a `train behavior` folder, a file written by `convert`, or a base CLIP "
                  "checkpoint (plain CLIP)");
  DeclareImages(cmd, &o->images, &o->batch, &parsed->predict.threads);
  cmd->add_option("--prompts", o->text.prompts, "JSON list of prompts (default: the model's)");
  cmd->add_option("--vocab", o->text.vocab, "CLIP BPE merges (default: the model's)");
  cmd->add_option("--vocab-remap", o->text.vocab_remap, "tiny | none (default: the model's)");
  cmd->add_option("--labels", o->text.labels, "one label per prompt (default: the model's)");
  cmd->add_option("--out", o->out, "HDF5 output file");
  cmd->add_option("--csv", o->csv, "also write image_name + one column per label as CSV");
  cmd->add_flag("--force", o->force, "replace an existing --out / --csv");
  cmd->add_flag("--strict", o->strict,
                "refuse a known OpenAI checkpoint name whose SHA-256 differs (else a warning)");
  cmd->add_option("--precision", o->precision,
                  "float32 | bfloat16: the image tower's GEMMs in bf16 (mixed precision; "
                  "default float32)");
}

void DeclarePredictMeg(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  predict::PredictMegOptions* o = &parsed->predict.meg;
  cmd->add_option("--model", o->model, "a `train meg` folder or a `cliphba run` folder");
  cmd->add_option("--unit", o->unit, "with a run folder: group | individual/<participant>");
  cmd->add_flag("--all", o->all, "with a run folder: every MEG model of the run");
  DeclareImages(cmd, &o->images, &o->batch, &parsed->predict.threads);
  cmd->add_option("--out", o->out, "HDF5 output file");
  cmd->add_option("--t-block", o->t_block, "timepoints per streamed block (default 16)");
  cmd->add_option("--noise-seed", parsed->predict.noise_seed,
                  "add the model's noise (the reference's noisy inference), drawn from this seed");
  cmd->add_flag("--no-rdm", o->no_rdm, "write embeddings only (RDMs are T x N(N-1)/2 floats)");
  cmd->add_flag("--force", o->force, "replace an existing --out");
}

void DeclareConvert(CLI::App* cmd, ParsedArgs* parsed) {
  AddCommon(cmd, parsed);
  PredictArgs* p = &parsed->predict;
  cmd->add_option("--from", p->convert_from, "source format: reference-pth (the default)");
  cmd->add_option("file", p->convert.in, "the checkpoint to convert (FILE.pth)");
  cmd->add_option("--out", p->convert.out, "the cliphba checkpoint to write (.safetensors)");
  cmd->add_option("--dora-alpha", p->convert.dora_alpha,
                  "DoRA alpha the model was trained with (not in the file; default 16)");
  cmd->add_option("--prompts", p->convert.text.prompts, "record these prompts in the file");
  cmd->add_option("--vocab", p->convert.text.vocab, "record this CLIP BPE vocabulary");
  cmd->add_option("--vocab-remap", p->convert.text.vocab_remap, "record this remap (tiny)");
  cmd->add_option("--labels", p->convert.text.labels, "record one label per prompt");
  cmd->add_option("--normalization", p->convert.normalization,
                  "image mean/std the model was trained with: things (default) or openai");
  cmd->add_flag("--force", p->convert.force, "replace an existing --out");
}

using P = ParsedArgs;
using Comm = parallel::Comm;

}  // namespace

const std::vector<Command>& CommandTable() {
  static const std::vector<Command> table = {
      {"version", "versions of cliphba, LibTorch, MPI, HDF5 (parallel?) and the loaded BLAS",
       DeclareVersion, [](const P& p) { return RunVersion(p.common); }, nullptr},
      {"config", "print the resolved configuration as YAML", DeclareConfig,
       [](const P& p) {
         return p.config_get.empty() ? RunConfigShow(p.common)
                                     : RunConfigGet(p.common, p.config_get);
       },
       nullptr},

      {"synth", "generate synthetic data with known ground truth", nullptr, nullptr, nullptr},
      {"synth behavior",
       "a behaviour set: sparse embedding + triplet-derived human RDM (SPoSE rule)",
       [](CLI::App* c, P* p) {
         DeclareForced(c, p, "write over a non-empty out_dir (its files of this name are replaced)",
                       {{"--out-dir", "synth.behavior.out_dir", "output folder"},
                        {"--n-objects", "synth.behavior.n_objects", "number of objects"},
                        {"--seed", "synth.behavior.seed", "random seed"}});
       },
       [](const P& p) { return RunSynthBehavior(p.common, p.force); }, nullptr},
      // A stage-1 demo set (apps/train_commands.h).
      {"synth images", "coloured shapes with learnable targets (a stage-1 demo set)",
       [](CLI::App* c, P* p) {
         DeclareForced(c, p, "write over a non-empty out_dir (its files of this name are replaced)",
                       {{"--out-dir", "synth.images.out_dir", "output folder"}});
       },
       [](const P& p) { return RunSynthImages(p.common, p.force); }, nullptr},
      // Issue 6: the synthetic THINGS-like cohort with MEG epochs.
      {"synth cohort", "images, behaviour and per-participant MEG epochs with known ground truth",
       [](CLI::App* c, P* p) {
         DeclareForced(c, p, "write over an out_dir that holds something other than this cohort",
                       {{"--out-dir", "synth.cohort.out_dir", "output folder"},
                        {"--seed", "synth.cohort.seed", "random seed"}});
       },
       [](const P& p) { return RunSynthCohort(p.common, p.force); }, nullptr},
      // A seeded random-init CLIP (the demos' base model; config synth.model).
      {"synth model", "a seeded random-init OpenAI CLIP ViT as safetensors (demo/test base model)",
       [](CLI::App* c, P* p) {
         DeclareForced(c, p, "replace an existing synth.model.out",
                       {{"--out", "synth.model.out", "safetensors file to write"},
                        {"--seed", "synth.model.seed", "random seed"}});
       },
       [](const P& p) { return RunSynthModel(p.common, p.force); }, nullptr},

      {"rsa", "representational similarity analyses", nullptr, nullptr, nullptr},
      {"rsa behavior", "an embedding vs a human RDM: 4 RDM types x 4 comparisons, triplet accuracy",
       [](CLI::App* c, P* p) {
         DeclareKeyed(
             c, p,
             {{"--embedding", "rsa.behavior.embedding", "embedding CSV (,image_name,0..d-1)"},
              {"--rdm", "rsa.behavior.rdm", "reference RDM (n x n NPY)"},
              {"--rdm-names", "rsa.behavior.rdm_names",
               "names of the RDM rows in RDM order (.txt or CSV)"},
              {"--triplets", "rsa.behavior.triplets",
               "behavioural choices (t x 3 int64 NPY: a, b, odd)"},
              {"--out", "rsa.behavior.out", "HDF5 results file"}});
         c->add_flag("--force", p->force, "replace an existing results file (refused otherwise)");
       },
       [](const P& p) { return RunRsaBehavior(p.common, p.force); }, nullptr},

      {"encode",
       "CLIP features of images (and prompts): image/text features, per-block CLS, logits",
       DeclareEncode, [](const P& p) { return RunEncode(p.common, p.encode); }, nullptr},
      {"convert", "import a checkpoint of the reference code (--from reference-pth) as safetensors",
       DeclareConvert, [](const P& p) { return RunConvert(p.common, p.predict); }, nullptr},
      {"tokenize", "CLIP BPE token ids (77 per line) of the texts on stdin, one per line",
       DeclareTokenize, [](const P& p) { return RunTokenize(p.common, p.tokenize_vocab); },
       nullptr},

      // The collective commands (run_collective): MPI under an MPI launcher.
      {"predict", "apply trained models to new images", nullptr, nullptr, nullptr},
      {"predict behavior",
       "a behaviour model (stage 1, converted, or plain CLIP): embedding (N, K) and RDMs",
       DeclarePredictBehavior, nullptr,
       [](const P& p, const Comm& comm) { return RunPredictBehavior(p.common, p.predict, comm); }},
      {"predict meg", "MEG models: embeddings (T, N, K) and model RDMs per timepoint",
       DeclarePredictMeg, nullptr,
       [](const P& p, const Comm& comm) { return RunPredictMeg(p.common, p.predict, comm); }},
      {"permute",
       "permutation tests: Mantel over time, sign-flip cluster and t-max (MPI, resumable)",
       DeclarePermute, nullptr,
       [](const P& p, const Comm& comm) { return RunPermute(p.common, p.permute, comm); }},
      {"permute mantel", "one Mantel test (model vs neural RDMs)",
       [](CLI::App* c, P* p) {
         DeclarePermute(c, p);
         AddKeyOptions(c, p,
                       {{"--model-rdm", "permute.mantel.model_rdm", "model RDM NPY"},
                        {"--neural-rdm", "permute.mantel.neural_rdm",
                         "neural RDM NPY: one (n x n) or a (T x n x n) stack"},
                        {"--statistic", "permute.mantel.statistic", "spearman | pearson"},
                        {"--n", "permute.mantel.n", "permutations"},
                        {"--seed", "permute.mantel.seed", "random seed"},
                        {"--tail", "permute.mantel.tail", "1 | 0"},
                        {"--permutations", "permute.mantel.permutations",
                         "explicit (N x n) int64 permutations NPY"}});
       },
       nullptr, [](const P& p, const Comm& comm) { return RunPermuteOnly(p, "mantel", comm); }},
      {"permute cluster", "one sign-flip cluster test (MNE-equal)",
       [](CLI::App* c, P* p) {
         DeclarePermute(c, p);
         AddKeyOptions(c, p,
                       {{"--data", "permute.cluster.data", "(participants x T) NPY"},
                        {"--threshold", "permute.cluster.threshold", "cluster-forming t"},
                        {"--tail", "permute.cluster.tail", "-1 | 0 | 1"},
                        {"--n", "permute.cluster.n", "sign patterns incl. the observed"},
                        {"--seed", "permute.cluster.seed", "random seed"},
                        {"--flips", "permute.cluster.flips", "explicit int8 (flips x N) NPY"}});
       },
       nullptr, [](const P& p, const Comm& comm) { return RunPermuteOnly(p, "cluster", comm); }},

      // Stage 1 (behaviour) and stages 2/3 (MEG).
      {"train", "fine-tune CLIP-HBA (stage 1: behaviour)", nullptr, nullptr, nullptr},
      {"train behavior",
       "DoRA fine-tuning on the behavioural dimensions (MPI data parallel, resumable)",
       [](CLI::App* c, P* p) {
         DeclareTrain(
             c, p,
             {"--out-dir", "train.behavior.out_dir", "checkpoints, resume state and results"});
       },
       nullptr,
       [](const P& p, const Comm& comm) {
         return RunTrainBehavior(p.common, p.resume, p.force, comm);
       }},
      {"train meg",
       "MEG fine-tuning: Wfr on cached features, then + DoRA (MPI data parallel, resumable)",
       [](CLI::App* c, P* p) {
         DeclareTrain(c, p,
                      {"--out-dir", "train.meg.out_dir", "checkpoints, resume state, results"});
       },
       nullptr,
       [](const P& p, const Comm& comm) { return RunTrainMeg(p.common, p.resume, p.force, comm); }},
      {"evaluate", "evaluate a fine-tuned CLIP-HBA model", nullptr, nullptr, nullptr},
      {"evaluate behavior",
       "held-out RDM Spearman and triplet accuracy of OUT_DIR/best.safetensors",
       [](CLI::App* c, P* p) {
         DeclareKeyed(c, p,
                      {{"--out-dir", "train.behavior.out_dir",
                        "folder of best.safetensors (evaluation.h5 is written there)"}});
       },
       nullptr, [](const P& p, const Comm& comm) { return RunEvaluateBehavior(p.common, comm); }},
      {"evaluate meg",
       "time-resolved alignment of OUT_DIR/best.safetensors on the held-out objects",
       [](CLI::App* c, P* p) {
         DeclareKeyed(c, p,
                      {{"--out-dir", "train.meg.out_dir",
                        "folder of best.safetensors (evaluation.h5 is written there)"}});
       },
       nullptr, [](const P& p, const Comm& comm) { return RunEvaluateMeg(p.common, comm); }},

      // The whole pipeline as resumable units.
      {"run", "the pipeline: behaviour -> group -> individual MEG models -> alignment -> report",
       DeclareRun, nullptr,
       [](const P& p, const Comm& comm) { return RunRun(p.common, p.run, comm); }},

      {"meg", "MEG data: time-resolved RDMs from epoched sensor data", nullptr, nullptr, nullptr},
      {"meg rdm",
       "epochs HDF5 files (scripts/fif_to_h5.py) -> MEG RDM HDF5 (correlation | crossnobis)",
       [](CLI::App* c, P* p) {
         DeclareKeyed(c, p,
                      {{"--files", "meg.epochs.files",
                        "epochs HDF5 files, one per participant, as a YAML list: '[a.h5, b.h5]'"},
                       {"--participants", "meg.epochs.participants",
                        "participant labels, one per file, as a YAML list"},
                       {"--out", "meg.epochs.out", "MEG RDM HDF5 file written"},
                       {"--method", "meg.epochs.method", "correlation | crossnobis"},
                       {"--window-ms", "meg.epochs.window_ms", "centred boxcar window (0 = none)"},
                       {"--step-ms", "meg.epochs.step_ms", "output timepoint spacing (0 = every sample)"},
                       {"--tmin-ms", "meg.epochs.tmin_ms", "first time kept"},
                       {"--tmax-ms", "meg.epochs.tmax_ms", "last time kept"}});
       },
       [](const P& p) { return RunMegRdm(p.common); }, nullptr},
  };
  return table;
}

}  // namespace cliphba::apps
