#include "core/rng.h"

namespace cliphba {

namespace {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
}  // namespace

std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * c[0];
    uint64_t p1 = uint64_t(kM1) * c[2];
    std::array<uint32_t, 4> n = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1),
                                 uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
    c = n;
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

uint32_t CounterRng::NextU32() {
  if (used_ == 4) {
    buf_ = Philox4x32(
        {uint32_t(block_), uint32_t(block_ >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)},
        {uint32_t(seed_), uint32_t(seed_ >> 32)});
    ++block_;
    used_ = 0;
  }
  return buf_[used_++];
}

double CounterRng::Normal() {
  double u1 = Uniform(), u2 = Uniform();
  if (u1 <= 0.0) u1 = 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

uint64_t CounterRng::Below(uint64_t n) {
  // Lemire's nearly-divisionless method on 64 bits.
  unsigned __int128 m = (unsigned __int128)NextU64() * n;
  uint64_t low = uint64_t(m);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = (unsigned __int128)NextU64() * n;
      low = uint64_t(m);
    }
  }
  return uint64_t(m >> 64);
}

void RandomPermutation(uint64_t seed, uint64_t stream, int64_t n, int64_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = i;
  CounterRng rng(seed, stream);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(rng.Below(uint64_t(i) + 1));
    std::swap(out[i], out[j]);
  }
}

}  // namespace cliphba
