// Why batch_gather moves one-element blocks with scalar loads and stores: the other ways of
// gathering 4-byte elements from rows that sit in the cache, timed on this machine. The loops
// stand alone (no torch), each gathers out[p, i] = data[p, idx[i]] for every row p with one
// shared index list, as batch_gather does for one float per block.
//
//   scalar x4      what common/block_gather.h does for 4-byte blocks: four sources computed
//                  first, then four loads and four stores
//   avx512 gather  vpgatherdd, 16 elements an instruction (indices narrowed to int32 once)
//   avx2 gather    the same with 8 elements
//   4 rows/index   each index read once for four rows (four loads and stores per index)
//
// Build and run (no arguments; one thread, the loops timed in turn, medians of 41 rounds):
//   g++ -O2 -std=c++17 benchmarks/cpp/element_gather_strategies.cpp -o build/element_gather_strategies
//   build/element_gather_strategies
// On the Zen 4 core this project is measured on (three runs), every other loop is slower than
// the scalar one, which moves an element in 0.27-0.54 ns: the hardware gathers reach 0.55x-0.76x
// of its speed, four rows per index 0.65x-0.88x. The scalar loop is near one element a cycle,
// and index_select's own loop is about as fast, so a one-element gather in the cache has no
// kernel left to win with.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  int64_t P, M, L;
};

__attribute__((noinline)) void scalar_x4(float* __restrict out, const float* __restrict data, const int64_t* idx,
                                         const Case& c) {
  for (int64_t p = 0; p < c.P; ++p) {
    const float* s = data + p * c.M;
    float* o = out + p * c.L;
    int64_t i = 0;
    for (; i + 4 <= c.L; i += 4) {
      const float a = s[idx[i]], b = s[idx[i + 1]], d = s[idx[i + 2]], e = s[idx[i + 3]];
      o[i] = a;
      o[i + 1] = b;
      o[i + 2] = d;
      o[i + 3] = e;
    }
    for (; i < c.L; ++i) o[i] = s[idx[i]];
  }
}

__attribute__((noinline)) void four_rows_per_index(float* __restrict out, const float* __restrict data,
                                                   const int64_t* idx, const Case& c) {
  int64_t p = 0;
  for (; p + 4 <= c.P; p += 4) {
    const float* s = data + p * c.M;
    float* o = out + p * c.L;
    for (int64_t i = 0; i < c.L; ++i) {
      const int64_t j = idx[i];
      const float a = s[j], b = s[j + c.M], d = s[j + 2 * c.M], e = s[j + 3 * c.M];
      o[i] = a;
      o[i + c.L] = b;
      o[i + 2 * c.L] = d;
      o[i + 3 * c.L] = e;
    }
  }
  for (; p < c.P; ++p) {
    for (int64_t i = 0; i < c.L; ++i) out[p * c.L + i] = data[p * c.M + idx[i]];
  }
}

#ifdef HAVE_X86
__attribute__((noinline, target("avx512f"))) void avx512_gather(float* __restrict out, const float* __restrict data,
                                                                  const int32_t* idx32, const Case& c) {
  for (int64_t p = 0; p < c.P; ++p) {
    const float* s = data + p * c.M;
    float* o = out + p * c.L;
    int64_t i = 0;
    for (; i + 16 <= c.L; i += 16) {
      _mm512_storeu_ps(o + i, _mm512_i32gather_ps(_mm512_loadu_si512(idx32 + i), s, 4));
    }
    for (; i < c.L; ++i) o[i] = s[idx32[i]];
  }
}

__attribute__((noinline, target("avx2"))) void avx2_gather(float* __restrict out, const float* __restrict data,
                                                            const int32_t* idx32, const Case& c) {
  for (int64_t p = 0; p < c.P; ++p) {
    const float* s = data + p * c.M;
    float* o = out + p * c.L;
    int64_t i = 0;
    for (; i + 8 <= c.L; i += 8) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx32 + i));
      _mm256_storeu_ps(o + i, _mm256_i32gather_ps(s, v, 4));
    }
    for (; i < c.L; ++i) o[i] = s[idx32[i]];
  }
}
#endif

// Seconds per call of each loop, sampled in turn (41 rounds of 200 calls each) so that the
// machine's drift hits all of them alike; returns the median time of each and the median of
// scalar's time over each, per round.
struct Timing {
  std::vector<double> ns, ratio;
};

Timing time_interleaved(const std::vector<std::function<void()>>& loops, const Case& c) {
  const size_t n = loops.size();
  std::vector<std::vector<double>> t(n), r(n);
  for (int k = 0; k < 41; ++k) {
    std::vector<double> round(n);
    for (size_t j = 0; j < n; ++j) {
      const auto t0 = Clock::now();
      for (int i = 0; i < 200; ++i) loops[j]();
      round[j] = std::chrono::duration<double>(Clock::now() - t0).count() / 200;
      t[j].push_back(round[j]);
    }
    for (size_t j = 0; j < n; ++j) r[j].push_back(round[0] / round[j]);
  }
  Timing out;
  for (size_t j = 0; j < n; ++j) {
    std::sort(t[j].begin(), t[j].end());
    std::sort(r[j].begin(), r[j].end());
    out.ns.push_back(t[j][20] * 1e9 / static_cast<double>(c.P * c.L));
    out.ratio.push_back(r[j][20]);
  }
  return out;
}

}  // namespace

int main() {
  for (const Case& c : {Case{64, 512, 128}, Case{256, 512, 128}, Case{64, 4096, 1024}}) {
    std::vector<float> data(c.P * c.M), out(c.P * c.L);
    std::vector<int64_t> idx(c.L);
    std::vector<int32_t> idx32(c.L);
    std::mt19937 gen(1);
    for (auto& x : data) x = static_cast<float>(gen());
    for (int64_t i = 0; i < c.L; ++i) idx32[i] = static_cast<int32_t>(idx[i] = gen() % c.M);
    std::vector<const char*> names{"scalar x4"};
    std::vector<std::function<void()>> loops{[&] { scalar_x4(out.data(), data.data(), idx.data(), c); }};
#ifdef HAVE_X86
    if (__builtin_cpu_supports("avx512f")) {
      names.push_back("avx512 gather");
      loops.push_back([&] { avx512_gather(out.data(), data.data(), idx32.data(), c); });
    }
    if (__builtin_cpu_supports("avx2")) {
      names.push_back("avx2 gather");
      loops.push_back([&] { avx2_gather(out.data(), data.data(), idx32.data(), c); });
    }
#endif
    names.push_back("4 rows/index");
    loops.push_back([&] { four_rows_per_index(out.data(), data.data(), idx.data(), c); });
    const Timing timing = time_interleaved(loops, c);
    std::printf("(%ld,%ld)[%ld]", static_cast<long>(c.P), static_cast<long>(c.M), static_cast<long>(c.L));
    for (size_t j = 0; j < loops.size(); ++j) {
      std::printf("  %s %.3f ns/element (%.2fx)", names[j], timing.ns[j], timing.ratio[j]);
    }
    std::printf("   (x: scalar's time over this one)\n");
  }
  return 0;
}
