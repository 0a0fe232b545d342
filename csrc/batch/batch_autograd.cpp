// Autograd of the batch family.
#include <ATen/ops/bmm.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "common/autograd.h"
#include "common/checks.h"
#include "common/register.h"
#include "common/sizes.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

decltype(auto) permutation_op() { return C2_OP("batch_permutation", Tensor(const Tensor&, const Tensor&)); }
decltype(auto) gather_op() { return C2_OP("batch_gather", Tensor(const Tensor&, const Tensor&, bool)); }
decltype(auto) sparse_to_dense_op() {
  return C2_OP("batch_sparse_to_dense", Tensor(const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&, int64_t, double));
}
decltype(auto) dense_to_sparse_op() { return C2_OP("batch_dense_to_sparse", Tensor(const Tensor&, const Tensor&, const Tensor&)); }
decltype(auto) mat_mul_op() { return C2_OP("batch_mat_mul", Tensor(const Tensor&, const Tensor&, bool, bool, bool)); }
decltype(auto) moments_op() { return C2_OP("batch_moments", std::tuple<Tensor, Tensor>(const Tensor&, c10::string_view)); }
decltype(auto) ccbmmbg_op() {
  return C2_OP("concat_batch_mat_mul_batch_gather", Tensor(const Tensor&, at::TensorList));
}
decltype(auto) ccbmmbg_gradient_op() {
  return C2_OP("concat_batch_mat_mul_batch_gather_gradient", std::vector<Tensor>(const Tensor&, at::TensorList, const Tensor&));
}
decltype(auto) permutation_gradient_op() { return C2_OP("batch_permutation_gradient", Tensor(const Tensor&, const Tensor&)); }
decltype(auto) gather_gradient_op() {
  return C2_OP("batch_gather_gradient", Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t, bool));
}
decltype(auto) mat_mul_gradient_op() {
  return C2_OP("batch_mat_mul_gradient", std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, bool, bool, bool));
}
decltype(auto) moments_gradient_op() {
  return C2_OP("batch_moments_gradient", Tensor(const Tensor&, const Tensor&, const Tensor&, c10::string_view));
}

class BatchPermutationFn : public torch::autograd::Function<BatchPermutationFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& X, const Tensor& indices) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({indices});
    return permutation_op().call(X, indices);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto indices = ctx->get_saved_variables()[0];
    return {permutation_gradient_op().call(indices, grads[0]), Tensor()};
  }
};

class BatchGatherFn : public torch::autograd::Function<BatchGatherFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& data, const Tensor& indices, bool match_outer) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({data, indices});
    ctx->saved_data["match_outer"] = match_outer;
    return gather_op().call(data, indices, match_outer);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto grad = gather_gradient_op().call(saved[0], saved[1], grads[0], 1, ctx->saved_data["match_outer"].toBool());
    return {grad, Tensor(), Tensor()};
  }
};

class BatchSparseToDenseFn : public torch::autograd::Function<BatchSparseToDenseFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& lengths, const Tensor& indices, const Tensor& values,
                   const std::optional<Tensor>& output_shape_inference, int64_t dense_last_dim,
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
    auto grad_values = C2_OP("batch_sparse_to_dense_gradient", Tensor(const Tensor&, const Tensor&, const Tensor&))
                           .call(saved[0], saved[1], grads[0])
                           .reshape_symint(shape);
    return {Tensor(), Tensor(), grad_values, Tensor(), Tensor(), Tensor()};
  }
};

class BatchDenseToSparseFn : public torch::autograd::Function<BatchDenseToSparseFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& lengths, const Tensor& indices, const Tensor& dense) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({lengths, indices, dense});
    return dense_to_sparse_op().call(lengths, indices, dense);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto grad = C2_OP("batch_dense_to_sparse_gradient", Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&))
                    .call(s[0], s[1], grads[0], s[2]);
    return {Tensor(), Tensor(), grad};
  }
};

