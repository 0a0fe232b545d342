// SparseNormalize on CUDA (Caffe2 ran its CPU kernel through a GPU fallback). The distinct
// listed rows are gathered, their norms taken in float32 (float64 for float64 rows), scaled,
// and written back with index_copy_: rows are unique, so no write races and no atomics.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/register.h"
#include "sparse_normalize/sparse_normalize_driver.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;
using OptT = std::optional<Tensor>;

void normalize_in_place(const char* op, const Tensor& param, const Tensor& indices, bool use_max_norm, double norm) {
  const int64_t R = param.size(0);
  check_indices_in_range(op, "indices", indices, R);
  if (indices.numel() == 0 || param.numel() == 0) return;
  auto rows = std::get<0>(at::_unique(indices.reshape({-1}).to(at::kLong), /*sorted=*/false));
  auto acc = param.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto sub = param.reshape({R, -1}).index_select(0, rows).to(acc);
  auto n = sub.norm(2, {1}, /*keepdim=*/true);
  auto scale = norm / (n + 1e-12);
  if (use_max_norm) scale = at::where(n <= norm, at::ones_like(scale), scale);  // NaN rows rescale
  param.view({R, -1}).index_copy_(0, rows, (sub * scale).to(param.scalar_type()));
}

Tensor sparse_normalize_cuda(const Tensor& p, const Tensor& i, const OptT&, bool m, double n) {
  return sparse_normalize_functional("sparse_normalize", normalize_in_place, p, i, m, n, false);
}
Tensor& sparse_normalize__cuda(Tensor& p, const Tensor& i, const OptT&, bool m, double n) {
  return sparse_normalize_in_place("sparse_normalize_", normalize_in_place, p, i, m, n, false);
}
Tensor float16_sparse_normalize_cuda(const Tensor& p, const Tensor& i, const OptT&, bool m, double n) {
  return sparse_normalize_functional("float16_sparse_normalize", normalize_in_place, p, i, m, n, true);
}
Tensor& float16_sparse_normalize__cuda(Tensor& p, const Tensor& i, const OptT&, bool m, double n) {
  return sparse_normalize_in_place("float16_sparse_normalize_", normalize_in_place, p, i, m, n, true);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "sparse_normalize", &sparse_normalize_cuda);
  C2_IMPL(m, "sparse_normalize_", &sparse_normalize__cuda);
  C2_IMPL(m, "float16_sparse_normalize", &float16_sparse_normalize_cuda);
  C2_IMPL(m, "float16_sparse_normalize_", &float16_sparse_normalize__cuda);
}

}  // namespace caffe2ops
