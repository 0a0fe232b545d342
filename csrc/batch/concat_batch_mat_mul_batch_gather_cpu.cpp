// ConcatBatchMatMulBatchGather: Y[b, j] = <X_p[b], X_q[b]> with
// (p, q) = divmod(indices[j], n). Only the requested dot products are computed; Caffe2 formed
// the whole n x n Gram matrix per batch row.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"
#include "common/simd.h"

namespace caffe2ops {
namespace {

at::Tensor concat_batch_mat_mul_batch_gather_cpu(const at::Tensor& indices,
                                                 at::TensorList inputs) {
  constexpr const char* op = "concat_batch_mat_mul_batch_gather";
  auto shape = concat_batch_mat_mul_batch_gather_shape(indices, inputs);
  const int64_t n = static_cast<int64_t>(inputs.size());
  check_indices_in_range(op, "indices", indices, n * n);
  const int64_t B = inputs[0].size(0), J = indices.numel();
  const int64_t E = B == 0 ? 0 : inputs[0].numel() / B;
  std::vector<at::Tensor> xs;
  xs.reserve(n);
  for (const auto& x : inputs) xs.push_back(x.contiguous());
  auto pairs = indices.to(at::kLong).contiguous();
  auto out = empty_output(c10::asIntArrayRefUnchecked(shape), xs[0].options());
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), op, [&] {
    std::vector<const scalar_t*> ptr(n);
    for (int64_t i = 0; i < n; ++i) ptr[i] = xs[i].const_data_ptr<scalar_t>();
    const int64_t* pp = pairs.const_data_ptr<int64_t>();
    scalar_t* yp = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, grain_for(J * E * sizeof(scalar_t)), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t j = 0; j < J; ++j) {
          const scalar_t* u = ptr[pp[j] / n] + b * E;
          const scalar_t* v = ptr[pp[j] % n] + b * E;
          scalar_t acc[8] = {};
          int64_t e = 0;
          for (; e + 8 <= E; e += 8) {
            for (int l = 0; l < 8; ++l) acc[l] += u[e + l] * v[e + l];
          }
          scalar_t s = 0;
          for (; e < E; ++e) s += u[e] * v[e];
          for (int l = 0; l < 8; ++l) s += acc[l];
          yp[b * J + j] = s;
        }
      }
    });
  });
  return out;
}

// The adjoint of the pairwise dot products: for (p, q) = divmod(indices[j], n),
//   dX_p[b] += grad[b, j] X_q[b]   and   dX_q[b] += grad[b, j] X_p[b]
// ((dS + dS^T) C without forming dS). One task per batch row, summing in j order, so the
// result does not depend on the thread count.
template <typename scalar_t>
C2_ALWAYS_INLINE void axpy(scalar_t a, const scalar_t* x, scalar_t* y, int64_t E) {
  for (int64_t e = 0; e < E; ++e) y[e] += a * x[e];
}

std::vector<at::Tensor> concat_batch_mat_mul_batch_gather_gradient_cpu(const at::Tensor& indices,
                                                                       at::TensorList inputs,
                                                                       const at::Tensor& grad) {
  constexpr const char* op = "concat_batch_mat_mul_batch_gather_gradient";
  concat_batch_mat_mul_batch_gather_gradient_check(indices, inputs, grad);
  const int64_t n = static_cast<int64_t>(inputs.size());
  check_indices_in_range(op, "indices", indices, n * n);
  const int64_t B = inputs[0].size(0), J = indices.numel();
  const int64_t E = B == 0 ? 0 : inputs[0].numel() / B;
  std::vector<at::Tensor> xs, outs;
  for (const auto& x : inputs) {
    xs.push_back(x.contiguous());
    outs.push_back(empty_output(x.sizes(), x.options()).zero_());
  }
  auto pairs = indices.to(at::kLong).contiguous();
  auto g = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), op, [&] {
    std::vector<const scalar_t*> x(n);
    std::vector<scalar_t*> d(n);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = xs[i].const_data_ptr<scalar_t>();
      d[i] = outs[i].data_ptr<scalar_t>();
    }
    const int64_t* pp = pairs.const_data_ptr<int64_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    at::parallel_for(0, B, grain_for(J * E * sizeof(scalar_t) * 2), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t j = 0; j < J; ++j) {
          const int64_t p = pp[j] / n, q = pp[j] % n;
          const scalar_t s = gp[b * J + j];
          axpy(s, x[q] + b * E, d[p] + b * E, E);
          axpy(s, x[p] + b * E, d[q] + b * E, E);
        }
      }
    });
  });
  return outs;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather", &concat_batch_mat_mul_batch_gather_cpu);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather_gradient", &concat_batch_mat_mul_batch_gather_gradient_cpu);
}

}  // namespace caffe2ops
