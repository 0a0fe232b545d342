// BatchBoxCox: t = max(x + lambda2, 1e-6); y = ln t if lambda1 == 0, else
// (t^lambda1 - 1) / lambda1. Column parameters are hoisted per row block; NaN propagates
// through the clamp (a NaN never compares below 1e-6).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"
#include "common/vec_math.h"

namespace caffe2ops {
namespace {

C2_SIMD_CLONES
void box_cox_row_f32(const float* x, const float* l1, const float* l2, const float* inv_l1,
                     float* y, int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    const float v = x[j] + l2[j];
    const float t = v < 1e-6f ? 1e-6f : v;
    const float lt = fast_logf(t);
    const float p = fast_expf(l1[j] * lt) * inv_l1[j] - inv_l1[j];
    y[j] = l1[j] == 0.f ? lt : p;
  }
}

template <typename scalar_t>
void box_cox_rows(const scalar_t* x, const scalar_t* l1, const scalar_t* l2, scalar_t* y,
                  int64_t rows, int64_t D) {
  const scalar_t floor_v = static_cast<scalar_t>(1e-6);
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* xr = x + r * D;
    scalar_t* yr = y + r * D;
    for (int64_t j = 0; j < D; ++j) {
      const scalar_t v = xr[j] + l2[j];
      const scalar_t t = v < floor_v ? floor_v : v;
      yr[j] = l1[j] == scalar_t(0) ? std::log(t) : (std::pow(t, l1[j]) - scalar_t(1)) / l1[j];
    }
  }
}

// float32: the same formula with log/exp that vectorise (vec_math.h), so a row is one pass
// of SIMD code. ln t goes through both branches and a select picks the result.
template <>
void box_cox_rows<float>(const float* x, const float* l1, const float* l2, float* y,
                         int64_t rows, int64_t D) {
  std::vector<float> inv(D);
  for (int64_t j = 0; j < D; ++j) inv[j] = l1[j] == 0.f ? 0.f : 1.f / l1[j];
  for (int64_t r = 0; r < rows; ++r) box_cox_row_f32(x + r * D, l1, l2, inv.data(), y + r * D, D);
}

at::Tensor batch_box_cox_cpu(const at::Tensor& data, const at::Tensor& lambda1,
                             const at::Tensor& lambda2, int64_t min_block_size) {
  // min_block_size only chose Caffe2's implementation; results agree up to rounding.
  (void)min_block_size;
  batch_box_cox_check(data, lambda1, lambda2);
  auto x = data.contiguous();
  auto y = empty_output(x.sizes(), x.options());
  if (x.numel() == 0) return y;
  const int64_t N = x.size(0), D = x.numel() / N;
  auto l1 = lambda1.contiguous(), l2 = lambda2.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_box_cox", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    // log and exp per element cost about as much as moving 16 bytes.
    at::parallel_for(0, N, grain_for(D * 16), [&](int64_t r0, int64_t r1) {
      box_cox_rows<scalar_t>(xp + r0 * D, l1.const_data_ptr<scalar_t>(),
                             l2.const_data_ptr<scalar_t>(), yp + r0 * D, r1 - r0, D);
    });
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_box_cox", &batch_box_cox_cpu);
}

}  // namespace caffe2ops
