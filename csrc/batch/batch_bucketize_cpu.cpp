// BatchBucketize: out[i, j] = first k with x[i, indices[j]] <= b_j[k], else
// lengths[j]. A linear first-match scan, as in Caffe2, so unsorted borders keep its answer.
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

at::Tensor batch_bucketize_cpu(const at::Tensor& float_features, const at::Tensor& indices,
                               const at::Tensor& boundaries, const at::Tensor& lengths) {
  constexpr const char* op = "batch_bucketize";
  auto shape = batch_bucketize_shape(float_features, indices, boundaries, lengths);
  const int64_t N = float_features.size(0), D = float_features.size(1), K = indices.numel();
  auto offsets = batch_bucketize_offsets(float_features, indices, boundaries, lengths);
  const auto compare = bucket_compare_dtype(float_features, boundaries);
  auto x = float_features.to(compare).contiguous();
  auto b = boundaries.to(compare).contiguous();
  auto cols = indices.to(at::kLong).contiguous();
  auto out = empty_output(c10::asIntArrayRefUnchecked(shape), x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    const int64_t* cp = cols.const_data_ptr<int64_t>();
    int32_t* outp = out.data_ptr<int32_t>();
    // A row's cost is K scans over short border lists: count ~16 bytes of work per column.
    at::parallel_for(0, N, grain_for(K * 16), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = 0; j < K; ++j) {
          const scalar_t v = xp[i * D + cp[j]];
          const scalar_t* borders = bp + offsets[j];
          const int64_t len = offsets[j + 1] - offsets[j];
          int64_t k = 0;
          while (k < len && !(v <= borders[k])) ++k;  // NaN never matches: top bucket
          outp[i * K + j] = static_cast<int32_t>(k);
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_bucketize", &batch_bucketize_cpu);
}

}  // namespace caffe2ops
