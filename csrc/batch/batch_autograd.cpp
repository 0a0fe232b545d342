// Autograd of the batch family (spec section 2, item 4 of each op).
#include <torch/library.h>

#include "common/autograd.h"

namespace caffe2ops {
namespace {

using T = at::Tensor;

decltype(auto) permutation_op() { return C2_OP("batch_permutation", T(const T&, const T&)); }
decltype(auto) gather_op() { return C2_OP("batch_gather", T(const T&, const T&, bool)); }
decltype(auto) sparse_to_dense_op() {
  return C2_OP("batch_sparse_to_dense", T(const T&, const T&, const T&, const std::optional<T>&, int64_t, double));
}
decltype(auto) dense_to_sparse_op() { return C2_OP("batch_dense_to_sparse", T(const T&, const T&, const T&)); }
decltype(auto) mat_mul_op() { return C2_OP("batch_mat_mul", T(const T&, const T&, bool, bool, bool)); }
decltype(auto) moments_op() { return C2_OP("batch_moments", std::tuple<T, T>(const T&, c10::string_view)); }

class BatchPermutationFn : public torch::autograd::Function<BatchPermutationFn> {
 public:
  static T forward(AutogradContext* ctx, const T& X, const T& indices) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({indices});
    return permutation_op().call(X, indices);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto indices = ctx->get_saved_variables()[0];
    return {C2_OP("batch_permutation_gradient", T(const T&, const T&)).call(indices, grads[0]), T()};
  }
};

class BatchGatherFn : public torch::autograd::Function<BatchGatherFn> {
 public:
  static T forward(AutogradContext* ctx, const T& data, const T& indices, bool match_outer) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({data, indices});
    ctx->saved_data["match_outer"] = match_outer;
    return gather_op().call(data, indices, match_outer);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto grad = C2_OP("batch_gather_gradient", T(const T&, const T&, const T&, int64_t, bool))
                    .call(saved[0], saved[1], grads[0], 1, ctx->saved_data["match_outer"].toBool());
    return {grad, T(), T()};
  }
};

class BatchSparseToDenseFn : public torch::autograd::Function<BatchSparseToDenseFn> {
 public:
  static T forward(AutogradContext* ctx, const T& lengths, const T& indices, const T& values,
                   const std::optional<T>& output_shape_inference, int64_t dense_last_dim,
                   double default_value) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({lengths, indices});
    ctx->saved_data["values_shape"] = values.sym_sizes().vec();
    return sparse_to_dense_op().call(lengths, indices, values, output_shape_inference, dense_last_dim,
                                     default_value);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto shape = ctx->saved_data["values_shape"].toSymIntVector();
    auto grad_values = C2_OP("batch_sparse_to_dense_gradient", T(const T&, const T&, const T&))
                           .call(saved[0], saved[1], grads[0])
                           .reshape_symint(shape);
    return {T(), T(), grad_values, T(), T(), T()};
  }
};

class BatchDenseToSparseFn : public torch::autograd::Function<BatchDenseToSparseFn> {
 public:
  static T forward(AutogradContext* ctx, const T& lengths, const T& indices, const T& dense) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({lengths, indices, dense});
    return dense_to_sparse_op().call(lengths, indices, dense);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto grad = C2_OP("batch_dense_to_sparse_gradient", T(const T&, const T&, const T&, const T&))
                    .call(s[0], s[1], grads[0], s[2]);
    return {T(), T(), grad};
  }
};

class BatchMatMulFn : public torch::autograd::Function<BatchMatMulFn> {
 public:
  static T forward(AutogradContext* ctx, const T& A, const T& B, bool trans_a, bool trans_b,
                   bool broadcast) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({A, B});
    ctx->saved_data["trans_a"] = trans_a;
    ctx->saved_data["trans_b"] = trans_b;
    ctx->saved_data["broadcast"] = broadcast;
    return mat_mul_op().call(A, B, trans_a, trans_b, broadcast);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto [gA, gB] = C2_OP("batch_mat_mul_gradient",
                          std::tuple<T, T>(const T&, const T&, const T&, bool, bool, bool))
                        .call(grads[0], s[0], s[1], ctx->saved_data["trans_a"].toBool(),
                              ctx->saved_data["trans_b"].toBool(),
                              ctx->saved_data["broadcast"].toBool());
    return {gA, gB, T(), T(), T()};
  }
};

class BatchMomentsFn : public torch::autograd::Function<BatchMomentsFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const T& X, c10::string_view order) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({X});
    ctx->saved_data["order"] = std::string(order);
    auto [mu, var] = moments_op().call(X, order);
    return {mu, var};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // A missing output gradient arrives as zeros (materialised grads), as the spec asks.
    auto X = ctx->get_saved_variables()[0];
    auto order = ctx->saved_data["order"].toStringRef();
    auto dX = C2_OP("batch_moments_gradient",
                    T(const T&, const T&, const T&, c10::string_view))
                  .call(grads[0], grads[1], X, order);
    return {dX, T()};
  }
};

T batch_permutation_autograd(const T& X, const T& indices) {
  if (!grad_needed(X)) return call_below_autograd(permutation_op(), X, indices);
  return BatchPermutationFn::apply(X, indices);
}
T batch_gather_autograd(const T& data, const T& indices, bool match_outer) {
  if (!grad_needed(data)) return call_below_autograd(gather_op(), data, indices, match_outer);
  return BatchGatherFn::apply(data, indices, match_outer);
}
T batch_sparse_to_dense_autograd(const T& lengths, const T& indices, const T& values,
                                 const std::optional<T>& output_shape_inference,
                                 int64_t dense_last_dim, double default_value) {
  if (!grad_needed(values)) {
    return call_below_autograd(sparse_to_dense_op(), lengths, indices, values, output_shape_inference,
                               dense_last_dim, default_value);
  }
  return BatchSparseToDenseFn::apply(lengths, indices, values, output_shape_inference,
                                     dense_last_dim, default_value);
}
T batch_dense_to_sparse_autograd(const T& lengths, const T& indices, const T& dense) {
  if (!grad_needed(dense)) return call_below_autograd(dense_to_sparse_op(), lengths, indices, dense);
  return BatchDenseToSparseFn::apply(lengths, indices, dense);
}
T batch_mat_mul_autograd(const T& A, const T& B, bool trans_a, bool trans_b, bool broadcast) {
  if (!grad_needed(A, B)) return call_below_autograd(mat_mul_op(), A, B, trans_a, trans_b, broadcast);
  return BatchMatMulFn::apply(A, B, trans_a, trans_b, broadcast);
}
std::tuple<T, T> batch_moments_autograd(const T& X, c10::string_view order) {
  if (!grad_needed(X)) return call_below_autograd(moments_op(), X, order);
  auto out = BatchMomentsFn::apply(X, order);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  m.impl("batch_permutation", &batch_permutation_autograd);
  m.impl("batch_gather", &batch_gather_autograd);
  m.impl("batch_sparse_to_dense", &batch_sparse_to_dense_autograd);
  m.impl("batch_dense_to_sparse", &batch_dense_to_sparse_autograd);
  m.impl("batch_mat_mul", &batch_mat_mul_autograd);
  m.impl("batch_moments", &batch_moments_autograd);
  for (const char* name : {"batch_permutation_gradient", "batch_gather_gradient",
                           "batch_mat_mul_gradient", "batch_moments_gradient", "batch_box_cox",
                           "batch_bucketize", "concat_batch_mat_mul_batch_gather",
                           "batch_bucket_one_hot"}) {
    m.impl(name, no_gradient());
  }
}

}  // namespace caffe2ops
