#pragma once
// Argument rules of MarginRankingCriterion(Gradient) (spec 6.1): only numel is compared, the
// outputs take X1's shape; Y is int32/int64 or X1's floating dtype.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

namespace caffe2ops {

void check_margin_ranking(const char* op, const at::Tensor& X1, const at::Tensor& X2,
                          const at::Tensor& Y);
void check_margin_ranking_gradient(const at::Tensor& X1, const at::Tensor& X2, const at::Tensor& Y,
                                   const at::Tensor& dLoss);

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
