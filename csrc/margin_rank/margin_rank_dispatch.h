#pragma once
// The dtype dispatch shared by the CPU and CUDA kernels of the margin-rank family: values are
// X1's floating dtype, labels Y's (int32, int64, or X1's dtype, used as is).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

namespace caffe2ops {

// Calls f(value_t{}, label_t{}) for X1's floating dtype and Y's dtype: int32, int64 or X1's.
template <typename F>
void dispatch_values_labels(const at::Tensor& X1, const at::Tensor& Y, F&& f) {
  AT_DISPATCH_FLOATING_TYPES(X1.scalar_type(), "margin_ranking_criterion", [&] {
    using value_t = scalar_t;
    switch (Y.scalar_type()) {
      case at::kInt: f(value_t{}, int32_t{}); break;
      case at::kLong: f(value_t{}, int64_t{}); break;
      default: f(value_t{}, value_t{}); break;
    }
  });
}

}  // namespace caffe2ops
