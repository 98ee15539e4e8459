// The subcommands of the `cliphba` binary. Each returns the process exit code and throws
// cliphba::Error (caught once in main) for anything the user can fix.
#pragma once

#include <string>
#include <vector>

#include "parallel/comm.h"

namespace cliphba::apps {

// Options every subcommand takes.
struct CommonArgs {
  std::string config_file;             // --config FILE.yaml
  std::vector<std::string> overrides;  // --set key.path=value (repeatable), then explicit flags
  bool json = false;                   // --json: one JSON object on stdout
};

// Options of `cliphba permute` beyond the configuration keys.
struct PermuteArgs {
  std::string only;     // "" (the config's tests), "mantel" or "cluster" (ad-hoc forms)
  bool resume = false;  // --resume: continue from OUT.ckpt
  bool force = false;   // --force: ignore a checkpoint/output written under other settings
};

// `cliphba encode` flags.
struct EncodeArgs {
  std::string checkpoint;   // --checkpoint: any supported format (model/checkpoint.h)
  std::string images_dir;   // --images: folder of .jpg/.png
  std::string images_npy;   // --images-npy: normalised float32 (N, 3, H, W)
  std::string prompts;      // --prompts: JSON list of strings
  std::string vocab;        // --vocab: bpe_simple_vocab_16e6.txt.gz
  std::string vocab_remap;  // --vocab-remap tiny (the reduced-vocabulary fixture models)
  std::string out_dir;      // --out
  std::string normalization = "things";  // --normalization things | openai (image mean/std)
  std::string precision = "float32";     // --precision float32 | bfloat16 (the image tower)
  bool force =
      false;  // --force: write over an earlier encode's files in --out (stale ones removed)
};

int RunVersion(const CommonArgs& args);
int RunEncode(const CommonArgs& args, const EncodeArgs& encode_args);
// Reads one text per line on stdin; prints the 77 ids of each (--json: one list of lists).
int RunTokenize(const CommonArgs& args, const std::string& vocab);
// Collective over comm (MPI_COMM_WORLD under a launcher, else the serial communicator).
int RunPermute(const CommonArgs& args, const PermuteArgs& permute_args, const parallel::Comm& comm);
// Refuses (ConfigError, exit 2) an out_dir that is a file, or a non-empty folder unless force.
void RefuseNonEmptyOutDir(const std::string& dir, const std::string& key, bool force);
int RunSynthBehavior(const CommonArgs& args, bool force);
// force: replace an existing rsa.behavior.out (refused otherwise, exit 2).
int RunRsaBehavior(const CommonArgs& args, bool force);
int RunConfigShow(const CommonArgs& args);
// `cliphba meg rdm`: epochs HDF5 files -> MEG RDM HDF5 (config section meg.epochs).
int RunMegRdm(const CommonArgs& args);
// `cliphba synth cohort`: force = --force (write over a folder that holds something else).
int RunSynthCohort(const CommonArgs& args, bool force);
// `cliphba synth model`: writes the seeded random-init CLIP of synth.model (safetensors); force =
// --force (replace an existing file).
int RunSynthModel(const CommonArgs& args, bool force);
// `cliphba config --get KEY`: prints config::GetConfigValue (ConfigError, exit 2, if KEY is
// unknown).
int RunConfigGet(const CommonArgs& args, const std::string& key);

// Applies log level and thread settings of the resolved configuration. Reads the config.
void ApplyRuntime(const std::string& log_level, int64_t threads);

}  // namespace cliphba::apps
