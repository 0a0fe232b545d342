// Autograd of Dropout: backward is dropout_gradient(dY, mask) in training
// and dropout_gradient(dY) in test mode; cudnn_dropout's is cudnn_dropout_gradient(dY, reserve
// space). The mask and the reserve space get no gradient.
#include <torch/library.h>

#include <string_view>

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

// What both forwards and both gradient ops keep for their backward: the second output of the
// forward (dropout's mask, none in test mode where it is not read; cudnn_dropout's reserve
// space, always) and the arguments of the gradient op.
void save_for_gradient(AutogradContext* ctx, const std::optional<Tensor>& mask_or_reserve, double ratio,
                       bool is_test, bool cudnn) {
  if (mask_or_reserve.has_value() && mask_or_reserve->defined()) ctx->save_for_backward({*mask_or_reserve});
  ctx->saved_data["ratio"] = ratio;
  ctx->saved_data["is_test"] = is_test;
  ctx->saved_data["cudnn"] = cudnn;
}

Tensor call_gradient(const Tensor& dY, const std::optional<Tensor>& mask_or_reserve, double ratio, bool is_test,
                     bool cudnn) {
  // An undefined reserve space (possible from C++ in test mode, where it is not read) is not
  // saved; hand the op an undefined tensor again.
  if (cudnn) return cudnn_dropout_gradient_op().call(dY, mask_or_reserve.value_or(Tensor()), ratio, is_test);
  return dropout_gradient_op().call(dY, mask_or_reserve, ratio, is_test);
}

// The gradient op applied to dY with what save_for_gradient kept.
Tensor saved_gradient(AutogradContext* ctx, const Tensor& dY) {
  auto saved = ctx->get_saved_variables();
  std::optional<Tensor> mask_or_reserve;
  if (!saved.empty()) mask_or_reserve = saved[0];
  return call_gradient(dY, mask_or_reserve, ctx->saved_data["ratio"].toDouble(),
                       ctx->saved_data["is_test"].toBool(), ctx->saved_data["cudnn"].toBool());
}

// dropout and cudnn_dropout: the backward is their gradient op of dY.
class DropoutFn : public torch::autograd::Function<DropoutFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& X, double ratio, bool is_test,
                               std::optional<at::Generator> generator, bool cudnn) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [Y, mask_or_reserve] = (cudnn ? cudnn_dropout_op() : dropout_op()).call(X, ratio, is_test, generator);
    ctx->mark_non_differentiable({mask_or_reserve});
    save_for_gradient(ctx, (cudnn || !is_test) ? std::optional<Tensor>(mask_or_reserve) : std::nullopt, ratio,
                      is_test, cudnn);
    return {Y, mask_or_reserve};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {saved_gradient(ctx, grads[0]), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// Both gradients are linear in dY (dX = dY * mask * scale): along ggX their derivative is the
// same gradient op applied to ggX.
class DropoutGradientFn : public torch::autograd::Function<DropoutGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& dY, const std::optional<Tensor>& mask_or_reserve,
                        double ratio, bool is_test, bool cudnn) {
    at::AutoDispatchBelowADInplaceOrView guard;
    save_for_gradient(ctx, mask_or_reserve, ratio, is_test, cudnn);
    return call_gradient(dY, mask_or_reserve, ratio, is_test, cudnn);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return variable_list(5);
    return {saved_gradient(ctx, grads[0]), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// Registered as dropout and as cudnn_dropout; `op` is the name it was called by.
std::tuple<Tensor, Tensor> dropout_autograd(const char* op, const Tensor& X, double ratio, bool is_test,
                                            std::optional<at::Generator> generator) {
  const bool cudnn = std::string_view(op) == "cudnn_dropout";
  if (!grad_needed(X)) {
    return call_below_autograd(cudnn ? cudnn_dropout_op() : dropout_op(), X, ratio, is_test, generator);
  }
  auto out = DropoutFn::apply(X, ratio, is_test, generator, cudnn);
  return {out[0], out[1]};
}

Tensor dropout_gradient_autograd(const Tensor& dY, const std::optional<Tensor>& mask, double ratio, bool is_test) {
  if (!grad_needed(dY)) return call_below_autograd(dropout_gradient_op(), dY, mask, ratio, is_test);
  return DropoutGradientFn::apply(dY, mask, ratio, is_test, false);
}

Tensor cudnn_dropout_gradient_autograd(const Tensor& dY, const Tensor& reserve_space, double ratio, bool is_test) {
  if (!grad_needed(dY)) return call_below_autograd(cudnn_dropout_gradient_op(), dY, reserve_space, ratio, is_test);
  return DropoutGradientFn::apply(dY, reserve_space, ratio, is_test, true);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  C2_IMPL(m, "dropout", &dropout_autograd);
  C2_IMPL(m, "cudnn_dropout", &dropout_autograd);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_autograd);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_autograd);
}

}  // namespace caffe2ops
