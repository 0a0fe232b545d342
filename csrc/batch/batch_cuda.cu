// CUDA kernels of the batch family. Every index and length is validated before any kernel
// reads through it (on the device, one reduction; Caffe2's CUDA kernels checked nothing).
// Gathers and their gradients delegate to ATen's index_select / gather / index_put_, which are
// at the limit already and keep torch.use_deterministic_algorithms working (accumulating
// index_put_ is sort-based in deterministic mode). Row-sequential kernels keep Caffe2's
// last-write-wins order where duplicates matter.
#include <ATen/ATen.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/repeat_interleave.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/cuda_launch.cuh"
#include "common/register.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

Tensor batch_permutation_cuda(const Tensor& X, const Tensor& indices) {
  batch_permutation_shape(X, indices);
  check_indices_in_range("batch_permutation", "indices", indices, X.size(0));
  return X.contiguous().index_select(0, indices);
}

Tensor batch_permutation_gradient_cuda(const Tensor& indices, const Tensor& dY) {
  batch_permutation_gradient_check(indices, dY);
  check_indices_in_range("batch_permutation_gradient", "indices", indices, dY.size(0));
  return at::zeros_like(dY, at::MemoryFormat::Contiguous).index_put_({indices.to(at::kLong)}, dY, true);
}

Tensor batch_gather_cuda(const Tensor& data, const Tensor& indices, bool match_outer) {
  auto shape = batch_gather_shape(data, indices, match_outer);
  auto sizes = c10::asIntArrayRefUnchecked(shape);
  const int64_t B = data.size(0), M = data.size(1);
  if (c10::multiply_integers(sizes) == 0) return at::empty(sizes, data.options());
  check_indices_in_range("batch_gather", "indices", indices, M, batch_gather_bounds_text(M));
  auto d = data.contiguous().reshape({B, M, -1});
  if (!match_outer) return d.index_select(1, indices.reshape({-1})).reshape(sizes);
  auto idx = indices.reshape({B, -1, 1}).to(at::kLong);
  return at::gather(d, 1, idx.expand({B, idx.size(1), d.size(2)})).reshape(sizes);
}

Tensor batch_gather_gradient_cuda(const Tensor& data, const Tensor& indices, const Tensor& grad, int64_t axis, bool match_outer) {
  axis = batch_gather_gradient_check(data, indices, grad, axis, match_outer);
  auto out = at::zeros(data.sizes(), data.options());
  if (out.numel() == 0) return out;
  const int64_t M = data.size(axis);
  check_indices_in_range("batch_gather_gradient", "indices", indices, M, batch_gather_bounds_text(M));
  auto sizes = data.sizes();
  const int64_t P = c10::multiply_integers(sizes.begin(), sizes.begin() + axis);
  auto out3 = out.view({P, M, -1});
  auto g3 = grad.contiguous().view({P, -1, out3.size(2)});
  if (!match_outer) {
    c10::List<std::optional<Tensor>> idx;
    idx.push_back(std::nullopt);
    idx.push_back(indices.reshape({-1}).to(at::kLong));
    out3.index_put_(idx, g3, true);
  } else {
    auto idx = indices.reshape({P, -1}).to(at::kLong);
    auto rows = at::arange(P, idx.options()).unsqueeze(1).expand_as(idx);
    out3.index_put_({rows, idx}, g3, true);
  }
  return out;
}

// One thread per row, writes in k order: a repeated column keeps the last value (Caffe2).
template <typename scalar_t, typename index_t>
__global__ void sparse_to_dense_rows(const int64_t* offsets, const index_t* indices, const scalar_t* values,
                                     scalar_t* dense, int64_t B, int64_t D) {
  C2_GRID_STRIDE(b, B) {
    for (int64_t k = offsets[b]; k < offsets[b + 1]; ++k) dense[b * D + indices[k]] = values[k];
  }
}

