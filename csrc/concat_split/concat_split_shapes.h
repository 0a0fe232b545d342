#pragma once
// Axis, shape and split-size rules of the concat/split family, shared by the
// CPU kernels, the Meta kernels and the autograd functions.
#include <ATen/core/Tensor.h>
#include <c10/util/DimVector.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <vector>

namespace caffe2ops {

// Axis rule: axis XOR order; absent axis -> order ("NCHW" -> 1); add_axis only with an axis.
// `verb` is "concat" or "split" for Caffe2's message; rank is the rank the axis indexes.
int64_t resolve_axis(const char* op, const char* verb, std::optional<int64_t> axis,
                     const std::optional<std::string>& order, bool add_axis, int64_t rank);

// The canonical axis split / depth_split / split_by_lengths cut `input` along (rank >= 1).
int64_t split_axis(const char* op, const at::Tensor& input, std::optional<int64_t> axis,
                   const std::optional<c10::string_view>& order, bool add_axis);

struct ConcatPlan {
  int64_t axis;                 // canonical, in the output's rank
  c10::SymDimVector out_shape;  // output shape
  std::vector<int64_t> sizes;   // split_info: each input's extent along the axis
};
ConcatPlan concat_plan(const char* op, at::TensorList inputs, std::optional<int64_t> axis,
                       const std::optional<std::string>& order, bool add_axis);

// The resolved piece sizes s_i of split / depth_split, checked against the input.
std::vector<int64_t> split_sizes(const char* op, const at::Tensor& input,
                                 const std::optional<at::Tensor>& split_tensor,
                                 at::IntArrayRef split, int64_t axis, bool add_axis,
                                 int64_t num_outputs);

// The piece sizes of split_by_lengths, read from `lengths` on the host.
std::vector<int64_t> split_by_lengths_sizes(const char* op, const at::Tensor& input,
                                            const at::Tensor& lengths, int64_t num_outputs,
                                            int64_t axis, bool use_scaling_lengths);

}  // namespace caffe2ops
