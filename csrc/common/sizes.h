#pragma once
// Size arithmetic every op does before it allocates: extents are non-negative, their sums and
// products fit int64 (and int32 where the result leaves as int32, like concat's split_info),
// and the number of outputs of one call is bounded. Caffe2 did this arithmetic unchecked, so a
// wrapped sum could yield a "valid" wrong answer; here it raises with the op's own message.
#include <c10/core/SymInt.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>

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

}  // namespace caffe2ops
