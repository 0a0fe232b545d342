#pragma once
// Argument checks shared by every op: dtypes, ranks, devices, index ranges. Each message starts
// with "caffe2ops::<op>: " and names the argument and the offending value, so a failure inside a
// large ported net points at the call that caused it.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <functional>
#include <string>

#define C2_CHECK(cond, op, ...) TORCH_CHECK((cond), "caffe2ops::", op, ": ", __VA_ARGS__)

namespace caffe2ops {

void check_dim(const char* op, const char* arg, const at::Tensor& t, int64_t dim);
void check_min_dim(const char* op, const char* arg, const at::Tensor& t, int64_t min_dim);
// int32 or int64 (the rule for every index and length input).
void check_index_dtype(const char* op, const char* arg, const at::Tensor& t);
// float32 or float64, plus float16/bfloat16 when allow_half.
void check_floating(const char* op, const char* arg, const at::Tensor& t, bool allow_half = true);
void check_same_dtype(const char* op, const char* arg_a, const at::Tensor& a, const char* arg_b,
                      const at::Tensor& b);
// All tensors on `like`'s device; the kernels index raw pointers of one device.
void check_same_device(const char* op, const char* arg_a, const at::Tensor& a, const char* arg_b,
                       const at::Tensor& b);
void check_cpu(const char* op, const char* arg, const at::Tensor& t);

// Describes an out-of-range index for ops whose Caffe2 message users may already grep for.
using IndexErrorText = std::function<std::string(int64_t position, int64_t value)>;

// Every element of `indices` (int32/int64, any device) lies in [0, bound). On failure the
// error names the first offending position and its value; negative values never wrap.
void check_indices_in_range(const char* op, const char* arg, const at::Tensor& indices,
                            int64_t bound, const IndexErrorText& text = nullptr);

}  // namespace caffe2ops
