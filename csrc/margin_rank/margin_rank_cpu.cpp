// MarginRankingCriterion and its gradient on the CPU, each one fused pass:
//   loss = max(0, -y (x1 - x2) + margin)
//   dist >= 0 (the hinge point counts as active): dX1 = -y dLoss, dX2 = y dLoss; else 0.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <type_traits>

#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"
#include "common/simd.h"
#include "margin_rank/margin_rank_dispatch.h"
#include "margin_rank/margin_rank_shapes.h"

namespace caffe2ops {
namespace {

// Bytes one element moves in the forward (x1, x2, an int32 label, the loss: 16); the gradient
// moves about twice that.
constexpr int64_t kBytesPerElement = 16;

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
    // A select, not a product with 0/1: an inactive element is 0 even where dLoss is NaN or inf.
    const bool active = !(d < scalar_t(0));
    d1[i] = active ? -yi * g[i] : scalar_t(0);
    d2[i] = active ? yi * g[i] : scalar_t(0);
  }
}

// The float32 / int32-label pair is the Caffe2 configuration and the hot one: AVX clones.
template <typename scalar_t, typename label_t>
void loss_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, scalar_t margin,
                 scalar_t* loss, int64_t n) {
  constexpr bool caffe2_types = std::is_same_v<scalar_t, float> && std::is_same_v<label_t, int32_t>;
  simd_loop<caffe2_types>(
      [&]() C2_INLINE_LAMBDA { loss_loop(x1, x2, y, margin, loss, n); });
}

template <typename scalar_t, typename label_t>
void grad_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, const scalar_t* g,
                 scalar_t margin, scalar_t* d1, scalar_t* d2, int64_t n) {
  constexpr bool caffe2_types = std::is_same_v<scalar_t, float> && std::is_same_v<label_t, int32_t>;
  simd_loop<caffe2_types>(
      [&]() C2_INLINE_LAMBDA { grad_loop(x1, x2, y, g, margin, d1, d2, n); });
}

// Runs body(x1, x2, y, begin, count) over parallel chunks of the elements, with x1, x2 and y
// typed pointers to the chunk's first element (all contiguous, one dtype dispatch).
template <typename Body>
void for_each_chunk(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& y, int64_t bytes_per_element,
                    const Body& body) {
  dispatch_values_labels(x1, y, [&](auto v, auto l) {
    using value_t = decltype(v);
    using label_t = decltype(l);
    const value_t* x1p = x1.const_data_ptr<value_t>();
    const value_t* x2p = x2.const_data_ptr<value_t>();
    const label_t* yp = y.const_data_ptr<label_t>();
    at::parallel_for(0, x1.numel(), grain_for(bytes_per_element), [&](int64_t i0, int64_t i1) {
      body(x1p + i0, x2p + i0, yp + i0, i0, i1 - i0);
    });
  });
}

template <typename Ptr>
using value_of = std::remove_const_t<std::remove_pointer_t<Ptr>>;

at::Tensor margin_ranking_criterion_cpu(const at::Tensor& X1, const at::Tensor& X2,
                                        const at::Tensor& Y, double margin) {
  check_margin_ranking("margin_ranking_criterion", X1, X2, Y);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous();
  auto loss = empty_output(x1.sizes(), x1.options());
  for_each_chunk(x1, x2, y, kBytesPerElement, [&](auto x1p, auto x2p, auto yp, int64_t i0, int64_t n) {
    using value_t = value_of<decltype(x1p)>;
    loss_kernel(x1p, x2p, yp, static_cast<value_t>(margin), loss.data_ptr<value_t>() + i0, n);
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor> margin_ranking_criterion_gradient_cpu(
    const at::Tensor& X1, const at::Tensor& X2, const at::Tensor& Y, const at::Tensor& dLoss,
    double margin) {
  check_margin_ranking_gradient(X1, X2, Y, dLoss);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous(), g = dLoss.contiguous();
  auto dX1 = empty_output(x1.sizes(), x1.options());
  auto dX2 = empty_output(x2.sizes(), x2.options());  // Caffe2 sizes each gradient like its input
  for_each_chunk(x1, x2, y, 2 * kBytesPerElement, [&](auto x1p, auto x2p, auto yp, int64_t i0, int64_t n) {
    using value_t = value_of<decltype(x1p)>;
    grad_kernel(x1p, x2p, yp, g.const_data_ptr<value_t>() + i0, static_cast<value_t>(margin),
                dX1.data_ptr<value_t>() + i0, dX2.data_ptr<value_t>() + i0, n);
  });
  return {dX1, dX2};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "margin_ranking_criterion", &margin_ranking_criterion_cpu);
  C2_IMPL(m, "margin_ranking_criterion_gradient", &margin_ranking_criterion_gradient_cpu);
}

}  // namespace caffe2ops
