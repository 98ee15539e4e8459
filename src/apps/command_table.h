// The command table of the `cliphba` binary: one entry per subcommand (its name path, its help
// text, the CLI11 options it declares and the function that runs it), and ParsedArgs, the one
// struct every option writes into. main.cc registers the table with CLI11 and runs the one entry
// the command line selected.
#pragma once

#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/predict_commands.h"
#include "apps/run_commands.h"
#include "parallel/comm.h"

namespace CLI {
class App;
}  // namespace CLI

namespace cliphba::apps {

// Everything the command line sets. Subcommands share fields (e.g. `common`, `force`): only one
// subcommand runs, so they do not clash.
struct ParsedArgs {
  CommonArgs common;  // --config, --set, --json (main appends flag_overrides after parsing)
  std::vector<std::string> flag_overrides;  // explicit key flags (--out-dir ...): after --set
  std::string config_get;                   // `config --get KEY` ("" = print the whole config)
  EncodeArgs encode;                        // `encode` flags
  std::string tokenize_vocab;               // `tokenize --vocab`
  PermuteArgs permute;  // `permute [mantel|cluster]` --resume/--force (only: set by the run)
  RunCommandArgs run;   // `run` flags
  PredictArgs predict;  // `predict behavior|meg`, `convert` flags
  bool resume = false;  // `train behavior|meg --resume`
  bool force = false;   // --force of `synth cohort|model`, `train behavior|meg`, `rsa behavior`
};

// One subcommand. A group (`synth`, `train`, ...) has neither run function and requires one of
// its subcommands; a runnable command has exactly one of them.
struct Command {
  // Subcommand names from the top, separated by one space: "version", "permute mantel".
  const char* path;
  const char* description;  // the help text CLI11 prints
  // Adds the command's options to cmd, bound to fields of *parsed (which must outlive parsing).
  // nullptr: no options.
  void (*declare)(CLI::App* cmd, ParsedArgs* parsed);
  // Runs without MPI; returns the exit code, throws cliphba::Error.
  int (*run)(const ParsedArgs& parsed);
  // Runs collectively over comm (MPI_COMM_WORLD under an MPI launcher, else the serial
  // communicator); returns the exit code, throws cliphba::Error.
  int (*run_collective)(const ParsedArgs& parsed, const parallel::Comm& comm);
};

// Every subcommand, in help order; a parent comes before its subcommands.
const std::vector<Command>& CommandTable();

}  // namespace cliphba::apps
