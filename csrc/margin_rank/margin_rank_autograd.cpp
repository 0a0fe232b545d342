// Autograd of MarginRankingCriterion: backward is the gradient op; Y gets
// no gradient.
#include <torch/library.h>

#include "common/autograd.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

decltype(auto) criterion_op() {
  return C2_OP("margin_ranking_criterion", Tensor(const Tensor&, const Tensor&, const Tensor&, double));
}

decltype(auto) criterion_gradient_op() {
  return C2_OP("margin_ranking_criterion_gradient",
               std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double));
}

class MarginRankingCriterionFn : public torch::autograd::Function<MarginRankingCriterionFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& X1, const Tensor& X2, const Tensor& Y, double margin) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({X1, X2, Y});
    ctx->saved_data["margin"] = margin;
    return criterion_op().call(X1, X2, Y, margin);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto [d1, d2] = criterion_gradient_op().call(s[0], s[1], s[2], grads[0], ctx->saved_data["margin"].toDouble());
    return {d1, d2, Tensor(), Tensor()};
  }
};

// dX1 = -y dLoss [active], dX2 = y dLoss [active]: linear in dLoss and piecewise constant in
// X1, X2 (zero derivative almost everywhere, as for torch's clamp). Along (gg1, gg2) the
// derivative for dLoss is the gradient op's dX1 at gg1 plus its dX2 at gg2.
class MarginRankingCriterionGradientFn : public torch::autograd::Function<MarginRankingCriterionGradientFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& X1, const Tensor& X2, const Tensor& Y, const Tensor& dLoss,
                               double margin) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({X1, X2, Y});
    ctx->saved_data["margin"] = margin;
    ctx->saved_data["dloss_shape"] = dLoss.sym_sizes().vec();
    auto [d1, d2] = criterion_gradient_op().call(X1, X2, Y, dLoss, margin);
    return {d1, d2};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const double margin = ctx->saved_data["margin"].toDouble();
    const auto shape = ctx->saved_data["dloss_shape"].toSymIntVector();
    Tensor d_loss;
    if (grads[0].defined()) {
      d_loss = std::get<0>(criterion_gradient_op().call(s[0], s[1], s[2], grads[0], margin)).reshape_symint(shape);
    }
    if (grads[1].defined()) {
      auto t = std::get<1>(criterion_gradient_op().call(s[0], s[1], s[2], grads[1], margin)).reshape_symint(shape);
      d_loss = d_loss.defined() ? d_loss.add(t) : t;
    }
    return {Tensor(), Tensor(), Tensor(), d_loss, Tensor()};
  }
};

std::tuple<Tensor, Tensor> margin_ranking_criterion_gradient_autograd(const Tensor& X1, const Tensor& X2, const Tensor& Y, const Tensor& dLoss,
                                                            double margin) {
  if (!grad_needed(X1, X2, dLoss)) return call_below_autograd(criterion_gradient_op(), X1, X2, Y, dLoss, margin);
  auto out = MarginRankingCriterionGradientFn::apply(X1, X2, Y, dLoss, margin);
  return {out[0], out[1]};
}

Tensor margin_ranking_criterion_autograd(const Tensor& X1, const Tensor& X2, const Tensor& Y, double margin) {
  if (!grad_needed(X1, X2)) return call_below_autograd(criterion_op(), X1, X2, Y, margin);
  return MarginRankingCriterionFn::apply(X1, X2, Y, margin);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  C2_IMPL(m, "margin_ranking_criterion", &margin_ranking_criterion_autograd);
  C2_IMPL(m, "margin_ranking_criterion_gradient", &margin_ranking_criterion_gradient_autograd);
}

}  // namespace caffe2ops
