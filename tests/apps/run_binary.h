// Runs a program as a child process for the end-to-end CLI tests (tests/apps): stdin from
// /dev/null, stdout and stderr captured separately through files in a test's folder (a chatty
// child can never block on a full pipe), the exit code (128 + signal for a killed child).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace cliphba::testing {

struct ProcessResult {
  int code = -1;         // exit status; 128 + signal number if killed; -1 if it did not start
  std::string out, err;  // captured stdout and stderr
};

inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `binary args...` and waits for it. The captures go to capture_dir/stdout.txt and
// capture_dir/stderr.txt (overwritten). A failure to start is a test failure (code -1).
inline ProcessResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                               const std::filesystem::path& capture_dir) {
  const std::string out_path = (capture_dir / "stdout.txt").string();
  const std::string err_path = (capture_dir / "stderr.txt").string();
  std::vector<std::string> storage = {binary};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ProcessResult r;
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << binary << ": " << std::strerror(rc);
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFileBytes(out_path);
  r.err = ReadFileBytes(err_path);
  return r;
}

}  // namespace cliphba::testing
