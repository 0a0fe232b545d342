// MarginRankingCriterion on CUDA: one fused elementwise kernel each for the loss and for
// both input gradients.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/cuda_launch.cuh"
#include "common/register.h"
#include "margin_rank/margin_rank_dispatch.h"
#include "margin_rank/margin_rank_shapes.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

template <typename scalar_t, typename label_t>
__global__ void loss_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, scalar_t margin,
                            scalar_t* loss, int64_t n) {
  C2_GRID_STRIDE(i, n) {
    const scalar_t d = -static_cast<scalar_t>(y[i]) * (x1[i] - x2[i]) + margin;
    loss[i] = d > scalar_t(0) ? d : scalar_t(0);
  }
}

template <typename scalar_t, typename label_t>
__global__ void grad_kernel(const scalar_t* x1, const scalar_t* x2, const label_t* y, const scalar_t* g,
                            scalar_t margin, scalar_t* d1, scalar_t* d2, int64_t n) {
  C2_GRID_STRIDE(i, n) {
    const scalar_t yi = static_cast<scalar_t>(y[i]);
    const bool active = !(-yi * (x1[i] - x2[i]) + margin < scalar_t(0));  // the hinge point is active
    d1[i] = active ? -yi * g[i] : scalar_t(0);
    d2[i] = active ? yi * g[i] : scalar_t(0);
  }
}

Tensor margin_ranking_criterion_cuda(const Tensor& X1, const Tensor& X2, const Tensor& Y, double margin) {
  check_margin_ranking("margin_ranking_criterion", X1, X2, Y);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous();
  auto loss = at::empty_like(x1);
  const int64_t n = x1.numel();
  if (n == 0) return loss;
  c10::cuda::CUDAGuard guard(x1.device());
  dispatch_values_labels(x1, y, [&](auto v, auto l) {
    using value_t = decltype(v);
    using label_t = decltype(l);
    loss_kernel<<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x1.const_data_ptr<value_t>(), x2.const_data_ptr<value_t>(), y.const_data_ptr<label_t>(),
        static_cast<value_t>(margin), loss.data_ptr<value_t>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return loss;
}

std::tuple<Tensor, Tensor> margin_ranking_criterion_gradient_cuda(const Tensor& X1, const Tensor& X2, const Tensor& Y, const Tensor& dLoss,
                                                        double margin) {
  check_margin_ranking_gradient(X1, X2, Y, dLoss);
  auto x1 = X1.contiguous(), x2 = X2.contiguous(), y = Y.contiguous(), g = dLoss.contiguous();
  auto d1 = at::empty_like(x1), d2 = at::empty_like(x2);  // Caffe2 sizes each gradient like its input
  const int64_t n = x1.numel();
  if (n == 0) return {d1, d2};
  c10::cuda::CUDAGuard guard(x1.device());
  dispatch_values_labels(x1, y, [&](auto v, auto l) {
    using value_t = decltype(v);
    using label_t = decltype(l);
    grad_kernel<<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x1.const_data_ptr<value_t>(), x2.const_data_ptr<value_t>(), y.const_data_ptr<label_t>(),
        g.const_data_ptr<value_t>(), static_cast<value_t>(margin), d1.data_ptr<value_t>(), d2.data_ptr<value_t>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {d1, d2};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "margin_ranking_criterion", &margin_ranking_criterion_cuda);
  C2_IMPL(m, "margin_ranking_criterion_gradient", &margin_ranking_criterion_gradient_cuda);
}

}  // namespace caffe2ops
