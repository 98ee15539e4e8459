// cliphba: the command-line entry point. Registers the command table (apps/command_table.h) with
// CLI11, parses the command line, runs the one command it selected, and catches errors once: a
// cliphba::Error prints its message and exits with its documented code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>

#include "apps/command_table.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/version.h"
#include "parallel/comm.h"

using cliphba::apps::Command;
using cliphba::apps::ParsedArgs;

namespace {

// True if path is ancestor or one of its subcommands ("permute mantel" is under "permute").
bool IsUnder(const std::string& path, const std::string& ancestor) {
  return path == ancestor || path.rfind(ancestor + " ", 0) == 0;
}

// Adds every command of the table to app, in table order, with its options bound to *parsed. A
// group requires one of its subcommands. The callback of a runnable command sets *selected to it
// unless one of its own subcommands is selected already (CLI11 runs a subcommand's callback before
// its parent's): `permute` runs only when neither `permute mantel` nor `permute cluster` was given.
void RegisterCommands(CLI::App* app, ParsedArgs* parsed, const Command** selected) {
  std::map<std::string, CLI::App*> by_path = {{"", app}};
  for (const Command& command : cliphba::apps::CommandTable()) {
    const std::string path = command.path;
    const size_t space = path.rfind(' ');
    const std::string parent = space == std::string::npos ? "" : path.substr(0, space);
    const std::string name = space == std::string::npos ? path : path.substr(space + 1);
    CLI::App* cmd = by_path.at(parent)->add_subcommand(name, command.description);
    by_path[path] = cmd;
    if (command.declare != nullptr) command.declare(cmd, parsed);
    if (command.run == nullptr && command.run_collective == nullptr) {
      cmd->require_subcommand(1);
      continue;
    }
    cmd->callback([selected, &command] {
      if (*selected == nullptr || !IsUnder((*selected)->path, command.path)) *selected = &command;
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before any tensor work: large freed blocks are reused, not unmapped (core/memory.h).
  cliphba::ReuseFreedMemory();
  // Log lines go to stderr (the default spdlog logger writes to stdout, which is reserved for
  // results and --json).
  cliphba::SetLogRank(0, 1);
  CLI::App app{"cliphba: brain-aligned CLIP models of individual people, at cohort scale"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return std::string("cliphba ") + cliphba::Version(); });

  ParsedArgs parsed;
  const Command* selected = nullptr;
  RegisterCommands(&app, &parsed, &selected);

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
  parsed.common.overrides.insert(parsed.common.overrides.end(), parsed.flag_overrides.begin(),
                                 parsed.flag_overrides.end());
  // MPI outlives the command so that an error ends every rank: cleanly with one message when all
  // ranks failed, by MPI_Abort when one failed alone (parallel::EndAfterError).
  std::unique_ptr<cliphba::parallel::MpiEnvironment> mpi;
  int code = 0;
  try {
    if (selected->run != nullptr) return selected->run(parsed);
    // Collective commands: MPI_COMM_WORLD under an MPI launcher; started plainly, one process
    // without MPI.
    cliphba::parallel::Comm comm = cliphba::parallel::Comm::Serial();
    if (cliphba::parallel::LaunchedByMpi()) {
      mpi = std::make_unique<cliphba::parallel::MpiEnvironment>(&argc, &argv);
      comm = cliphba::parallel::Comm::World();
    }
    return selected->run_collective(parsed, comm);
  } catch (const cliphba::Error& e) {
    // Preemption (exit 75) is collective too: every rank checkpointed and stops together.
    code = static_cast<int>(e.code());
    const std::string line = std::string("cliphba: error: ") + e.what();
    if (mpi) cliphba::parallel::EndAfterError(line, code);
    else std::fprintf(stderr, "%s\n", line.c_str());
  } catch (const std::exception& e) {
    code = static_cast<int>(cliphba::ExitCode::kInternal);
    const std::string line = std::string("cliphba: internal error: ") + e.what();
    if (mpi) cliphba::parallel::EndAfterError(line, code);
    else std::fprintf(stderr, "%s\n", line.c_str());
  }
  return code;
}
