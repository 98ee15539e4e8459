#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "apps/commands.h"
#include "core/log.h"

namespace cliphba::apps {

namespace {
// Processes of this job on this node, from the launcher's environment (1 outside MPI/Slurm).
int LocalRanks() {
  for (const char* var :
       {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) {
      int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  return 1;
}
}  // namespace

void ApplyRuntime(const std::string& log_level, int64_t threads) {
  SetLogLevel(log_level);
  if (threads <= 0) {
    int cores = int(std::thread::hardware_concurrency());
    threads = std::max(1, cores / LocalRanks());
  }
  // ATen's OpenMP pool and OpenBLAS's own pool each get `threads`: they run one after the other
  // (BLAS calls are made outside ATen parallel regions), and OMP_WAIT_POLICY=PASSIVE (set by the
  // scripts) keeps idle OpenMP workers from spinning while OpenBLAS works.
  at::set_num_threads(int(threads));
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(int(threads));
  LOG_DEBUG("threads per process: {}", threads);
}

}  // namespace cliphba::apps
