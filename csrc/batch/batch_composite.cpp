// The batch family's kernels written with ATen or our own ops, registered once for every device.
//
// BatchMatMul: the product itself is ATen's matmul, which is already at the
// machine's limit; this file adds Caffe2's shape rules (1-D promotion, trans flags ignored on
// vectors, broadcast only when asked, 0-vs-n batch broadcasting) and the true gradient. Written
// on symbolic sizes and registered as CompositeExplicitAutograd, so the same kernel runs on
// CPU, CUDA and Meta (torch.compile, torch.export); its autograd is in batch_autograd.cpp.
//
// The gradient ops Caffe2 built from other forward ops are compositions of our
// registered ops: one CompositeImplicitAutograd kernel serves every device and autograd flows
// through the ops they call.
#include <ATen/core/Tensor.h>
#include <ATen/ExpandUtils.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/sum_to_size.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/op_handle.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;


// Y2 = lhs @ rhs with both operands >= 2-D; Y is Y2 reshaped to `out_shape`. lhs/rhs are
// views of A/B (transposed or with a unit dim added), and *_t records the transposition so
// the gradient can be mapped back.
struct MatMulPlan {
  at::Tensor lhs, rhs;
  bool lhs_t = false, rhs_t = false;
  c10::SymDimVector batch;      // output batch dims (Caffe2 rule)
  c10::SymDimVector out_shape;  // Y's shape
  bool empty_batch = false;     // some batch dim is 0: nothing to multiply
};

MatMulPlan plan(const char* op, const at::Tensor& A, const at::Tensor& B, bool trans_a, bool trans_b,
                bool broadcast) {
  check_floating(op, "A", A);
  check_same_dtype(op, "A", A, "B", B);
  check_same_device(op, "A", A, "B", B);
  C2_CHECK(A.dim() >= 1 && B.dim() >= 1, op, "A and B must be at least 1-D, got shapes ",
           A.sym_sizes(), " and ", B.sym_sizes());
  MatMulPlan p;
  const int64_t a = A.dim(), b = B.dim();
  if (a == 1 && b == 1) {
    C2_CHECK(A.sym_numel() == B.sym_numel(), op, "A and B must have the same length, got ",
             A.sym_numel(), " and ", B.sym_numel());
    p.lhs = A.unsqueeze(0);
    p.rhs = B.unsqueeze(1);
    p.out_shape = {1};
    return p;
  }
  if (a == 1) {  // trans_a is ignored for a vector
    const auto& n = A.sym_size(0);
    p.lhs = A.unsqueeze(0);
    p.rhs = trans_b ? B.mT() : B;
    p.rhs_t = trans_b;
    C2_CHECK(p.rhs.sym_size(-2) == n, op, "A has length ", n, " but B", trans_b ? "^T" : "",
             " has shape ", p.rhs.sym_sizes());
    auto rs = p.rhs.sym_sizes();
    p.batch.assign(rs.begin(), rs.end() - 2);
    p.out_shape = p.batch;
    p.out_shape.push_back(rs[b - 1]);
    return p;
  }
  if (b == 1) {  // trans_b is ignored for a vector
    const auto& n = B.sym_size(0);
    p.lhs = trans_a ? A.mT() : A;
    p.lhs_t = trans_a;
    p.rhs = B.unsqueeze(1);
    C2_CHECK(p.lhs.sym_size(-1) == n, op, "B has length ", n, " but A", trans_a ? "^T" : "",
             " has shape ", p.lhs.sym_sizes());
    auto ls = p.lhs.sym_sizes();
    p.batch.assign(ls.begin(), ls.end() - 2);
    p.out_shape.assign(ls.begin(), ls.end() - 1);
    return p;
  }
  p.lhs = trans_a ? A.mT() : A;
  p.rhs = trans_b ? B.mT() : B;
  p.lhs_t = trans_a;
  p.rhs_t = trans_b;
  auto ls = p.lhs.sym_sizes(), rs = p.rhs.sym_sizes();
  C2_CHECK(ls[a - 1] == rs[b - 2], op, "K mismatch: op(A) has shape ", ls, ", op(B) has shape ",
           rs);
  const int64_t nb = std::max(a, b) - 2;
  bool identical = true;
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t ia = i - (nb - (a - 2)), ib = i - (nb - (b - 2));
    c10::SymInt da = ia >= 0 ? ls[ia] : c10::SymInt(1);
    c10::SymInt db = ib >= 0 ? rs[ib] : c10::SymInt(1);
    C2_CHECK(da == db || da <= 1 || db <= 1, op, "batch dims of A ", A.sym_sizes(),
             " and B ", B.sym_sizes(), " cannot be broadcast");
    identical = identical && da == db;
    if (da == 0 || db == 0) {
      p.batch.push_back(0);
      p.empty_batch = true;
    } else {
      p.batch.push_back(da == 1 ? db : da);
    }
  }
  C2_CHECK(identical || broadcast, op, "batch dims of A ", A.sym_sizes(), " and B ",
           B.sym_sizes(), " differ; pass broadcast=True to broadcast them");
  p.out_shape = p.batch;
  p.out_shape.push_back(ls[a - 2]);
  p.out_shape.push_back(rs[b - 1]);
  return p;
}

