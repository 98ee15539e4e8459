// Thread setup shared by the benchmark mains, as apps/runtime.cc does for cliphba: ATen's OpenMP
// pool and OpenBLAS's pthread pool each get the same count (2 = the development machine's cores,
// or CLIPHBA_THREADS). Returns the count and records it in the benchmark context. BenchMain: the
// mains of the benchmark binaries.
#pragma once

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "core/memory.h"

namespace cliphba::bench {

inline int SetBenchThreads() {
  int threads = 2;
  if (const char* v = std::getenv("CLIPHBA_THREADS")) {
    if (std::atoi(v) > 0) threads = std::atoi(v);
  }
  at::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(threads);
  benchmark::AddCustomContext("threads", std::to_string(threads));
  return threads;
}

// The benchmarks' main(): the heap policy of cliphba's main (core/memory.h; recorded in the
// context, CLIPHBA_GLIBC_MALLOC_DEFAULTS=1 measures without it), Google Benchmark's flags,
// SetBenchThreads, `before` (if given: set-up or checks; a non-zero return ends the program with
// it), then every selected benchmark.
inline int BenchMain(int argc, char** argv, const std::function<int()>& before = {}) {
  const HeapPolicy heap = ReuseFreedMemory();
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("heap",
                              heap.applied ? "freed blocks <= 32 MiB reused" : "glibc defaults");
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  SetBenchThreads();
  if (before) {
    if (const int rc = before()) return rc;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace cliphba::bench
