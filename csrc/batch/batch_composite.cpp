// Gradient ops that Caffe2 built from other forward ops (spec 0.1). They are compositions of
// our registered ops, so one CompositeImplicitAutograd kernel serves every device and
// autograd flows through the ops they call.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/register.h"
#include "common/op_handle.h"

namespace caffe2ops {
namespace {

using T = at::Tensor;

// dValues[k] = dDense[row(k), indices[k]]  (Caffe2: BatchDenseToSparse on the output grad).
T batch_sparse_to_dense_gradient(const T& lengths, const T& indices, const T& grad_dense) {
  return C2_OP("batch_dense_to_sparse", T(const T&, const T&, const T&))
      .call(lengths, indices, grad_dense);
}

// dDense = zeros with dDense[row(k), indices[k]] = dValues[k] (Caffe2: BatchSparseToDense
// with dense as the shape input and default 0; an assignment, so duplicates keep the last).
T batch_dense_to_sparse_gradient(const T& lengths, const T& indices, const T& grad_values,
                                 const T& dense) {
  return C2_OP("batch_sparse_to_dense",
               T(const T&, const T&, const T&, const std::optional<T>&, int64_t, double))
      .call(lengths, indices, grad_values, dense, -1, 0.0);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CompositeImplicitAutograd, m) {
  C2_IMPL(m, "batch_sparse_to_dense_gradient", &batch_sparse_to_dense_gradient);
  C2_IMPL(m, "batch_dense_to_sparse_gradient", &batch_dense_to_sparse_gradient);
}

}  // namespace caffe2ops
