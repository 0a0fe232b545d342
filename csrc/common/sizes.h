#pragma once
// Sizes and axes. Axis and storage-order rules, lengths -> offsets, symbolic products, and the
// size arithmetic every op does before it allocates: extents are non-negative, their sums and
// products fit int64 (and int32 where the result leaves as int32, like concat's split_info),
// and the number of outputs of one call is bounded. Caffe2 did this arithmetic unchecked, so a
// wrapped sum could yield a "valid" wrong answer; here it raises with the op's own message.
#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace caffe2ops {

// Outputs one call may return (split's pieces). Each output is a tensor object (~hundreds of
// bytes even when empty); Caffe2 nets have tens to thousands, never millions.
constexpr int64_t kMaxOutputs = int64_t{1} << 16;

// Each value >= 0; returns their sum, raising if it does not fit int64.
int64_t checked_sum(const char* op, const char* arg, c10::ArrayRef<int64_t> values);

// The element count of `shape` and its size in bytes fit int64 (symbolic dims are skipped:
// their guards are checked when they become concrete).
void check_shape_fits(const char* op, const char* arg, c10::SymIntArrayRef shape,
                      int64_t element_size);
void check_shape_fits(const char* op, const char* arg, c10::IntArrayRef shape, int64_t element_size);

// 0 <= value <= INT32_MAX, for extents stored in an int32 output.
void check_fits_int32(const char* op, const char* arg, int64_t value);

// 1 <= count <= kMaxOutputs.
void check_output_count(const char* op, const char* arg, int64_t count);

// lengths (int32/int64, 1-D, any device) -> exclusive prefix sums of size B + 1, on the host.
// Rejects negative lengths, which Caffe2 turned into out-of-bounds writes.
std::vector<int64_t> lengths_to_offsets(const char* op, const char* arg, const at::Tensor& lengths);

// -n <= axis < n, negative counts from the end.
int64_t canonical_axis(const char* op, int64_t axis, int64_t ndim);
// "NCHW"/"nchw" -> 1, "NHWC"/"nhwc" -> 3.
int64_t order_to_axis(const char* op, const std::string& order);
// true for NHWC, false for NCHW; anything else raises like order_to_axis.
bool order_is_nhwc(const char* op, const std::string& order);

c10::SymInt sym_prod(c10::SymIntArrayRef sizes, int64_t begin, int64_t end);

}  // namespace caffe2ops
