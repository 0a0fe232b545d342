// BatchGather: OUTPUT[b, i..., t...] = DATA[b, INDICES[i...], t...] (per batch row
// INDICES[b, j...] with match_outer); the gradient scatter-adds GRAD back.
#include <ATen/Dispatch.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/block_gather.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

at::Tensor batch_gather_cpu(const at::Tensor& data, const at::Tensor& indices, bool match_outer) {
  auto shape = batch_gather_shape(data, indices, match_outer);
  auto out = empty_output(c10::asIntArrayRefUnchecked(shape), data.options());
  // Caffe2 returns before looking at any index when there is nothing to write.
  if (out.numel() == 0) return out;
  const int64_t B = data.size(0), M = data.size(1);
  check_indices_in_range("batch_gather", "indices", indices, M, batch_gather_bounds_text(M));
  auto d = data.contiguous();
  auto idx = indices.contiguous();
  const int64_t L = match_outer ? idx.numel() / B : idx.numel();
  const int64_t block_bytes = d.numel() / (B * M) * d.element_size();
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "batch_gather", [&] {
    gather_blocks(out.data_ptr(), d.const_data_ptr(), idx.const_data_ptr<index_t>(), B, L, M,
                  block_bytes, match_outer);
  });
  return out;
}

at::Tensor batch_gather_gradient_cpu(const at::Tensor& data, const at::Tensor& indices,
                                     const at::Tensor& grad, int64_t axis, bool match_outer) {
  axis = batch_gather_gradient_check(data, indices, grad, axis, match_outer);
  auto out = empty_output(data.sizes(), data.options());  // scatter_add_blocks zero-fills it
  if (out.numel() == 0) return out;
  const int64_t M = data.size(axis);
  check_indices_in_range("batch_gather_gradient", "indices", indices, M, batch_gather_bounds_text(M));
  auto idx = indices.contiguous();
  auto sizes = data.sizes();
  const int64_t P = c10::multiply_integers(sizes.begin(), sizes.begin() + axis);
  const int64_t block = c10::multiply_integers(sizes.begin() + axis + 1, sizes.end());
  const int64_t L = match_outer ? idx.numel() / P : idx.numel();
  const auto g = grad_view(grad, P, L, block);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "batch_gather_gradient", [&] {
    using scalar = scalar_t;
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "batch_gather_gradient", [&] {
      scatter_add_blocks(out.data_ptr<scalar>(), g.tensor.const_data_ptr<scalar>(), g.strides,
                         idx.const_data_ptr<index_t>(), P, L, M, block, match_outer);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_gather", &batch_gather_cpu);
  C2_IMPL(m, "batch_gather_gradient", &batch_gather_gradient_cpu);
}

}  // namespace caffe2ops