// Row offsets [0, l0, l0 + l1, ...] of a lengths vector, scanned where the lengths are instead
// of copying them to the host and the offsets back. The checks read back three numbers (one
// sync): every length in [min_length, total] and the sum equal to total; lengths bounded by
// total keep the running sum far from int64's limit. A failed check calls `explain`, the host
// rules, for the same message the CPU kernel gives.
template <typename Explain>
Tensor scanned_offsets(const Tensor& lengths, int64_t total, const Tensor& like, Explain explain,
                       int64_t min_length = 0) {
  auto l = lengths.reshape({-1}).to(like.device(), at::kLong);
  auto offsets = at::zeros({l.numel() + 1}, l.options());
  if (l.numel() == 0) {
    if (total != 0) explain();
    return offsets;
  }
  offsets.narrow(0, 1, l.numel()).copy_(at::cumsum(l, 0));
  auto [lo, hi] = at::aminmax(l);
  auto stats = at::stack({lo, hi, offsets.select(0, -1)}).to(at::kCPU);
  const int64_t* s = stats.const_data_ptr<int64_t>();
  const bool ok = s[0] >= min_length && s[1] <= total && s[2] == total;
  if (!ok) explain();
  TORCH_INTERNAL_ASSERT(ok, "the lengths failed a check the host rule passed");
  return offsets;
}

Tensor batch_sparse_to_dense_cuda(const Tensor& lengths, const Tensor& indices, const Tensor& values,
                             const std::optional<Tensor>& output_shape_inference, int64_t dense_last_dim,
                             double default_value) {
  constexpr const char* op = "batch_sparse_to_dense";
  auto shape = batch_sparse_to_dense_shape(lengths, indices, values, output_shape_inference, dense_last_dim);
  const int64_t B = lengths.size(0), D = shape[1].expect_int();
  check_index_dtype(op, "lengths", lengths);
  auto offsets = scanned_offsets(lengths, indices.numel(), values,
                                 [&] { sparse_layout_offsets(op, lengths, indices, D); });
  check_sparse_layout_indices(op, indices, D);
  auto dense = at::full({B, D}, default_value, values.options());
  if (B == 0 || D == 0) return dense;
  auto idx = indices.contiguous();
  auto val = values.contiguous();
  c10::cuda::CUDAGuard guard(values.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, val.scalar_type(), op, [&] {
    using scalar = scalar_t;
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), op, [&] {
      sparse_to_dense_rows<<<grid_for(B), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          offsets.const_data_ptr<int64_t>(), idx.const_data_ptr<index_t>(), val.const_data_ptr<scalar>(),
          dense.data_ptr<scalar>(), B, D);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return dense;
}

Tensor batch_dense_to_sparse_cuda(const Tensor& lengths, const Tensor& indices, const Tensor& dense) {
  constexpr const char* op = "batch_dense_to_sparse";
  batch_dense_to_sparse_check(lengths, indices, dense);
  const int64_t B = lengths.size(0), D = dense.size(1);
  check_index_dtype(op, "lengths", lengths);
  scanned_offsets(lengths, indices.numel(), dense, [&] { sparse_layout_offsets(op, lengths, indices, D); });
  check_sparse_layout_indices(op, indices, D);
  auto rows = at::repeat_interleave(at::arange(B, indices.options().dtype(at::kLong)), lengths.to(at::kLong),
                                    /*dim=*/0, /*output_size=*/indices.numel());
  return dense.index({rows, indices.to(at::kLong)}).reshape(indices.sizes());
}

// BatchMoments: per channel c, the sum and the sum of squares of x[o, c, i] over (o, i) in
// one read of X. Block (c, s) reduces slice s of channel c into partials[c, s]; the partials
// are combined by one small ATen sum, so the result does not depend on scheduling (no atomics).
constexpr int kMomentSlices = 64;  // blocks per channel: enough to fill the device for small C

template <typename scalar_t, typename acc_t>
__global__ void moments_partials(const scalar_t* x, acc_t* partials, int64_t outer, int64_t C, int64_t inner) {
  const int64_t c = blockIdx.x, count = outer * inner;
  acc_t s1 = 0, s2 = 0;
  for (int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; j < count;
       j += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    const int64_t o = j / inner, i = j - o * inner;
    const acc_t v = static_cast<acc_t>(x[(o * C + c) * inner + i]);
    s1 += v;
    s2 += v * v;
  }
  __shared__ acc_t sh1[kThreads], sh2[kThreads];
  sh1[threadIdx.x] = s1;
  sh2[threadIdx.x] = s2;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) {
      sh1[threadIdx.x] += sh1[threadIdx.x + w];
      sh2[threadIdx.x] += sh2[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partials[(c * gridDim.y + blockIdx.y) * 2] = sh1[0];
    partials[(c * gridDim.y + blockIdx.y) * 2 + 1] = sh2[0];
  }
}

std::tuple<Tensor, Tensor> batch_moments_cuda(const Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments", X, std::string(order));
  const int64_t outer = v.outer.expect_int(), C = v.channels.expect_int(), inner = v.inner.expect_int();
  auto x = X.contiguous();
  if (C == 0 || outer * inner == 0 || inner == 1) {
    // Empty (0 / 0 -> NaN, like mean over nothing) or channels-last: ATen's reductions, which
    // read the channel-minor layout coalesced.
    auto x3 = x.view({outer, C, inner});
    return {x3.mean({0, 2}), x3.square().mean({0, 2})};
  }
  const auto acc = X.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t slices = std::min<int64_t>(kMomentSlices, (outer * inner + kThreads - 1) / kThreads);
  auto partials = at::empty({C, slices, 2}, X.options().dtype(acc));
  c10::cuda::CUDAGuard guard(X.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "batch_moments", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
    moments_partials<scalar_t, acc_t><<<dim3(C, slices), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), partials.data_ptr<acc_t>(), outer, C, inner);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  auto sums = partials.sum(1).div_(static_cast<double>(outer * inner)).to(X.scalar_type());
  return {sums.select(1, 0).contiguous(), sums.select(1, 1).contiguous()};
}

