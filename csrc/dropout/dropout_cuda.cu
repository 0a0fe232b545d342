// Dropout on CUDA.
//
// dropout: one fused kernel writes Y and the bool mask. Each thread takes groups of four
// elements and one Philox4x32-10 call per group (the same generator as the CPU kernel,
// common/philox.h); keep = (32-bit word >= ceil(ratio * 2^32)). Key and counter base come from
// PyTorch's CUDA generator through PhiloxCudaState, so torch.manual_seed reproduces the mask
// and CUDA-graph capture stays valid.
//
// cudnn_dropout: cuDNN's dropout through ATen's cuDNN handle and descriptors. The RNG state
// buffer is cached per device (Caffe2 kept it in a scratch blob) and seeded from the PyTorch
// CUDA generator on first use; it is re-seeded on every call when a generator is passed or
// deterministic algorithms are on, so that runs reproduce.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <cmath>
#include <mutex>

#include "common/checks.h"
#include "common/cuda_launch.cuh"
#include "common/philox.h"
#include "common/register.h"
#include "dropout/dropout_shapes.h"

#ifdef WITH_CUDNN
#include <ATen/cudnn/Descriptors.h>
#include <ATen/cudnn/Handle.h>
#endif

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

template <typename scalar_t>
__global__ void dropout_kernel(const scalar_t* x, scalar_t* y, bool* mask, int64_t n, uint64_t threshold,
                               at::opmath_type<scalar_t> scale, at::PhiloxCudaState philox_args) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto seeds = at::cuda::philox::unpack(philox_args);
  const PhiloxKey key(std::get<0>(seeds));
  const uint64_t base = std::get<1>(seeds);
  C2_GRID_STRIDE(g, (n + 3) / 4) {
    uint32_t w[4];
    philox4x32_10(base + static_cast<uint64_t>(g), key, w);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * g + j;
      if (i < n) {
        const bool kept = static_cast<uint64_t>(w[j]) >= threshold;
        const acc_t v = static_cast<acc_t>(x[i]);
        mask[i] = kept;
        // As on the CPU: a kept element is X * scale, a dropped one X * 0.
        y[i] = static_cast<scalar_t>(kept ? v * scale : v * acc_t(0));
      }
    }
  }
}

std::tuple<Tensor, Tensor> dropout_cuda(const Tensor& X, double ratio, bool is_test, std::optional<at::Generator> generator) {
  check_dropout_input("dropout", X, ratio);
  if (is_test) return {X.clone(at::MemoryFormat::Contiguous), at::ones(X.sizes(), X.options().dtype(at::kBool))};
  auto x = X.contiguous();
  auto Y = at::empty_like(x);
  auto mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
  const int64_t n = x.numel();
  if (n == 0) return {Y, mask};
  c10::cuda::CUDAGuard guard(x.device());
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(generator, at::cuda::detail::getDefaultCUDAGenerator());
  at::PhiloxCudaState philox_args;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    const uint64_t groups = static_cast<uint64_t>((n + 3) / 4);
    philox_args = gen->philox_cuda_state((groups + 3) / 4 * 4);  // counters [offset, offset + groups)
  }
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(ratio * 4294967296.0));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dropout", [&] {
    const auto scale = dropout_scale<at::opmath_type<scalar_t>>(ratio);
    dropout_kernel<<<grid_for((n + 3) / 4), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), Y.data_ptr<scalar_t>(), mask.data_ptr<bool>(), n, threshold, scale, philox_args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {Y, mask};
}

template <typename scalar_t>
__global__ void dropout_gradient_kernel(const scalar_t* dy, const bool* mask, scalar_t* dx, int64_t n,
                                        at::opmath_type<scalar_t> scale) {
  using acc_t = at::opmath_type<scalar_t>;
  C2_GRID_STRIDE(i, n) {
    dx[i] = static_cast<scalar_t>(static_cast<acc_t>(dy[i]) * static_cast<acc_t>(mask[i]) * scale);
  }
}

Tensor dropout_gradient_cuda(const Tensor& dY, const std::optional<Tensor>& mask, double ratio, bool is_test) {
  check_dropout_gradient(dY, mask, ratio, is_test);
  if (is_test) return dY.clone(at::MemoryFormat::Contiguous);
  auto dy = dY.contiguous();
  auto m = mask->contiguous();
  auto dX = at::empty_like(dy);
  const int64_t n = dy.numel();
  if (n == 0) return dX;
  c10::cuda::CUDAGuard guard(dy.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dy.scalar_type(), "dropout_gradient", [&] {
    dropout_gradient_kernel<<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        dy.const_data_ptr<scalar_t>(), m.const_data_ptr<bool>(), dX.data_ptr<scalar_t>(), n,
        dropout_scale<at::opmath_type<scalar_t>>(ratio));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dX;
}

#ifdef WITH_CUDNN

cudnnDataType_t cudnn_type(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return CUDNN_DATA_FLOAT;
    case at::kHalf: return CUDNN_DATA_HALF;
    case at::kDouble: return CUDNN_DATA_DOUBLE;
    default: TORCH_CHECK(false, "caffe2ops::cudnn_dropout: X must be float32, float64 or float16, got ", dtype);
  }
}

// cuDNN describes X as a 4-D (numel, 1, 1, 1) tensor, as Caffe2 did.
void describe(at::native::TensorDescriptor& desc, at::ScalarType dtype, int64_t numel) {
  const char* op = "cudnn_dropout";
  C2_CHECK(numel <= std::numeric_limits<int>::max(), op, "at most 2^31 - 1 elements, got ", numel);
  desc.set(cudnn_type(dtype), {numel, 1, 1, 1}, {1, 1, 1, 1}, 0);
}

