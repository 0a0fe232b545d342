// Autograd of MarginRankingCriterion (spec 6.1 item 4): backward is the gradient op; Y gets
// no gradient. dX2 is reshaped to X2's shape (only numel has to match X1's).
#include <torch/library.h>

#include "common/autograd.h"

namespace caffe2ops {
namespace {

using T = at::Tensor;

decltype(auto) criterion_op() {
  return C2_OP("margin_ranking_criterion", T(const T&, const T&, const T&, double));
}

class MarginRankingCriterionFn : public torch::autograd::Function<MarginRankingCriterionFn> {
 public:
  static T forward(AutogradContext* ctx, const T& X1, const T& X2, const T& Y, double margin) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({X1, X2, Y});
    ctx->saved_data["margin"] = margin;
    return criterion_op().call(X1, X2, Y, margin);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto [d1, d2] = C2_OP("margin_ranking_criterion_gradient",
                          std::tuple<T, T>(const T&, const T&, const T&, const T&, double))
                        .call(s[0], s[1], s[2], grads[0], ctx->saved_data["margin"].toDouble());
    return {d1, d2.reshape_symint(s[1].sym_sizes()), T(), T()};
  }
};

T margin_ranking_criterion_autograd(const T& X1, const T& X2, const T& Y, double margin) {
  if (!grad_needed(X1, X2)) return call_below_autograd(criterion_op(), X1, X2, Y, margin);
  return MarginRankingCriterionFn::apply(X1, X2, Y, margin);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  m.impl("margin_ranking_criterion", &margin_ranking_criterion_autograd);
  m.impl("margin_ranking_criterion_gradient", no_gradient());
}

}  // namespace caffe2ops
