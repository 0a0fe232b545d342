#pragma once
// Grain sizes for at::parallel_for. They keep small inputs on one thread (a parallel region
// costs more than copying a few KiB) and split large ones into pieces worth a wake-up.
#include <algorithm>
#include <cstdint>

namespace caffe2ops {

// About 64 KiB of memory traffic per chunk, for loops that also compute (they scale their
// bytes per item by the work per byte).
constexpr int64_t kGrainBytes = 1 << 16;

inline int64_t grain_for(int64_t bytes_per_item) {
  return std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, bytes_per_item));
}

// Loops that only move bytes (gathers, concat, split; the transposed tiles of
// transpose_copy.cpp work on every element and keep grain_for): 256 KiB of traffic, reads and writes,
// per chunk, about 4 us at the rate one core copies within the cache. Opening a parallel region
// costs about 1 us on the project's 2-core machine (benchmarks/cpp/kernels_vs_aten.cpp): two
// chunks of 1 us each measured 2.06 us in a region against 2.23 us one after the other, so
// smaller chunks gain nothing, and calls of a few microseconds lose to the region's cost.
constexpr int64_t kCopyGrainBytes = 1 << 18;

inline int64_t copy_grain_for(int64_t traffic_per_item) {
  return std::max<int64_t>(1, kCopyGrainBytes / std::max<int64_t>(1, traffic_per_item));
}

}  // namespace caffe2ops
