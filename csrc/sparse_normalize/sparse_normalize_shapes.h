#pragma once
// Argument rules of SparseNormalize / Float16SparseNormalize, shared by the CPU, CUDA
// and Meta kernels.
#include <ATen/core/Tensor.h>

namespace caffe2ops {

// param rank >= 1 (float32/float64/float16, or float16 only when `float16_only`), indices
// int32/int64 on param's device, norm >= 0. The unused grad input is not looked at.
void check_sparse_normalize(const char* op, const at::Tensor& param, const at::Tensor& indices,
                            double norm, bool float16_only);
// The same, and param must own its elements (no stride-0 / expanded dims) to be written in place.
void check_sparse_normalize_in_place(const char* op, const at::Tensor& param, const at::Tensor& indices,
                                     double norm, bool float16_only);

}  // namespace caffe2ops
