// Meta kernels of the dropout family.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "dropout/dropout_checks.h"

namespace caffe2ops {
namespace {

std::tuple<at::Tensor, at::Tensor> dropout_meta(const at::Tensor& X, double ratio, bool,
                                                std::optional<at::Generator>) {
  check_dropout_input("dropout", X, ratio);
  return {at::empty_symint(X.sym_sizes(), X.options()),
          at::empty_symint(X.sym_sizes(), X.options().dtype(at::kBool))};
}

at::Tensor dropout_gradient_meta(const at::Tensor& dY, const std::optional<at::Tensor>& mask,
                                 double ratio, bool is_test) {
  check_dropout_gradient(dY, mask, ratio, is_test);
  return at::empty_symint(dY.sym_sizes(), dY.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "dropout", &dropout_meta);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_meta);
}

}  // namespace caffe2ops
