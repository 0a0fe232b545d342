// BatchSparseToDense and BatchDenseToSparse: the (lengths, indices) pairs name
// cells dense[row(k), indices[k]]; one op scatters values into them, the other gathers.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

at::Tensor batch_sparse_to_dense_cpu(const at::Tensor& lengths, const at::Tensor& indices,
                                     const at::Tensor& values,
                                     const std::optional<at::Tensor>& output_shape_inference,
                                     int64_t dense_last_dim, double default_value) {
  constexpr const char* op = "batch_sparse_to_dense";
  auto shape = batch_sparse_to_dense_shape(lengths, indices, values, output_shape_inference,
                                           dense_last_dim);
  const int64_t B = lengths.size(0), D = shape[1].expect_int();
  auto offsets = sparse_layout_offsets(op, lengths, indices, D);
  auto idx = indices.contiguous();
  auto val = values.contiguous();
  auto dense = empty_output({B, D}, val.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, val.scalar_type(), op, [&] {
    using scalar = scalar_t;
    const scalar fill = static_cast<scalar>(default_value);
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), op, [&] {
      const index_t* ip = idx.const_data_ptr<index_t>();
      const scalar* vp = val.const_data_ptr<scalar>();
      scalar* out = dense.data_ptr<scalar>();
      // One row per task: fill then scatter while the row is in cache. Within a row the
      // writes go in k order, so a repeated column keeps the last value, as in Caffe2.
      at::parallel_for(0, B, grain_for(D * sizeof(scalar)), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          scalar* row = out + b * D;
          std::fill(row, row + D, fill);
          for (int64_t k = offsets[b]; k < offsets[b + 1]; ++k) row[ip[k]] = vp[k];
        }
      });
    });
  });
  return dense;
}

at::Tensor batch_dense_to_sparse_cpu(const at::Tensor& lengths, const at::Tensor& indices,
                                     const at::Tensor& dense) {
  constexpr const char* op = "batch_dense_to_sparse";
  batch_dense_to_sparse_check(lengths, indices, dense);
  const int64_t B = lengths.size(0), D = dense.size(1);
  auto offsets = sparse_layout_offsets(op, lengths, indices, D);
  auto idx = indices.contiguous();
  auto d = dense.contiguous();
  auto values = empty_output(idx.sizes(), d.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, d.scalar_type(), op, [&] {
    using scalar = scalar_t;
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), op, [&] {
      const index_t* ip = idx.const_data_ptr<index_t>();
      const scalar* dp = d.const_data_ptr<scalar>();
      scalar* vp = values.data_ptr<scalar>();
      const int64_t avg = B == 0 ? 1 : std::max<int64_t>(1, idx.numel() / B);
      // Per index: its own bytes, a value read from a random column, the value written (~16).
      at::parallel_for(0, B, grain_for(avg * 16), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const scalar* row = dp + b * D;
          for (int64_t k = offsets[b]; k < offsets[b + 1]; ++k) vp[k] = row[ip[k]];
        }
      });
    });
  });
  return values;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_sparse_to_dense", &batch_sparse_to_dense_cpu);
  C2_IMPL(m, "batch_dense_to_sparse", &batch_dense_to_sparse_cpu);
}

}  // namespace caffe2ops