// dX = (dmu[c] + 2 dvar[c] x) / (N HxW) in one elementwise pass.
template <typename scalar_t>
__global__ void moments_gradient_kernel(const scalar_t* dmu, const scalar_t* dvar, const scalar_t* x, scalar_t* dx,
                                        int64_t n, int64_t C, int64_t inner, double inv) {
  using acc_t = at::acc_type<scalar_t, true>;
  C2_GRID_STRIDE(e, n) {
    const int64_t c = (e / inner) % C;
    const acc_t g = static_cast<acc_t>(dmu[c]) + acc_t(2) * static_cast<acc_t>(dvar[c]) * static_cast<acc_t>(x[e]);
    dx[e] = static_cast<scalar_t>(g * static_cast<acc_t>(inv));
  }
}

Tensor batch_moments_gradient_cuda(const Tensor& dmu, const Tensor& dvar, const Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments_gradient", X, std::string(order));
  batch_moments_gradient_check(dmu, dvar, X, v);
  const int64_t outer = v.outer.expect_int(), C = v.channels.expect_int(), inner = v.inner.expect_int();
  auto x = X.contiguous();
  auto dX = at::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return dX;
  auto mu = dmu.contiguous(), var = dvar.contiguous();
  const double inv = 1.0 / static_cast<double>(outer * inner);
  c10::cuda::CUDAGuard guard(X.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "batch_moments_gradient", [&] {
    moments_gradient_kernel<<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        mu.const_data_ptr<scalar_t>(), var.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
        dX.data_ptr<scalar_t>(), n, C, inner, inv);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dX;
}

Tensor batch_box_cox_cuda(const Tensor& data, const Tensor& lambda1, const Tensor& lambda2, int64_t) {
  batch_box_cox_check(data, lambda1, lambda2);
  if (data.numel() == 0) return at::empty_like(data);
  const int64_t N = data.size(0);
  auto x = data.contiguous().view({N, -1});
  auto l1 = lambda1.reshape({1, -1}), l2 = lambda2.reshape({1, -1});
  auto t = (x + l2).clamp_min(1e-6);  // clamp_min propagates NaN
  auto safe = at::where(l1 == 0, at::ones_like(l1), l1);
  return at::where(l1 == 0, t.log(), (t.pow(safe) - 1) / safe).view(data.sizes());
}

template <typename scalar_t>
__global__ void bucketize_kernel(const scalar_t* x, const int64_t* cols, const int64_t* offsets,
                                 const scalar_t* borders, int32_t* out, int64_t N, int64_t D, int64_t K) {
  C2_GRID_STRIDE(e, N * K) {
    const int64_t i = e / K, j = e % K;
    const scalar_t v = x[i * D + cols[j]];
    const int64_t len = offsets[j + 1] - offsets[j];
    int64_t k = 0;
    while (k < len && !(v <= borders[offsets[j] + k])) ++k;
    out[e] = static_cast<int32_t>(k);
  }
}

Tensor batch_bucketize_cuda(const Tensor& float_features, const Tensor& indices, const Tensor& boundaries, const Tensor& lengths) {
  constexpr const char* op = "batch_bucketize";
  auto shape = batch_bucketize_shape(float_features, indices, boundaries, lengths);
  const int64_t N = float_features.size(0), D = float_features.size(1), K = indices.numel();
  auto offs = scanned_offsets(lengths, boundaries.numel(), float_features,
                              [&] { batch_bucketize_offsets(float_features, indices, boundaries, lengths); });
  check_indices_in_range(op, "indices", indices, D);
  auto out = at::empty(c10::asIntArrayRefUnchecked(shape), float_features.options().dtype(at::kInt));
  if (N * K == 0) return out;
  const auto compare = bucket_compare_dtype(float_features, boundaries);
  auto x = float_features.to(compare).contiguous();
  auto b = boundaries.to(compare).contiguous();
  auto cols = indices.to(at::kLong).contiguous();
  c10::cuda::CUDAGuard guard(x.device());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    bucketize_kernel<<<grid_for(N * K), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), cols.const_data_ptr<int64_t>(), offs.const_data_ptr<int64_t>(),
        b.const_data_ptr<scalar_t>(), out.data_ptr<int32_t>(), N, D, K);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

