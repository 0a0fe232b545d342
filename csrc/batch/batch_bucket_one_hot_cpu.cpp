// BatchBucketOneHot: column j of data owns lengths[j] + 1 output slots; the
// slot ⌊(lower_bound + upper_bound) / 2⌋ over its (sorted) borders is set to 1.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

at::Tensor batch_bucket_one_hot_cpu(const at::Tensor& data, const at::Tensor& lengths,
                                    const at::Tensor& boundaries) {
  constexpr const char* op = "batch_bucket_one_hot";
  auto shape = batch_bucket_one_hot_shape(data, lengths, boundaries);
  auto offsets = batch_bucket_one_hot_offsets(lengths, boundaries);
  const int64_t D = lengths.numel();
  const auto compare = bucket_compare_dtype(data, boundaries);
  auto x = data.to(compare).contiguous();
  auto b = boundaries.to(compare).contiguous();
  const int64_t N = x.size(0), W = shape[1].expect_int();
  auto out = empty_output({N, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* yp = out.data_ptr<scalar_t>();
    at::parallel_for(0, N, grain_for(W * sizeof(scalar_t)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        scalar_t* row = yp + i * W;
        std::fill(row, row + W, scalar_t(0));
        for (int64_t j = 0; j < D; ++j) {
          const scalar_t v = xp[i * D + j];
          const scalar_t* lo_b = bp + offsets[j];
          const scalar_t* hi_b = bp + offsets[j + 1];
          const int64_t lo = std::lower_bound(lo_b, hi_b, v) - lo_b;
          const int64_t up = std::upper_bound(lo_b, hi_b, v) - lo_b;
          // Slot offset of column j is offsets[j] + j (each column has one extra slot).
          row[offsets[j] + j + (lo + up) / 2] = scalar_t(1);
        }
      }
    });
  });
  return out.to(data.scalar_type());  // one-hot values are exact in any floating dtype
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_bucket_one_hot", &batch_bucket_one_hot_cpu);
}

}  // namespace caffe2ops