class BatchMatMulFn : public torch::autograd::Function<BatchMatMulFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& A, const Tensor& B, bool trans_a, bool trans_b,
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
    auto [gA, gB] = mat_mul_gradient_op().call(grads[0], s[0], s[1], ctx->saved_data["trans_a"].toBool(),
                                               ctx->saved_data["trans_b"].toBool(),
                                               ctx->saved_data["broadcast"].toBool());
    return {gA, gB, Tensor(), Tensor(), Tensor()};
  }
};

class BatchMomentsFn : public torch::autograd::Function<BatchMomentsFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& X, c10::string_view order) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({X});
    ctx->saved_data["order"] = std::string(order);
    auto [mu, var] = moments_op().call(X, order);
    return {mu, var};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // A missing output gradient arrives as zeros (materialised grads): a missing gradient counts as zero.
    auto X = ctx->get_saved_variables()[0];
    auto order = ctx->saved_data["order"].toStringRef();
    auto dX = moments_gradient_op().call(grads[0], grads[1], X, order);
    return {dX, Tensor()};
  }
};


// ---- derivatives of the gradient ops (double backward) ----------------------------------
// Each backward below calls registered ops through the dispatcher, with autograd, so higher
// orders work the same way and a TorchScript model differentiates twice from libtorch too.

// batch_permutation_gradient is linear in dY; along ggX its derivative is the forward op.
class BatchPermutationGradientFn : public torch::autograd::Function<BatchPermutationGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& indices, const Tensor& dY) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({indices});
    return permutation_gradient_op().call(indices, dY);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor(), Tensor()};
    return {Tensor(), permutation_op().call(grads[0], ctx->get_saved_variables()[0])};
  }
};

// batch_gather_gradient is linear in grad and reads only data's shape: its derivative along
// ggData gathers ggData back, which is batch_gather on the [P, M, block] view at `axis`.
class BatchGatherGradientFn : public torch::autograd::Function<BatchGatherGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& data, const Tensor& indices, const Tensor& grad, int64_t axis,
                   bool match_outer) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto dData = gather_gradient_op().call(data, indices, grad, axis, match_outer);
    ctx->save_for_backward({indices});
    ctx->saved_data["grad_shape"] = grad.sym_sizes().vec();
    ctx->saved_data["axis"] = axis < 0 ? axis + data.dim() : axis;
    ctx->saved_data["match_outer"] = match_outer;
    return dData;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor& gg = grads[0];
    if (!gg.defined()) return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    auto indices = ctx->get_saved_variables()[0];
    auto grad_shape = ctx->saved_data["grad_shape"].toSymIntVector();
    const int64_t axis = ctx->saved_data["axis"].toInt();
    const bool match_outer = ctx->saved_data["match_outer"].toBool();
    if (gg.sym_numel() == 0) return {Tensor(), Tensor(), at::zeros_symint(grad_shape, gg.options()), Tensor(), Tensor()};
    auto s = gg.sym_sizes();
    c10::SymInt P = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) P = P * s[i];
    for (int64_t i = axis + 1; i < gg.dim(); ++i) inner = inner * s[i];
    auto view = gg.reshape_symint({P, s[axis], inner});
    auto idx = match_outer ? indices.reshape_symint({P, indices.sym_numel() / P}) : indices.reshape({-1});
    auto d_grad = gather_op().call(view, idx, match_outer).reshape_symint(grad_shape);
    return {Tensor(), Tensor(), d_grad, Tensor(), Tensor()};
  }
};

