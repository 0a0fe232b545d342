#pragma once
// Launch helpers for the CUDA kernels: grid-stride loops on the current stream, every launch
// checked. Only included by .cu files (CUDA builds).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

namespace caffe2ops {

constexpr int kThreads = 256;

inline dim3 grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 32;
  return dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, cap))));
}

#define C2_GRID_STRIDE(i, n)                                                          \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace caffe2ops
