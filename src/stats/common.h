// Shared vocabulary of the statistics engine (src/stats): tails and p-value conventions.
//
// Permutation p-values count the observed statistic as a member of the null distribution:
//   p = (1 + #{null >= observed}) / (1 + N)   for N random permutations (Phipson & Smyth 2010),
// which is what MNE's H0 (observed prepended to the permuted statistics) computes.
#pragma once

#include <string>

namespace cliphba::stats {

// Which side(s) of the null count as "at least as extreme". Values equal MNE's `tail`.
enum class Tail : int {
  kLower = -1,  // small (negative) statistics are extreme
  kTwo = 0,     // |statistic| is compared
  kUpper = 1,   // large (positive) statistics are extreme
};

// "-1", "0", "1" -> Tail. Throws ConfigError otherwise.
Tail ParseTail(const std::string& text);
inline int TailValue(Tail t) { return static_cast<int>(t); }

}  // namespace cliphba::stats
