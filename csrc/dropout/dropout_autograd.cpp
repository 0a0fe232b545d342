// Autograd of Dropout (spec 4.1 item 4): backward is dropout_gradient(dY, mask) in training
// and dropout_gradient(dY) in test mode. The mask gets no gradient.
#include <torch/library.h>

#include "common/autograd.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;
using DropoutSig = std::tuple<Tensor, Tensor>(const Tensor&, double, bool, std::optional<at::Generator>);

decltype(auto) dropout_op() { return C2_OP("dropout", DropoutSig); }
decltype(auto) cudnn_dropout_op() { return C2_OP("cudnn_dropout", DropoutSig); }
decltype(auto) dropout_gradient_op() {
  return C2_OP("dropout_gradient", Tensor(const Tensor&, const std::optional<Tensor>&, double, bool));
}
decltype(auto) cudnn_dropout_gradient_op() {
  return C2_OP("cudnn_dropout_gradient", Tensor(const Tensor&, const Tensor&, double, bool));
}

class DropoutFn : public torch::autograd::Function<DropoutFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& X, double ratio, bool is_test,
                               std::optional<at::Generator> generator) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [Y, mask] = dropout_op().call(X, ratio, is_test, generator);
    ctx->mark_non_differentiable({mask});
    if (!is_test) ctx->save_for_backward({mask});
    ctx->saved_data["ratio"] = ratio;
    ctx->saved_data["is_test"] = is_test;
    return {Y, mask};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool is_test = ctx->saved_data["is_test"].toBool();
    std::optional<Tensor> mask;
    if (!is_test) mask = ctx->get_saved_variables()[0];
    auto dX = dropout_gradient_op().call(grads[0], mask, ctx->saved_data["ratio"].toDouble(), is_test);
    return {dX, Tensor(), Tensor(), Tensor()};
  }
};

// cudnn_dropout's backward needs the opaque reserve space (spec 4.3).
class CudnnDropoutFn : public torch::autograd::Function<CudnnDropoutFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& X, double ratio, bool is_test,
                               std::optional<at::Generator> generator) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [Y, reserve] = cudnn_dropout_op().call(X, ratio, is_test, generator);
    ctx->mark_non_differentiable({reserve});
    ctx->save_for_backward({reserve});
    ctx->saved_data["ratio"] = ratio;
    ctx->saved_data["is_test"] = is_test;
    return {Y, reserve};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto dX = cudnn_dropout_gradient_op().call(grads[0], ctx->get_saved_variables()[0],
                                               ctx->saved_data["ratio"].toDouble(), ctx->saved_data["is_test"].toBool());
    return {dX, Tensor(), Tensor(), Tensor()};
  }
};

// Both gradients are linear in dY (dX = dY * mask * scale): along ggX their derivative is the
// same gradient op applied to ggX.
class DropoutGradientFn : public torch::autograd::Function<DropoutGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& dY, const std::optional<Tensor>& mask, double ratio, bool is_test) {
    at::AutoDispatchBelowADInplaceOrView guard;
    if (mask.has_value() && mask->defined()) ctx->save_for_backward({*mask});
    ctx->saved_data["ratio"] = ratio;
    ctx->saved_data["is_test"] = is_test;
    return dropout_gradient_op().call(dY, mask, ratio, is_test);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor(), Tensor()};
    auto saved = ctx->get_saved_variables();
    std::optional<Tensor> mask;
    if (!saved.empty()) mask = saved[0];
    return {dropout_gradient_op().call(grads[0], mask, ctx->saved_data["ratio"].toDouble(),
                                       ctx->saved_data["is_test"].toBool()),
            Tensor(), Tensor(), Tensor()};
  }
};

class CudnnDropoutGradientFn : public torch::autograd::Function<CudnnDropoutGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& dY, const Tensor& reserve_space, double ratio, bool is_test) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({reserve_space});
    ctx->saved_data["ratio"] = ratio;
    ctx->saved_data["is_test"] = is_test;
    return cudnn_dropout_gradient_op().call(dY, reserve_space, ratio, is_test);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor(), Tensor()};
    return {cudnn_dropout_gradient_op().call(grads[0], ctx->get_saved_variables()[0],
                                             ctx->saved_data["ratio"].toDouble(), ctx->saved_data["is_test"].toBool()),
            Tensor(), Tensor(), Tensor()};
  }
};

Tensor dropout_gradient_autograd(const Tensor& dY, const std::optional<Tensor>& mask, double ratio, bool is_test) {
  if (!grad_needed(dY)) return call_below_autograd(dropout_gradient_op(), dY, mask, ratio, is_test);
  return DropoutGradientFn::apply(dY, mask, ratio, is_test);
}

Tensor cudnn_dropout_gradient_autograd(const Tensor& dY, const Tensor& reserve_space, double ratio, bool is_test) {
  if (!grad_needed(dY)) return call_below_autograd(cudnn_dropout_gradient_op(), dY, reserve_space, ratio, is_test);
  return CudnnDropoutGradientFn::apply(dY, reserve_space, ratio, is_test);
}

std::tuple<Tensor, Tensor> cudnn_dropout_autograd(const Tensor& X, double ratio, bool is_test,
                                        std::optional<at::Generator> generator) {
  if (!grad_needed(X)) return call_below_autograd(cudnn_dropout_op(), X, ratio, is_test, generator);
  auto out = CudnnDropoutFn::apply(X, ratio, is_test, generator);
  return {out[0], out[1]};
}

std::tuple<Tensor, Tensor> dropout_autograd(const Tensor& X, double ratio, bool is_test,
                                  std::optional<at::Generator> generator) {
  if (!grad_needed(X)) return call_below_autograd(dropout_op(), X, ratio, is_test, generator);
  auto out = DropoutFn::apply(X, ratio, is_test, generator);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  C2_IMPL(m, "dropout", &dropout_autograd);
  C2_IMPL(m, "cudnn_dropout", &cudnn_dropout_autograd);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_autograd);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_autograd);
}

}  // namespace caffe2ops