// batch_mat_mul_gradient(g, A, B) = VJP of the bilinear f(A, B) = batch_mat_mul(A, B):
//   d g = f(ggA, B) + f(A, ggB),  d A = grad_A of f(A, ggB) at g,  d B = grad_B of f(ggA, B) at g.
class BatchMatMulGradientFn : public torch::autograd::Function<BatchMatMulGradientFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& grad_Y, const Tensor& A, const Tensor& B, bool trans_a,
                               bool trans_b, bool broadcast) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({grad_Y, A, B});
    ctx->saved_data["trans_a"] = trans_a;
    ctx->saved_data["trans_b"] = trans_b;
    ctx->saved_data["broadcast"] = broadcast;
    auto [gA, gB] = mat_mul_gradient_op().call(grad_Y, A, B, trans_a, trans_b, broadcast);
    return {gA, gB};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const bool ta = ctx->saved_data["trans_a"].toBool(), tb = ctx->saved_data["trans_b"].toBool(),
               bc = ctx->saved_data["broadcast"].toBool();
    const Tensor &ggA = grads[0], &ggB = grads[1];
    Tensor d_grad, dA, dB;
    if (ggA.defined()) {
      d_grad = mat_mul_op().call(ggA, s[2], ta, tb, bc);
      if (ctx->needs_input_grad(2)) dB = std::get<1>(mat_mul_gradient_op().call(s[0], ggA, s[2], ta, tb, bc));
    }
    if (ggB.defined()) {
      auto t = mat_mul_op().call(s[1], ggB, ta, tb, bc);
      d_grad = d_grad.defined() ? d_grad.add(t) : t;
      if (ctx->needs_input_grad(1)) dA = std::get<0>(mat_mul_gradient_op().call(s[0], s[1], ggB, ta, tb, bc));
    }
    return {d_grad, dA, dB, Tensor(), Tensor(), Tensor()};
  }
};

// dX = dmu[c] / N + 2 X dvar[c] / N per channel c (N elements each), so along ggX:
//   d dmu = mean_c(ggX),  d dvar = 2 mean_c(X ggX),  d X = 2 dvar[c] ggX / N.
class BatchMomentsGradientFn : public torch::autograd::Function<BatchMomentsGradientFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& dmu, const Tensor& dvar, const Tensor& X, c10::string_view order) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({dvar, X});
    ctx->saved_data["order"] = std::string(order);
    return moments_gradient_op().call(dmu, dvar, X, order);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor& gg = grads[0];
    if (!gg.defined()) return {Tensor(), Tensor(), Tensor(), Tensor()};
    auto s = ctx->get_saved_variables();
    const std::string order = ctx->saved_data["order"].toStringRef();
    Tensor d_dmu, d_dvar, dX;
    if (ctx->needs_input_grad(0)) d_dmu = std::get<0>(moments_op().call(gg, order));
    if (ctx->needs_input_grad(1)) d_dvar = std::get<0>(moments_op().call(s[1].mul(gg), order)).mul(2);
    if (ctx->needs_input_grad(2)) dX = moments_gradient_op().call(at::zeros_like(s[0]), s[0], gg, order);
    return {d_dmu, d_dvar, dX, Tensor()};
  }
};

// The fused DLRM interaction: Y[b, j] = <X_p[b], X_q[b]>; backward is its gradient op.
class ConcatBatchMatMulBatchGatherFn : public torch::autograd::Function<ConcatBatchMatMulBatchGatherFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& indices, at::TensorList inputs) {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::vector<Tensor> saved{indices};
    saved.insert(saved.end(), inputs.begin(), inputs.end());
    ctx->save_for_backward(saved);
    return ccbmmbg_op().call(indices, inputs);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    std::vector<Tensor> xs(s.begin() + 1, s.end());
    variable_list out{Tensor()};
    if (!grads[0].defined()) {
      out.resize(1 + xs.size());
      return out;
    }
    auto dxs = ccbmmbg_gradient_op().call(s[0], xs, grads[0]);
    out.insert(out.end(), dxs.begin(), dxs.end());
    return out;
  }
};

