// cudnn_dropout / cudnn_dropout_gradient exist only on CUDA tensors in builds with
// cuDNN. This catch-all kernel is what every other device and build gets: a clear error
// instead of the dispatcher's "could not run" message.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

[[noreturn]] void unavailable(const char* op, const at::Tensor& t) {
  TORCH_CHECK(false, "caffe2ops::", op, ": needs a CUDA tensor and a torch_caffe2ops build with "
              "CUDA and cuDNN; got a tensor on ", t.device(),
              ". Use caffe2ops::dropout, which runs on every device.");
}

std::tuple<at::Tensor, at::Tensor> cudnn_dropout_unavailable(const at::Tensor& X, double, bool,
                                                             std::optional<at::Generator>) {
  unavailable("cudnn_dropout", X);
}

at::Tensor cudnn_dropout_gradient_unavailable(const at::Tensor& dY, const at::Tensor&, double, bool) {
  unavailable("cudnn_dropout_gradient", dY);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CompositeExplicitAutograd, m) {
  C2_IMPL(m, "cudnn_dropout", &cudnn_dropout_unavailable);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_unavailable);
}

}  // namespace caffe2ops
