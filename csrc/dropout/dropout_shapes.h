#pragma once
// Argument and shape rules of Dropout / DropoutGrad and their cuDNN variants,
// shared by every device's kernels and the Meta kernels.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include <optional>

namespace caffe2ops {

// Caffe2 checks 0 <= ratio < 1 at construction, in test mode too.
void check_dropout_ratio(const char* op, double ratio);
void check_dropout_input(const char* op, const at::Tensor& X, double ratio);
// Train mode: mask required, bool, numel of dY. Test mode: mask ignored.
void check_dropout_gradient(const at::Tensor& dY, const std::optional<at::Tensor>& mask,
                            double ratio, bool is_test);
// cudnn_dropout: float32, float64 or float16. Its gradient reads the 1-D uint8
// reserve space on dY's device, except in test mode.
void check_cudnn_dropout_input(const at::Tensor& X, double ratio);
void check_cudnn_dropout_gradient(const at::Tensor& dY, const at::Tensor& reserve_space, double ratio,
                                  bool is_test);

#ifdef WITH_CUDNN
// The size of cudnn_dropout's reserve space is cuDNN's own function of the dtype and the element
// count (cudnnDropoutGetReserveSpaceSize for X described as (numel, 1, 1, 1), numel > 0); the
// CUDA and Meta kernels both ask cuDNN. Defined beside the cuDNN descriptors in dropout_cuda.cu.
int64_t cudnn_dropout_reserve_bytes(at::ScalarType dtype, int64_t numel);
#endif

// The factor a kept element is multiplied by: 1/(1 - ratio) in double, rounded once to the
// op-math type. Caffe2's CPU kernel and torch.native_dropout multiply by exactly this value; a
// division by (1 - ratio) would differ from both in the last bit for most ratios.
template <typename acc_t>
acc_t dropout_scale(double ratio) {
  return static_cast<acc_t>(1.0 / (1.0 - ratio));
}

}  // namespace caffe2ops
