#include "dropout/dropout_shapes.h"

#include "common/checks.h"

namespace caffe2ops {

void check_dropout_ratio(const char* op, double ratio) {
  C2_CHECK(ratio >= 0.0 && ratio < 1.0, op, "ratio must be in [0, 1), got ", ratio);
}

void check_dropout_input(const char* op, const at::Tensor& X, double ratio) {
  check_dropout_ratio(op, ratio);
  check_floating(op, "X", X);
}

void check_dropout_gradient(const at::Tensor& dY, const std::optional<at::Tensor>& mask,
                            double ratio, bool is_test) {
  constexpr const char* op = "dropout_gradient";
  check_dropout_input(op, dY, ratio);
  if (is_test) return;
  C2_CHECK(mask.has_value() && mask->defined(), op, "mask is required when is_test=False");
  C2_CHECK(mask->scalar_type() == at::kBool, op, "mask must be bool, got ", mask->scalar_type());
  check_same_device(op, "dY", dY, "mask", *mask);
  C2_CHECK(mask->sym_numel() == dY.sym_numel(), op, "mask has ", mask->sym_numel(),
           " elements but dY has ", dY.sym_numel());
}

void check_cudnn_dropout_input(const at::Tensor& X, double ratio) {
  constexpr const char* op = "cudnn_dropout";
  check_dropout_input(op, X, ratio);
  C2_CHECK(X.scalar_type() != at::kBFloat16, op, "X must be float32, float64 or float16 for cuDNN, got BFloat16");
}

void check_cudnn_dropout_gradient(const at::Tensor& dY, const at::Tensor& reserve_space, double ratio,
                                  bool is_test) {
  constexpr const char* op = "cudnn_dropout_gradient";
  check_dropout_input(op, dY, ratio);
  C2_CHECK(dY.scalar_type() != at::kBFloat16, op, "dY must be float32, float64 or float16 for cuDNN, got BFloat16");
  if (is_test) return;  // the reserve space is not read
  C2_CHECK(reserve_space.scalar_type() == at::kByte && reserve_space.dim() == 1, op,
           "reserve_space must be the 1-D uint8 tensor cudnn_dropout returned, got ",
           reserve_space.scalar_type(), " of shape ", reserve_space.sizes());
  check_same_device(op, "dY", dY, "reserve_space", reserve_space);
}

}  // namespace caffe2ops
