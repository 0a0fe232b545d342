// Meta kernels of the margin-rank family.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "margin_rank/margin_rank_shapes.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

Tensor margin_ranking_criterion_meta(const Tensor& X1, const Tensor& X2, const Tensor& Y, double) {
  check_margin_ranking("margin_ranking_criterion", X1, X2, Y);
  return at::empty_symint(X1.sym_sizes(), X1.options());
}

std::tuple<Tensor, Tensor> margin_ranking_criterion_gradient_meta(const Tensor& X1, const Tensor& X2, const Tensor& Y,
                                                        const Tensor& dLoss, double) {
  check_margin_ranking_gradient(X1, X2, Y, dLoss);
  return {at::empty_symint(X1.sym_sizes(), X1.options()), at::empty_symint(X2.sym_sizes(), X2.options())};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "margin_ranking_criterion", &margin_ranking_criterion_meta);
  C2_IMPL(m, "margin_ranking_criterion_gradient", &margin_ranking_criterion_gradient_meta);
}

}  // namespace caffe2ops
