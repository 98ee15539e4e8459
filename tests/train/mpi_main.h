// The main() of the trainers' MPI tests (run under mpirun -np 1/2/3 by ctest): MPI up, one check
// that returns 0 on every rank when it passed, "FAILED" or the error on stderr. An exception on
// any rank aborts the job (the other ranks may be waiting in a collective).
#pragma once

#include <mpi.h>

#include <cstdio>
#include <exception>

#include "parallel/comm.h"

namespace cliphba::testing {

template <typename Check>
int MpiCheckMain(int* argc, char*** argv, Check&& check) {
  cliphba::parallel::MpiEnvironment env(argc, argv);
  try {
    const int failed = check();
    if (failed) std::fprintf(stderr, "FAILED\n");
    return failed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}

}  // namespace cliphba::testing
