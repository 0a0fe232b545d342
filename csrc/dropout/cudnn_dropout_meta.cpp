// Meta kernels of cudnn_dropout / cudnn_dropout_gradient (spec 4.3), so that fake tensors,
// torch.compile and torch.export can trace them. Only builds with cuDNN have them; elsewhere
// the ops raise on every device (cudnn_dropout_unavailable.cpp).
//
// The reserve space's size comes from cuDNN, which needs a concrete element count (no device
// is needed to ask): a symbolic count is specialised, so each size gets its own graph.
#ifdef WITH_CUDNN
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "dropout/cudnn_dropout_shapes.h"
#include "dropout/dropout_checks.h"

namespace caffe2ops {
namespace {

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

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "cudnn_dropout", &cudnn_dropout_meta);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_meta);
}

}  // namespace caffe2ops
#endif  // WITH_CUDNN
