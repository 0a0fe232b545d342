#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. Word j of block g is a pure function of (key, g), so any element of
// a stream can be produced by any thread in any order: the random mask depends on the seed
// only, never on the thread count or the chunking. Written with 64-bit products of 32-bit
// words so that loops over blocks vectorise.
#include <cstdint>

#include "common/simd.h"

#ifdef __CUDACC__
#define C2_HOST_DEVICE __host__ __device__
#else
#define C2_HOST_DEVICE
#endif

namespace caffe2ops {

struct PhiloxKey {
  uint32_t k0, k1;
  C2_HOST_DEVICE explicit PhiloxKey(uint64_t seed)
      : k0(static_cast<uint32_t>(seed)), k1(static_cast<uint32_t>(seed >> 32)) {}
};

// The four 32-bit words of block `counter` (the high counter words are 0).
C2_HOST_DEVICE C2_ALWAYS_INLINE void philox4x32_10(uint64_t counter, PhiloxKey key, uint32_t out[4]) {
  constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0, k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = kM0 * c0, p1 = kM1 * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kW0;
    k1 += kW1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

}  // namespace caffe2ops
