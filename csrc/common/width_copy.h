#pragma once
// Copies whose byte count is fixed for a whole loop but known only at run time: a concat
// piece's row, a gathered block. A call to memcpy, or a loop with a run-time trip count,
// costs more than copying a few bytes, so the loop is instantiated once per width class and
// every copy in it is one or two fixed-size moves:
//   Exact<K>    n == K (a power of two up to 256 bytes),
//   Overlap<K>  K < n < 2K: a K-byte move at the start and one ending at n; they overlap,
//               which is harmless as source and destination never do,
//   LongCopy    n > 256: copy_bytes_inline (256-byte steps).
// A loop picks its class once (copy_class), then runs with_copy_class(cls, f), which calls
// f with the class as a type.
#include <cstdint>
#include <cstring>

#include "common/simd.h"

namespace caffe2ops {

// Plain vector loads and stores: fixed-size memcpy calls become vector moves, 256 bytes a
// step. glibc's memcpy (which GCC would also substitute for a loop of 8-byte moves) measured
// slower here: its non-temporal stores for large copies lose 15-30% against ordinary stores
// into freshly allocated outputs (ATen's copy_ uses ordinary stores too).
C2_ALWAYS_INLINE void copy_bytes_inline(char* dst, const char* src, int64_t n) {
  if (n < 32) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    return;
  }
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) std::memcpy(dst + i, src + i, 256);
  for (; i + 32 <= n; i += 32) std::memcpy(dst + i, src + i, 32);
  if (i < n) std::memcpy(dst + n - 32, src + n - 32, 32);
}

// The same as a call, for loops that are not cloned themselves.
C2_SIMD_CLONES inline void copy_bytes(char* dst, const char* src, int64_t n) { copy_bytes_inline(dst, src, n); }

// Zeroes n bytes with plain vector stores. std::fill(..., 0) becomes glibc's memset, whose
// `rep stosb` measured 1.3x slower than these stores on freshly mapped output (a gather
// gradient's 64 MB: 43 ms against 33 ms, most of it page faults either way).
C2_SIMD_CLONES inline void zero_bytes(char* dst, int64_t n) {
  static constexpr char kZeros[64] = {};
  if (n < 64) {
    for (int64_t i = 0; i < n; ++i) dst[i] = 0;
    return;
  }
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) std::memcpy(dst + i, kZeros, 64);
  if (i < n) std::memcpy(dst + n - 64, kZeros, 64);
}

namespace width {

// kVector: the copy is wide enough for a loop of them to gain from being compiled for wider
// vectors (simd_loop).
template <int64_t kBytes>
struct Exact {
  static constexpr bool kVector = kBytes >= 32;
  static constexpr int64_t bytes(int64_t) { return kBytes; }
  C2_ALWAYS_INLINE static void copy(char* dst, const char* src, int64_t) {
    std::memcpy(dst, src, kBytes);
  }
};

template <int64_t kBytes>
struct Overlap {
  static constexpr bool kVector = kBytes >= 32;
  static constexpr int64_t bytes(int64_t n) { return n; }
  C2_ALWAYS_INLINE static void copy(char* dst, const char* src, int64_t n) {
    std::memcpy(dst, src, kBytes);
    std::memcpy(dst + n - kBytes, src + n - kBytes, kBytes);
  }
};

struct LongCopy {
  static constexpr bool kVector = true;
  static constexpr int64_t bytes(int64_t n) { return n; }
  // Inline, not a call: a call through the clones' dispatch costs more than a row of a few
  // hundred bytes.
  C2_ALWAYS_INLINE static void copy(char* dst, const char* src, int64_t n) { copy_bytes_inline(dst, src, n); }
};

}  // namespace width

// 0: nothing to copy; 1: longer than 256 bytes; 2 + 2k: exactly 2^k bytes; 3 + 2k: between
// 2^k and 2^(k+1).
constexpr int kLongCopyClass = 1;

constexpr int copy_class(int64_t n) {
  if (n <= 0) return 0;
  if (n > 256) return kLongCopyClass;
  const int k = 63 - __builtin_clzll(static_cast<unsigned long long>(n));
  return 2 + 2 * k + (n != (int64_t{1} << k) ? 1 : 0);
}

// f must be a C2_INLINE_LAMBDA when called from a C2_SIMD_CLONES function, so that each
// clone compiles the moves with its own vector width.
template <typename F>
C2_ALWAYS_INLINE void with_copy_class(int cls, F&& f) {
  using namespace width;
  switch (cls) {
    case 2: return f(Exact<1>{});
    case 4: return f(Exact<2>{});
    case 5: return f(Overlap<2>{});
    case 6: return f(Exact<4>{});
    case 7: return f(Overlap<4>{});
    case 8: return f(Exact<8>{});
    case 9: return f(Overlap<8>{});
    case 10: return f(Exact<16>{});
    case 11: return f(Overlap<16>{});
    case 12: return f(Exact<32>{});
    case 13: return f(Overlap<32>{});
    case 14: return f(Exact<64>{});
    case 15: return f(Overlap<64>{});
    case 16: return f(Exact<128>{});
    case 17: return f(Overlap<128>{});
    case 18: return f(Exact<256>{});
    default: return f(LongCopy{});  // kLongCopyClass; class 0 copies n = 0 bytes
  }
}

}  // namespace caffe2ops