// The gradient op is linear in the inputs for a fixed grad (dC = (dS + dS^T) C), so along ggX
// its derivative is itself applied to ggX; and d grad[b, j] = <ggX_p, X_q> + <X_p, ggX_q>.
class ConcatBatchMatMulBatchGatherGradientFn
    : public torch::autograd::Function<ConcatBatchMatMulBatchGatherGradientFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& indices, at::TensorList inputs, const Tensor& grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::vector<Tensor> saved{indices, grad};
    saved.insert(saved.end(), inputs.begin(), inputs.end());
    ctx->save_for_backward(saved);
    return ccbmmbg_gradient_op().call(indices, inputs, grad);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const Tensor &indices = s[0], &grad = s[1];
    std::vector<Tensor> xs(s.begin() + 2, s.end());
    const int64_t n = static_cast<int64_t>(xs.size());
    variable_list out(n + 2);
    bool any = false;
    std::vector<Tensor> gg;
    for (int64_t i = 0; i < n; ++i) {
      any = any || grads[i].defined();
      gg.push_back(grads[i].defined() ? grads[i] : at::zeros_like(xs[i]));
    }
    if (!any) return out;
    bool inputs_need = false;
    for (int64_t i = 0; i < n; ++i) inputs_need = inputs_need || ctx->needs_input_grad(1 + i);
    if (inputs_need) {
      auto dxs = ccbmmbg_gradient_op().call(indices, gg, grad);
      for (int64_t i = 0; i < n; ++i) out[1 + i] = dxs[i];
    }
    if (ctx->needs_input_grad(1 + n)) {
      const auto B = xs[0].sym_size(0);
      const auto E = sym_prod(xs[0].sym_sizes(), 1, xs[0].dim());  // B may be 0: no -1 in reshape
      std::vector<Tensor> c, g;
      for (int64_t i = 0; i < n; ++i) {
        c.push_back(xs[i].reshape_symint({B, E}));
        g.push_back(gg[i].reshape_symint({B, E}));
      }
      auto C = at::stack(c, 1), G = at::stack(g, 1);  // [B, n, E]
      auto S = at::bmm(G, C.transpose(1, 2));
      out[1 + n] = S.add(S.transpose(1, 2)).reshape_symint({B, n * n}).index_select(1, indices.to(at::kLong));
    }
    return out;
  }
};

Tensor batch_permutation_autograd(const Tensor& X, const Tensor& indices) {
  if (!grad_needed(X)) return call_below_autograd(permutation_op(), X, indices);
  return BatchPermutationFn::apply(X, indices);
}
Tensor batch_gather_autograd(const Tensor& data, const Tensor& indices, bool match_outer) {
  if (!grad_needed(data)) return call_below_autograd(gather_op(), data, indices, match_outer);
  return BatchGatherFn::apply(data, indices, match_outer);
}
Tensor batch_sparse_to_dense_autograd(const Tensor& lengths, const Tensor& indices, const Tensor& values,
                                 const std::optional<Tensor>& output_shape_inference,
                                 int64_t dense_last_dim, double default_value) {
  if (!grad_needed(values)) {
    return call_below_autograd(sparse_to_dense_op(), lengths, indices, values, output_shape_inference,
                               dense_last_dim, default_value);
  }
  return BatchSparseToDenseFn::apply(lengths, indices, values, output_shape_inference,
                                     dense_last_dim, default_value);
}
Tensor batch_dense_to_sparse_autograd(const Tensor& lengths, const Tensor& indices, const Tensor& dense) {
  if (!grad_needed(dense)) return call_below_autograd(dense_to_sparse_op(), lengths, indices, dense);
  return BatchDenseToSparseFn::apply(lengths, indices, dense);
}
Tensor batch_mat_mul_autograd(const Tensor& A, const Tensor& B, bool trans_a, bool trans_b, bool broadcast) {
  if (!grad_needed(A, B)) return call_below_autograd(mat_mul_op(), A, B, trans_a, trans_b, broadcast);
  return BatchMatMulFn::apply(A, B, trans_a, trans_b, broadcast);
}
std::tuple<Tensor, Tensor> batch_moments_autograd(const Tensor& X, c10::string_view order) {
  if (!grad_needed(X)) return call_below_autograd(moments_op(), X, order);
  auto out = BatchMomentsFn::apply(X, order);
  return {out[0], out[1]};
}

