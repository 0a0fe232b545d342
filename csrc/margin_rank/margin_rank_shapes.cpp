#include "margin_rank/margin_rank_shapes.h"

#include "common/checks.h"

namespace caffe2ops {

void check_margin_ranking(const char* op, const at::Tensor& X1, const at::Tensor& X2,
                          const at::Tensor& Y) {
  check_floating(op, "X1", X1, false);
  check_same_dtype(op, "X1", X1, "X2", X2);
  const auto yt = Y.scalar_type();
  C2_CHECK(yt == at::kInt || yt == at::kLong || yt == X1.scalar_type(), op,
           "Y must be int32, int64 or X1's dtype (", X1.scalar_type(), "), got ", yt);
  check_same_device(op, "X1", X1, "X2", X2);
  check_same_device(op, "X1", X1, "Y", Y);
  C2_CHECK(X1.sym_numel() == X2.sym_numel(), op,
           "The two inputs for computing ranking loss should have the same size: X1 has ",
           X1.sym_numel(), " elements, X2 has ", X2.sym_numel());
  C2_CHECK(X1.sym_numel() == Y.sym_numel(), op,
           "The input and label should have the same size: X1 has ", X1.sym_numel(),
           " elements, Y has ", Y.sym_numel());
}

void check_margin_ranking_gradient(const at::Tensor& X1, const at::Tensor& X2, const at::Tensor& Y,
                                   const at::Tensor& dLoss) {
  constexpr const char* op = "margin_ranking_criterion_gradient";
  check_margin_ranking(op, X1, X2, Y);
  check_same_dtype(op, "X1", X1, "dLoss", dLoss);
  check_same_device(op, "X1", X1, "dLoss", dLoss);
  C2_CHECK(dLoss.sym_numel() == X1.sym_numel(), op, "dLoss has ", dLoss.sym_numel(),
           " elements but X1 has ", X1.sym_numel());
}

}  // namespace caffe2ops
