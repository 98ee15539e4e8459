// Thread setup shared by the benchmark mains, as apps/runtime.cc does for cliphba: ATen's OpenMP
// pool and OpenBLAS's pthread pool each get the same count (2 = the development machine's cores,
// or CLIPHBA_THREADS). Returns the count and records it in the benchmark context.
#pragma once

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>

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

}  // namespace cliphba::bench
