#pragma once
// Grain sizes for at::parallel_for. They keep small inputs on one thread (a parallel region
// costs more than copying a few KiB) and split large ones into pieces worth a wake-up.
#include <algorithm>
#include <cstdint>

namespace caffe2ops {

// About 64 KiB of memory traffic per chunk.
constexpr int64_t kGrainBytes = 1 << 16;

inline int64_t grain_for(int64_t bytes_per_item) {
  return std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, bytes_per_item));
}

}  // namespace caffe2ops