at::Tensor batch_mat_mul(const at::Tensor& A, const at::Tensor& B, bool trans_a, bool trans_b,
                         bool broadcast) {
  auto p = plan("batch_mat_mul", A, B, trans_a, trans_b, broadcast);
  // Caffe2 broadcasts a 0-size batch dim against any size; matmul would refuse.
  if (p.empty_batch) return at::zeros_symint(p.out_shape, A.options());
  return at::matmul(p.lhs, p.rhs).reshape_symint(p.out_shape);
}

// True gradient (unlike Caffe2's): the products of Caffe2's table, summed over broadcast
// batch dims and mapped back through the 1-D promotion and the transposition.
std::tuple<at::Tensor, at::Tensor> batch_mat_mul_gradient(const at::Tensor& grad_Y,
                                                          const at::Tensor& A,
                                                          const at::Tensor& B, bool trans_a,
                                                          bool trans_b, bool broadcast) {
  constexpr const char* op = "batch_mat_mul_gradient";
  auto p = plan(op, A, B, trans_a, trans_b, broadcast);
  check_same_dtype(op, "A", A, "grad_Y", grad_Y);
  check_same_device(op, "A", A, "grad_Y", grad_Y);
  C2_CHECK(grad_Y.sym_sizes() == c10::SymIntArrayRef(p.out_shape), op,
           "grad_Y must have the output shape ", c10::SymIntArrayRef(p.out_shape), ", got ",
           grad_Y.sym_sizes());
  if (p.empty_batch) return {at::zeros_symint(A.sym_sizes(), A.options()),
                             at::zeros_symint(B.sym_sizes(), B.options())};
  auto ls = p.lhs.sym_sizes(), rs = p.rhs.sym_sizes();
  c10::SymDimVector y2(p.batch.begin(), p.batch.end());
  y2.push_back(ls[ls.size() - 2]);
  y2.push_back(rs[rs.size() - 1]);
  auto g = grad_Y.reshape_symint(y2);
  auto g_lhs = at::matmul(g, p.rhs.mT()).sum_to_size_symint(ls);
  auto g_rhs = at::matmul(p.lhs.mT(), g).sum_to_size_symint(rs);
  if (p.lhs_t) g_lhs = g_lhs.mT();
  if (p.rhs_t) g_rhs = g_rhs.mT();
  return {g_lhs.reshape_symint(A.sym_sizes()).contiguous(),
          g_rhs.reshape_symint(B.sym_sizes()).contiguous()};
}

// dValues[k] = dDense[row(k), indices[k]]  (Caffe2: BatchDenseToSparse on the output grad).
Tensor batch_sparse_to_dense_gradient(const Tensor& lengths, const Tensor& indices, const Tensor& grad_dense) {
  return C2_OP("batch_dense_to_sparse", Tensor(const Tensor&, const Tensor&, const Tensor&))
      .call(lengths, indices, grad_dense);
}

// dDense = zeros with dDense[row(k), indices[k]] = dValues[k] (Caffe2: BatchSparseToDense
// with dense as the shape input and default 0; an assignment, so duplicates keep the last).
Tensor batch_dense_to_sparse_gradient(const Tensor& lengths, const Tensor& indices, const Tensor& grad_values,
                                 const Tensor& dense) {
  return C2_OP("batch_sparse_to_dense",
               Tensor(const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&, int64_t, double))
      .call(lengths, indices, grad_values, dense, -1, 0.0);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CompositeExplicitAutograd, m) {
  C2_IMPL(m, "batch_mat_mul", &batch_mat_mul);
  C2_IMPL(m, "batch_mat_mul_gradient", &batch_mat_mul_gradient);
}

#ifdef WITH_CUDA
// The same kernel, named on the CUDA key so a CUDA build lists a CUDA kernel for every op.
TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "batch_mat_mul", &batch_mat_mul);
  C2_IMPL(m, "batch_mat_mul_gradient", &batch_mat_mul_gradient);
}
#endif

TORCH_LIBRARY_IMPL(caffe2ops, CompositeImplicitAutograd, m) {
  C2_IMPL(m, "batch_sparse_to_dense_gradient", &batch_sparse_to_dense_gradient);
  C2_IMPL(m, "batch_dense_to_sparse_gradient", &batch_dense_to_sparse_gradient);
}

}  // namespace caffe2ops