Tensor batch_permutation_gradient_autograd(const Tensor& indices, const Tensor& dY) {
  if (!grad_needed(dY)) return call_below_autograd(permutation_gradient_op(), indices, dY);
  return BatchPermutationGradientFn::apply(indices, dY);
}
Tensor batch_gather_gradient_autograd(const Tensor& data, const Tensor& indices, const Tensor& grad, int64_t axis, bool match_outer) {
  if (!grad_needed(grad)) return call_below_autograd(gather_gradient_op(), data, indices, grad, axis, match_outer);
  return BatchGatherGradientFn::apply(data, indices, grad, axis, match_outer);
}
std::tuple<Tensor, Tensor> batch_mat_mul_gradient_autograd(const Tensor& grad_Y, const Tensor& A, const Tensor& B, bool trans_a,
                                                 bool trans_b, bool broadcast) {
  if (!grad_needed(grad_Y, A, B)) {
    return call_below_autograd(mat_mul_gradient_op(), grad_Y, A, B, trans_a, trans_b, broadcast);
  }
  auto out = BatchMatMulGradientFn::apply(grad_Y, A, B, trans_a, trans_b, broadcast);
  return {out[0], out[1]};
}
Tensor batch_moments_gradient_autograd(const Tensor& dmu, const Tensor& dvar, const Tensor& X, c10::string_view order) {
  if (!grad_needed(dmu, dvar, X)) return call_below_autograd(moments_gradient_op(), dmu, dvar, X, order);
  return BatchMomentsGradientFn::apply(dmu, dvar, X, order);
}
Tensor concat_batch_mat_mul_batch_gather_autograd(const Tensor& indices, at::TensorList inputs) {
  if (!grad_needed(inputs)) return call_below_autograd(ccbmmbg_op(), indices, inputs);
  return ConcatBatchMatMulBatchGatherFn::apply(indices, inputs);
}
std::vector<Tensor> concat_batch_mat_mul_batch_gather_gradient_autograd(const Tensor& indices, at::TensorList inputs,
                                                                   const Tensor& grad) {
  if (!grad_needed(inputs, grad)) return call_below_autograd(ccbmmbg_gradient_op(), indices, inputs, grad);
  return ConcatBatchMatMulBatchGatherGradientFn::apply(indices, inputs, grad);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  C2_IMPL(m, "batch_permutation", &batch_permutation_autograd);
  C2_IMPL(m, "batch_gather", &batch_gather_autograd);
  C2_IMPL(m, "batch_sparse_to_dense", &batch_sparse_to_dense_autograd);
  C2_IMPL(m, "batch_dense_to_sparse", &batch_dense_to_sparse_autograd);
  C2_IMPL(m, "batch_mat_mul", &batch_mat_mul_autograd);
  C2_IMPL(m, "batch_moments", &batch_moments_autograd);
  C2_IMPL(m, "batch_permutation_gradient", &batch_permutation_gradient_autograd);
  C2_IMPL(m, "batch_gather_gradient", &batch_gather_gradient_autograd);
  C2_IMPL(m, "batch_mat_mul_gradient", &batch_mat_mul_gradient_autograd);
  C2_IMPL(m, "batch_moments_gradient", &batch_moments_gradient_autograd);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather", &concat_batch_mat_mul_batch_gather_autograd);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather_gradient", &concat_batch_mat_mul_batch_gather_gradient_autograd);
  for (const char* name : {"batch_box_cox", "batch_bucketize", "batch_bucket_one_hot"}) {
    m.impl(name, no_gradient());
  }
}

}  // namespace caffe2ops
