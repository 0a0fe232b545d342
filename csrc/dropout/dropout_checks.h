#pragma once
// Argument rules of Dropout / DropoutGrad (spec 4.1, 4.2), shared by every device's kernels.
#include <ATen/core/Tensor.h>

#include <optional>

namespace caffe2ops {

// Caffe2 checks 0 <= ratio < 1 at construction, in test mode too.
void check_dropout_ratio(const char* op, double ratio);
void check_dropout_input(const char* op, const at::Tensor& X, double ratio);
// Train mode: mask required, bool, numel of dY. Test mode: mask ignored.
void check_dropout_gradient(const at::Tensor& dY, const std::optional<at::Tensor>& mask,
                            double ratio, bool is_test);

}  // namespace caffe2ops
