// Checks for test programs that run under mpirun without GoogleTest: a failed check is counted and
// printed with its rank, and the program goes on, so that every rank keeps taking part in the
// collective calls. main() reduces g_failures over the ranks for its exit code.
#pragma once

#include <cstdio>

inline int g_rank = 0;      // this process's rank in MPI_COMM_WORLD (set by main)
inline int g_failures = 0;  // checks failed on this rank

#define TEST_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "[rank %d] %s:%d: CHECK failed: %s\n", g_rank, __FILE__, __LINE__, \
                   #cond);                                                                    \
      ++g_failures;                                                                           \
    }                                                                                         \
  } while (0)
