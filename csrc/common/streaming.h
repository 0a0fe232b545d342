#pragma once
// When a CPU kernel writes its output with non-temporal (streaming) stores.
//
// An ordinary store to a line that is not in the cache first reads the line from memory (a
// read for ownership), then evicts another line to make room. When a call touches more bytes
// than the last-level cache holds, the lines it writes first are evicted before it ends
// anyway, so the read buys nothing: writing around the cache saves a third of the memory
// traffic of a one-read-one-write pass. Below that size the output would still be in the
// cache for whoever reads it next, and streaming it out would cost that reader a trip to
// memory.
//
// The size is fixed rather than asked of the machine: 32 MiB is the L3 that one core of
// current server CPUs can use (a Zen core complex; a Xeon's share is less), and inside a
// virtual machine the reported sizes are not to be trusted (sysconf here says 320 MiB where
// sysfs says 32 MiB).
#include <cstdint>

namespace caffe2ops {

constexpr int64_t kStreamingStoreBytes = int64_t{32} << 20;

// bytes: everything the call reads and writes.
inline bool streaming_stores_pay(int64_t bytes) { return bytes >= kStreamingStoreBytes; }

// Whether the kernels' streaming forms run here: they write one 64-byte line per store
// (AVX-512). Four 16-byte streaming stores per line measured 2x slower than ordinary stores in
// a gather, so machines without AVX-512 keep ordinary stores.
inline bool line_streaming_available() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes;
#else
  return false;
#endif
}

}  // namespace caffe2ops
