// BatchPermutation: Y[n] = X[indices[n]]; gradient dX[indices[n]] += dY[n].
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/block_gather.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

at::Tensor batch_permutation_cpu(const at::Tensor& X, const at::Tensor& indices) {
  auto shape = batch_permutation_shape(X, indices);
  const int64_t N = X.size(0);
  check_indices_in_range("batch_permutation", "indices", indices, N);
  auto x = X.contiguous();
  auto idx = indices.contiguous();
  auto Y = empty_output(c10::asIntArrayRefUnchecked(shape), x.options());
  const int64_t block_bytes = N == 0 ? 0 : x.numel() / N * x.element_size();
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "batch_permutation", [&] {
    gather_blocks(Y.data_ptr(), x.const_data_ptr(), idx.const_data_ptr<index_t>(), 1, N, N,
                  block_bytes, false);
  });
  return Y;
}

at::Tensor batch_permutation_gradient_cpu(const at::Tensor& indices, const at::Tensor& dY) {
  batch_permutation_gradient_check(indices, dY);
  const int64_t N = dY.size(0);
  check_indices_in_range("batch_permutation_gradient", "indices", indices, N);
  auto idx = indices.contiguous();
  auto dX = empty_output(dY.sizes(), dY.options());
  const int64_t block = N == 0 ? 0 : dY.numel() / N;
  const auto dy = grad_view(dY, 1, N, block);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dY.scalar_type(),
                                  "batch_permutation_gradient", [&] {
    using scalar = scalar_t;
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "batch_permutation_gradient", [&] {
      scatter_add_blocks(dX.data_ptr<scalar>(), dy.tensor.const_data_ptr<scalar>(), dy.strides,
                         idx.const_data_ptr<index_t>(), 1, N, N, block, false);
    });
  });
  return dX;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_permutation", &batch_permutation_cpu);
  C2_IMPL(m, "batch_permutation_gradient", &batch_permutation_gradient_cpu);
}

}  // namespace caffe2ops
