#include "dropout/dropout_checks.h"

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

}  // namespace caffe2ops
