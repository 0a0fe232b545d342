#pragma once
// What every device's sparse_normalize kernels share around the row loop: the functional variant
// (one copy, then the in-place kernel) and the in-place one (through a contiguous temporary when
// param is not contiguous), both after the shared argument rules.
#include <ATen/core/Tensor.h>

namespace caffe2ops {

// The device's kernel: normalises the listed rows of a contiguous `param` in place (indices
// range-checked by it).
using NormalizeRowsFn = void (*)(const char* op, const at::Tensor& param, const at::Tensor& indices,
                                 bool use_max_norm, double norm);

at::Tensor sparse_normalize_functional(const char* op, NormalizeRowsFn kernel, const at::Tensor& param,
                                       const at::Tensor& indices, bool use_max_norm, double norm,
                                       bool float16_only);
at::Tensor& sparse_normalize_in_place(const char* op, NormalizeRowsFn kernel, at::Tensor& param,
                                      const at::Tensor& indices, bool use_max_norm, double norm,
                                      bool float16_only);

}  // namespace caffe2ops
