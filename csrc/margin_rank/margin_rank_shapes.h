#pragma once
// Argument rules of MarginRankingCriterion(Gradient): only numel is compared; the
// loss and dX1 take X1's shape, dX2 takes X2's; Y is int32/int64 or X1's floating dtype.
#include <ATen/core/Tensor.h>

namespace caffe2ops {

void check_margin_ranking(const char* op, const at::Tensor& X1, const at::Tensor& X2,
                          const at::Tensor& Y);
void check_margin_ranking_gradient(const at::Tensor& X1, const at::Tensor& X2, const at::Tensor& Y,
                                   const at::Tensor& dLoss);

}  // namespace caffe2ops
