#pragma once
// A split's pieces copied straight from the input's own strides: the CUDA kernels use it for
// every input, the CPU kernel for non-contiguous ones (a contiguous input takes block_copy).
#include <ATen/core/Tensor.h>

#include <vector>

namespace caffe2ops {

// The pieces of `input` along `axis` with the given extents (with add_axis one slice each,
// without the axis), each a fresh contiguous tensor, never a view.
std::vector<at::Tensor> copy_split_pieces(const at::Tensor& input, int64_t axis,
                                          const std::vector<int64_t>& sizes, bool add_axis);

}  // namespace caffe2ops
