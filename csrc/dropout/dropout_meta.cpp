// Meta kernels of the dropout family. cudnn_dropout's exist only in builds with cuDNN (elsewhere
// the op raises on every device, dropout_composite.cpp); its reserve space's size comes from
// cuDNN, which needs a concrete element count (no device is needed to ask): a symbolic count is
// specialised, so each size gets its own graph.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "dropout/dropout_shapes.h"

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

#ifdef WITH_CUDNN
std::tuple<at::Tensor, at::Tensor> cudnn_dropout_meta(const at::Tensor& X, double ratio, bool is_test,
                                                      std::optional<at::Generator>) {
  check_cudnn_dropout_input(X, ratio);
  auto Y = at::empty_symint(X.sym_sizes(), X.options());
  int64_t reserve = 0;
  if (!is_test) {
    const int64_t numel = X.sym_numel().guard_int(__FILE__, __LINE__);
    if (numel > 0) reserve = cudnn_dropout_reserve_bytes(X.scalar_type(), numel);
  }
  return {Y, at::empty({reserve}, X.options().dtype(at::kByte))};
}

at::Tensor cudnn_dropout_gradient_meta(const at::Tensor& dY, const at::Tensor& reserve_space, double ratio,
                                       bool is_test) {
  check_cudnn_dropout_gradient(dY, reserve_space, ratio, is_test);
  return at::empty_symint(dY.sym_sizes(), dY.options());
}

#endif  // WITH_CUDNN

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "dropout", &dropout_meta);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_meta);
#ifdef WITH_CUDNN
  C2_IMPL(m, "cudnn_dropout", &cudnn_dropout_meta);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_meta);
#endif
}

}  // namespace caffe2ops
