// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
//
// A random stream is a pure function of (seed, stream, counter): there is no hidden state, so the
// k-th permutation, the i-th synthetic object or the t-th triplet is the same whichever rank,
// thread or resumed run computes it. Philox passes BigCrush; its output equals the Random123
// reference (known-answer test in tests/core/rng_test.cc).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace cliphba {

// One Philox4x32-10 block: 4 x 32 random bits for (key, counter).
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// A sequential reader over the stream (seed, stream): block b is Philox(counter = {b_lo, b_hi,
// stream_lo, stream_hi}, key = seed). Cheap to construct; copyable.
class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream, uint64_t start_block = 0)
      : seed_(seed), stream_(stream), block_(start_block) {}

  uint32_t NextU32();
  uint64_t NextU64() { return (uint64_t(NextU32()) << 32) | NextU32(); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return double(NextU64() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller; consumes two uniforms per call, no cached spare: stateless order).
  double Normal();
  // Uniform integer in [0, n) without modulo bias (Lemire's method). REQUIRES: n > 0.
  uint64_t Below(uint64_t n);

 private:
  uint64_t seed_, stream_, block_;
  std::array<uint32_t, 4> buf_{};
  int used_ = 4;
};

// Fisher-Yates permutation of 0..n-1 drawn from stream (seed, stream). out must hold n entries.
void RandomPermutation(uint64_t seed, uint64_t stream, int64_t n, int64_t* out);

}  // namespace cliphba