Tensor concat_batch_mat_mul_batch_gather_cuda(const Tensor& indices, at::TensorList inputs) {
  concat_batch_mat_mul_batch_gather_shape(indices, inputs);
  const int64_t n = static_cast<int64_t>(inputs.size()), B = inputs[0].size(0);
  check_indices_in_range("concat_batch_mat_mul_batch_gather", "indices", indices, n * n);
  const int64_t E = B == 0 ? 0 : inputs[0].numel() / B;  // reshape({0, -1}) cannot infer E
  std::vector<Tensor> rows;
  for (const auto& x : inputs) rows.push_back(x.reshape({B, E}));
  auto C = at::stack(rows, 1);  // [B, n, E]
  return at::bmm(C, C.transpose(1, 2)).reshape({B, n * n}).index_select(1, indices.to(at::kLong));
}

// (dS + dS^T) C with dS[b] = sum_j grad[b, j] e_{indices[j]}: dS is one GEMM with a 0/1
// selection matrix (deterministic, unlike a scatter with atomics), then one bmm.
std::vector<Tensor> concat_batch_mat_mul_batch_gather_gradient_cuda(const Tensor& indices, at::TensorList inputs,
                                                               const Tensor& grad) {
  constexpr const char* op = "concat_batch_mat_mul_batch_gather_gradient";
  concat_batch_mat_mul_batch_gather_gradient_check(indices, inputs, grad);
  const int64_t n = static_cast<int64_t>(inputs.size()), B = inputs[0].size(0), J = indices.numel();
  check_indices_in_range(op, "indices", indices, n * n);
  const int64_t E = B == 0 ? 0 : inputs[0].numel() / B;
  std::vector<Tensor> rows;
  for (const auto& x : inputs) rows.push_back(x.reshape({B, E}));
  auto C = at::stack(rows, 1);  // [B, n, E]
  auto select = at::zeros({J, n * n}, grad.options());
  select.scatter_(1, indices.to(at::kLong).reshape({J, 1}), 1.0);
  auto dS = at::matmul(grad, select).reshape({B, n, n});
  auto dC = at::bmm(dS + dS.transpose(1, 2), C);
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < n; ++i) outs.push_back(dC.select(1, i).reshape(inputs[i].sizes()).contiguous());
  return outs;
}

