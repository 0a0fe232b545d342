#pragma once
// Argument rules of SparseNormalize / Float16SparseNormalize (spec 5.1), shared by the kernels.
#include <ATen/core/Tensor.h>

namespace caffe2ops {

// param rank >= 1 (float32/float64/float16, or float16 only when `float16_only`), indices
// int32/int64 on param's device, norm >= 0. The unused grad input is not looked at.
void check_sparse_normalize(const char* op, const at::Tensor& param, const at::Tensor& indices,
                            double norm, bool float16_only);

// The device's kernel: normalises the listed rows of a contiguous `param` in place (indices
// range-checked by it).
using NormalizeRowsFn = void (*)(const char* op, const at::Tensor& param, const at::Tensor& indices,
                                 bool use_max_norm, double norm);

// The functional variant (one copy, then the kernel) and the in-place one (through a
// contiguous temporary when param is not contiguous), shared by every device.
at::Tensor sparse_normalize_functional(const char* op, NormalizeRowsFn kernel, const at::Tensor& param,
                                       const at::Tensor& indices, bool use_max_norm, double norm,
                                       bool float16_only);
at::Tensor& sparse_normalize_in_place(const char* op, NormalizeRowsFn kernel, at::Tensor& param,
                                      const at::Tensor& indices, bool use_max_norm, double norm,
                                      bool float16_only);

}  // namespace caffe2ops
