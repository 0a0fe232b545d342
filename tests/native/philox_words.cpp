// Checks the vectorised Philox words (csrc/common/philox_simd.h: AVX-512, AVX2 or scalar,
// whichever this CPU runs) against the scalar philox4x32_10 for counters the dropout tests
// cannot reach: high counter words that are not zero, around 2^32 and near 2^64. Prints the
// path taken and "ok", or the first mismatch and exits 1.
#include <cstdio>
#include <vector>

#include "common/philox_simd.h"

int main() {
  using namespace caffe2ops;
  const char* path = "scalar";
#ifdef C2_PHILOX_X86
  path = __builtin_cpu_supports("avx512f") ? "avx512" : __builtin_cpu_supports("avx2") ? "avx2" : "scalar";
#endif
  const uint64_t starts[] = {0, (uint64_t{1} << 32) - 64, (uint64_t{1} << 40) + 96, (uint64_t{1} << 63) - 32,
                             ~uint64_t{0} - 127};
  const uint64_t seeds[] = {0, 0x123456789abcdef0ull, ~uint64_t{0}};
  constexpr int64_t n = 256;
  std::vector<uint32_t> words(4 * n);
  for (uint64_t seed : seeds) {
    const PhiloxKey key(seed);
    for (uint64_t start : starts) {
      philox_words(start, key, n, words.data(), n);
      for (int64_t c = 0; c < n; ++c) {
        uint32_t w[4];
        philox4x32_10(start + static_cast<uint64_t>(c), key, w);
        for (int j = 0; j < 4; ++j) {
          if (words[j * n + c] != w[j]) {
            std::printf("%s: seed %llx counter %llx word %d: %08x, expected %08x\n", path,
                        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(start + c), j,
                        words[j * n + c], w[j]);
            return 1;
          }
        }
      }
    }
  }
  std::printf("%s ok\n", path);
  return 0;
}