template <typename scalar_t>
__global__ void bucket_one_hot_kernel(const scalar_t* x, const int64_t* offsets, const scalar_t* borders,
                                      scalar_t* out, int64_t N, int64_t D, int64_t W) {
  C2_GRID_STRIDE(e, N * D) {
    const int64_t i = e / D, j = e % D;
    const scalar_t v = x[e];
    const scalar_t* b = borders + offsets[j];
    const int64_t len = offsets[j + 1] - offsets[j];
    int64_t lo = 0, hi = len;  // lower_bound: first border >= v
    while (lo < hi) { const int64_t m = (lo + hi) / 2; if (b[m] < v) lo = m + 1; else hi = m; }
    int64_t lo2 = lo, hi2 = len;  // upper_bound: first border > v
    while (lo2 < hi2) { const int64_t m = (lo2 + hi2) / 2; if (!(v < b[m])) lo2 = m + 1; else hi2 = m; }
    out[i * W + offsets[j] + j + (lo + lo2) / 2] = scalar_t(1);
  }
}

Tensor batch_bucket_one_hot_cuda(const Tensor& data, const Tensor& lengths, const Tensor& boundaries) {
  constexpr const char* op = "batch_bucket_one_hot";
  auto shape = batch_bucket_one_hot_shape(data, lengths, boundaries);
  // Every length must be at least 1 (a column's boundaries are never empty).
  auto offs = scanned_offsets(lengths, boundaries.numel(), data,
                              [&] { batch_bucket_one_hot_offsets(lengths, boundaries); }, 1);
  const int64_t D = lengths.numel();
  const int64_t N = data.size(0), W = shape[1].expect_int();
  const auto compare = bucket_compare_dtype(data, boundaries);
  auto out = at::zeros({N, W}, data.options().dtype(compare));
  if (N * D == 0) return out.to(data.scalar_type());
  auto x = data.to(compare).contiguous();
  auto b = boundaries.to(compare).contiguous();
  c10::cuda::CUDAGuard guard(x.device());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    bucket_one_hot_kernel<<<grid_for(N * D), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), offs.const_data_ptr<int64_t>(), b.const_data_ptr<scalar_t>(),
        out.data_ptr<scalar_t>(), N, D, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out.to(data.scalar_type());  // one-hot values are exact in any floating dtype
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "batch_permutation", &batch_permutation_cuda);
  C2_IMPL(m, "batch_permutation_gradient", &batch_permutation_gradient_cuda);
  C2_IMPL(m, "batch_gather", &batch_gather_cuda);
  C2_IMPL(m, "batch_gather_gradient", &batch_gather_gradient_cuda);
  C2_IMPL(m, "batch_sparse_to_dense", &batch_sparse_to_dense_cuda);
  C2_IMPL(m, "batch_dense_to_sparse", &batch_dense_to_sparse_cuda);
  C2_IMPL(m, "batch_moments", &batch_moments_cuda);
  C2_IMPL(m, "batch_moments_gradient", &batch_moments_gradient_cuda);
  C2_IMPL(m, "batch_box_cox", &batch_box_cox_cuda);
  C2_IMPL(m, "batch_bucketize", &batch_bucketize_cuda);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather", &concat_batch_mat_mul_batch_gather_cuda);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather_gradient", &concat_batch_mat_mul_batch_gather_gradient_cuda);
  C2_IMPL(m, "batch_bucket_one_hot", &batch_bucket_one_hot_cuda);
}

}  // namespace caffe2ops