size_t reserve_bytes_for(const at::native::TensorDescriptor& desc) {
  size_t bytes = 0;
  AT_CUDNN_CHECK(cudnnDropoutGetReserveSpaceSize(desc.desc(), &bytes));
  return bytes;
}

}  // namespace

int64_t cudnn_dropout_reserve_bytes(at::ScalarType dtype, int64_t numel) {
  at::native::TensorDescriptor desc;
  describe(desc, dtype, numel);
  return static_cast<int64_t>(reserve_bytes_for(desc));
}

namespace {

// The per-device cuDNN dropout state, shared by the forward and backward ops.
Tensor cudnn_states(cudnnHandle_t handle, const Tensor& like, double ratio, const std::optional<at::Generator>& generator,
               bool reseed) {
  static std::mutex mutex;
  static std::vector<Tensor> states(c10::cuda::device_count());
  std::lock_guard<std::mutex> lock(mutex);
  Tensor& state = states.at(like.device().index());
  if (!state.defined() || reseed) {
    auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(generator, at::cuda::detail::getDefaultCUDAGenerator());
    uint64_t seed;
    {
      std::lock_guard<std::mutex> gen_lock(gen->mutex_);
      seed = gen->current_seed() ^ (gen->philox_offset_per_thread() * 0x9E3779B97F4A7C15ull);
      gen->philox_cuda_state(4);  // advance, so the next seeding differs
    }
    at::native::DropoutDescriptor d;
    d.initialize_rng(handle, static_cast<float>(ratio), static_cast<long long>(seed), like.options().dtype(at::kByte));
    state = d.state;
  }
  return state;
}

std::tuple<Tensor, Tensor> cudnn_dropout_cuda(const Tensor& X, double ratio, bool is_test, std::optional<at::Generator> generator) {
  check_cudnn_dropout_input(X, ratio);
  // cuDNN has no descriptor for 0 elements; an empty X has nothing to drop.
  if (is_test || X.numel() == 0) {
    return {X.clone(at::MemoryFormat::Contiguous), at::empty({0}, X.options().dtype(at::kByte))};
  }
  auto x = X.contiguous();
  c10::cuda::CUDAGuard guard(x.device());
  auto handle = at::native::getCudnnHandle();
  AT_CUDNN_CHECK(cudnnSetStream(handle, at::cuda::getCurrentCUDAStream()));
  at::native::TensorDescriptor desc;
  describe(desc, x.scalar_type(), x.numel());
  at::native::DropoutDescriptor dropout;
  if (ratio > 0) {
    const bool reseed = generator.has_value() || at::globalContext().deterministicAlgorithms();
    dropout.set(handle, static_cast<float>(ratio), cudnn_states(handle, x, ratio, generator, reseed));
  } else {
    dropout.set_no_dropout(handle);
  }
  const size_t reserve_bytes = reserve_bytes_for(desc);
  auto reserve = at::empty({static_cast<int64_t>(reserve_bytes)}, x.options().dtype(at::kByte));
  auto Y = at::empty_like(x);
  AT_CUDNN_CHECK(cudnnDropoutForward(handle, dropout.desc(), desc.desc(), x.const_data_ptr(), desc.desc(),
                                     Y.data_ptr(), reserve.data_ptr(), reserve_bytes));
  return {Y, reserve};
}

Tensor cudnn_dropout_gradient_cuda(const Tensor& dY, const Tensor& reserve_space, double ratio, bool is_test) {
  constexpr const char* op = "cudnn_dropout_gradient";
  check_cudnn_dropout_gradient(dY, reserve_space, ratio, is_test);
  // Caffe2 crashed in test mode; an empty dY has no descriptor and nothing to scale.
  if (is_test || dY.numel() == 0) return dY.clone(at::MemoryFormat::Contiguous);
  auto dy = dY.contiguous();
  c10::cuda::CUDAGuard guard(dy.device());
  auto handle = at::native::getCudnnHandle();
  AT_CUDNN_CHECK(cudnnSetStream(handle, at::cuda::getCurrentCUDAStream()));
  at::native::TensorDescriptor desc;
  describe(desc, dy.scalar_type(), dy.numel());
  const size_t reserve_bytes = reserve_bytes_for(desc);
  C2_CHECK(static_cast<int64_t>(reserve_bytes) == reserve_space.numel(), op, "reserve_space has ",
           reserve_space.numel(), " bytes but dY needs ", reserve_bytes, " (was it made for a dY of this size?)");
  at::native::DropoutDescriptor dropout;
  if (ratio > 0) {
    dropout.set(handle, static_cast<float>(ratio), cudnn_states(handle, dy, ratio, std::nullopt, false));
  } else {
    dropout.set_no_dropout(handle);
  }
  auto dX = at::empty_like(dy);
  AT_CUDNN_CHECK(cudnnDropoutBackward(handle, dropout.desc(), desc.desc(), dy.const_data_ptr(), desc.desc(),
                                      dX.data_ptr(), reserve_space.data_ptr(), reserve_bytes));
  return dX;
}

#endif  // WITH_CUDNN

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "dropout", &dropout_cuda);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_cuda);
#ifdef WITH_CUDNN
  C2_IMPL(m, "cudnn_dropout", &cudnn_dropout_cuda);
  C2_IMPL(m, "cudnn_dropout_gradient", &cudnn_dropout_gradient_cuda);
#endif
}

}  // namespace caffe2ops
