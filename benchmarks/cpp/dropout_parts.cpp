// The two halves of a 4M-element float32 dropout timed apart, at one thread and at all: the
// Philox draws alone (common/philox_simd.h, as the kernel calls them: 256 calls a block of 2048
// elements, in a buffer that stays in L1) and its memory traffic alone (read X, write Y and one
// mask byte per element), with streaming stores as the kernel writes them and with ordinary
// stores as the floor in bench_dropout.py does. A dropout can be no faster than the slower
// half, and is as slow as their sum where they do not overlap: the distance between the two
// bounds is what the kernel's interleaving of draws and stores can still win.
//
// Build and run from the repository root (no torch needed; medians of 21 calls):
//   g++ -O2 -fopenmp -std=c++17 -Icsrc benchmarks/cpp/dropout_parts.cpp -o build/dropout_parts
//   build/dropout_parts
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "common/philox_simd.h"
#include "common/streaming.h"

namespace {

using caffe2ops::PhiloxKey;
using Clock = std::chrono::steady_clock;
constexpr int64_t kN = int64_t{1} << 22, kBlock = 2048, kCalls = kBlock / 8;

template <typename F>
double median_ms(const F& f) {
  std::vector<double> t;
  for (int k = 0; k < 21; ++k) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() * 1e3);
  }
  std::sort(t.begin(), t.end());
  return t[10];
}

// Blocks [b0, b1) of each thread's share, as at::parallel_for would split them.
template <typename Body>
void over_blocks(const Body& body) {
#pragma omp parallel
  {
    const int64_t blocks = kN / kBlock, t = omp_get_thread_num(), T = omp_get_num_threads();
    body(blocks * t / T, blocks * (t + 1) / T);
  }
}

#ifdef C2_STREAMING_X86
__attribute__((target("avx512f,avx512bw"))) void copy_and_fill(const float* x, float* y, bool* mask, int64_t n,
                                                               bool stream) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t i = 0; i < n; i += 64) {
    for (int j = 0; j < 4; ++j) {
      const __m512 v = _mm512_loadu_ps(x + i + 16 * j);
      if (stream) {
        _mm512_stream_ps(y + i + 16 * j, v);
      } else {
        _mm512_store_ps(y + i + 16 * j, v);
      }
    }
    if (stream) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(mask + i), ones);
    } else {
      _mm512_store_si512(mask + i, ones);
    }
  }
  _mm_sfence();
}
#endif

}  // namespace

int main() {
  auto* x = static_cast<float*>(std::aligned_alloc(64, kN * sizeof(float)));
  auto* y = static_cast<float*>(std::aligned_alloc(64, kN * sizeof(float)));
  auto* mask = static_cast<bool*>(std::aligned_alloc(64, kN));
  for (int64_t i = 0; i < kN; ++i) x[i] = static_cast<float>(i % 1000);
  std::memset(y, 0, kN * sizeof(float));
  std::memset(mask, 0, kN);
  const int all = static_cast<int>(std::thread::hardware_concurrency());
  for (int threads : {1, all}) {
    omp_set_num_threads(threads);
    const double draws = median_ms([&] {
      over_blocks([&](int64_t b0, int64_t b1) {
        alignas(64) uint32_t words[kBlock / 2];
        for (int64_t b = b0; b < b1; ++b) caffe2ops::philox_words(b * kCalls, PhiloxKey(7), kCalls, words, kCalls);
        asm volatile("" : : "r"(words) : "memory");
      });
    });
    std::printf("%d thread(s): draws %.3f ms", threads, draws);
#ifdef C2_STREAMING_X86
    if (caffe2ops::line_streaming_available()) {
      for (bool stream : {true, false}) {
        const double traffic = median_ms([&] {
          over_blocks([&](int64_t b0, int64_t b1) {
            copy_and_fill(x + b0 * kBlock, y + b0 * kBlock, mask + b0 * kBlock, (b1 - b0) * kBlock, stream);
          });
        });
        std::printf(" | traffic, %s stores %.3f ms", stream ? "streaming" : "ordinary", traffic);
      }
    }
#endif
    std::printf("\n");
  }
  std::free(x);
  std::free(y);
  std::free(mask);
  return 0;
}
