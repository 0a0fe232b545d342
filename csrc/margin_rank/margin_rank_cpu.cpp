// MarginRankingCriterion and its gradient on the CPU (spec 6.1), each one fused pass:
//   loss = max(0, -y (x1 - x2) + margin)
//   dist >= 0 (the hinge point counts as active): dX1 = -y dLoss, dX2 = y dLoss; else 0.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "common/checks.h"
#include "common/vec_math.h"
#include "margin_rank/margin_rank_checks.h"

namespace caffe2ops {
namespace {

constexpr int64_t kGrain = 1 << 15;

template <typename scalar_t, typename label_t>
C2_ALWAYS_INLINE void loss_loop(const scalar_t* x1, const scalar_t* x2, const label_t* y,
                                scalar_t margin, scalar_t* loss, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const scalar_t d = -static_cast<scalar_t>(y[i]) * (x1[i] - x2[i]) + margin;
    loss[i] = d > scalar_t(0) ? d : scalar_t(0);
  }
}

template <typename scalar_t, typename label_t>
C2_ALWAYS_INLINE void grad_loop(const scalar_t* x1, const scalar_t* x2, const label_t* y,
                                const scalar_t* g, scalar_t margin, scalar_t* d1, scalar_t* d2,
                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const scalar_t yi = static_cast<scalar_t>(y[i]);
    const scalar_t d = -yi * (x1[i] - x2[i]) + margin;
    const scalar_t active = d < scalar_t(0) ? scalar_t(0) : scalar_t(1);
    d1[i] = -yi * g[i] * active;
    d2[i] = yi * g[i] * active;
  }
}

// The float32 / int32-label pair is the Caffe2 configuration and the hot one: AVX clones.
C2_SIMD_CLONES void loss_f32_i32(const float* x1, const float* x2, const int32_t* y, float margin,
                                 float* loss, int64_t n) {
  loss_loop(x1, x2, y, margin, loss, n);
}
C2_SIMD_CLONES void grad_f32_i32(const float* x1, const float* x2, const int32_t* y, const float* g,
                                 float margin, float* d1, float* d2, int64_t n) {
  grad_loop(x1, x2, y, g, margin, d1, d2, n);
}

template <typename scalar_t, typename label_t>
void loss_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, scalar_t margin,
                 scalar_t* loss, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, float> && std::is_same_v<label_t, int32_t>) {
    loss_f32_i32(x1, x2, y, margin, loss, n);
  } else {
    loss_loop(x1, x2, y, margin, loss, n);
  }
}

template <typename scalar_t, typename label_t>
void grad_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, const scalar_t* g,
                 scalar_t margin, scalar_t* d1, scalar_t* d2, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, float> && std::is_same_v<label_t, int32_t>) {
    grad_f32_i32(x1, x2, y, g, margin, d1, d2, n);
  } else {
    grad_loop(x1, x2, y, g, margin, d1, d2, n);
  }
}

at::Tensor margin_ranking_criterion_cpu(const at::Tensor& X1, const at::Tensor& X2,
                                        const at::Tensor& Y, double margin) {
  constexpr const char* op = "margin_ranking_criterion";
  check_margin_ranking(op, X1, X2, Y);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous();
  auto loss = at::empty(x1.sizes(), x1.options());
  dispatch_values_labels(x1, y, [&](auto v, auto l) {
    using value_t = decltype(v);
    using label_t = decltype(l);
    const value_t* a = x1.const_data_ptr<value_t>();
    const value_t* b = x2.const_data_ptr<value_t>();
    const label_t* c = y.const_data_ptr<label_t>();
    value_t* out = loss.data_ptr<value_t>();
    at::parallel_for(0, x1.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      loss_kernel(a + i0, b + i0, c + i0, static_cast<value_t>(margin), out + i0, i1 - i0);
    });
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor> margin_ranking_criterion_gradient_cpu(
    const at::Tensor& X1, const at::Tensor& X2, const at::Tensor& Y, const at::Tensor& dLoss,
    double margin) {
  constexpr const char* op = "margin_ranking_criterion_gradient";
  check_margin_ranking_gradient(X1, X2, Y, dLoss);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous(), g = dLoss.contiguous();
  auto dX1 = at::empty(x1.sizes(), x1.options());
  auto dX2 = at::empty(x2.sizes(), x2.options());  // Caffe2 sizes each gradient like its input
  dispatch_values_labels(x1, y, [&](auto v, auto l) {
    using value_t = decltype(v);
    using label_t = decltype(l);
    const value_t* a = x1.const_data_ptr<value_t>();
    const value_t* b = x2.const_data_ptr<value_t>();
    const label_t* c = y.const_data_ptr<label_t>();
    const value_t* gp = g.const_data_ptr<value_t>();
    value_t* o1 = dX1.data_ptr<value_t>();
    value_t* o2 = dX2.data_ptr<value_t>();
    at::parallel_for(0, x1.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      grad_kernel(a + i0, b + i0, c + i0, gp + i0, static_cast<value_t>(margin), o1 + i0, o2 + i0,
                  i1 - i0);
    });
  });
  return {dX1, dX2};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "margin_ranking_criterion", &margin_ranking_criterion_cpu);
  C2_IMPL(m, "margin_ranking_criterion_gradient", &margin_ranking_criterion_gradient_cpu);
}

}  // namespace caffe2ops
