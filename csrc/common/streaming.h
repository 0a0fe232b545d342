#pragma once
// When a CPU kernel writes its output with non-temporal (streaming) stores, and the pieces
// every such kernel needs.
//
// An ordinary store to a line that is not in the cache first reads the line from memory (a
// read for ownership), then evicts another line to make room. When a call moves more bytes
// than the last-level cache holds, the lines it writes first are evicted before it ends
// anyway, so the read buys nothing: writing around the cache saves a third of the memory
// traffic of a one-read-one-write pass. Below that size the output would still be in the
// cache for whoever reads it next, and streaming it out would cost that reader a trip to
// memory.
//
// The size is fixed rather than asked of the machine: 32 MiB is the L3 of one Zen core complex
// and about what one core of a current Xeon gets of its shared L3 under load, and inside a
// virtual machine the reported sizes are not to be trusted (on the project's VM sysconf says
// 320 MiB where sysfs says 32 MiB).
#include <cstdint>

#include "common/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// The streaming forms (AVX-512 intrinsics, chosen at run time) are compiled.
#define C2_STREAMING_X86 1
#endif

namespace caffe2ops {

constexpr int64_t kStreamingStoreBytes = int64_t{32} << 20;

// bytes: what the call actually reads and writes.
inline bool streaming_stores_pay(int64_t bytes) { return bytes >= kStreamingStoreBytes; }

// Whether the streaming forms run here: they write one 64-byte line per store (AVX-512).
// Four 16-byte streaming stores per line measured 2x slower than ordinary stores in a gather,
// so machines without AVX-512 keep ordinary stores.
inline bool line_streaming_available() { return cpu_has_avx512bw(); }

inline bool line_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

// Streaming stores are weakly ordered: a task that issued some fences before it ends (the
// thread pool's join then publishes its stores) and before it stores ordinarily to lines it
// streamed.
// No test can catch a missing fence; each use says why it is where it is.
inline void streaming_fence() {
#ifdef C2_STREAMING_X86
  _mm_sfence();
#endif
}

}  // namespace caffe2ops
