// SparseNormalize / Float16SparseNormalize on the CPU: each distinct row listed in
// `indices` is rescaled once, from its original value (unlike Caffe2, which rescaled repeats again), in parallel and in
// place: p_r *= norm / (|p_r| + 1e-12) when max-norm is off or |p_r| > norm. Rows not listed
// are never read or written. The norm is accumulated in float32 for float16/float32 rows (as
// Caffe2 did for float16) and in float64 for float64 rows.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "common/parallel.h"
#include "common/register.h"
#include "sparse_normalize/sparse_normalize_driver.h"

namespace caffe2ops {
namespace {

// Distinct rows of `indices` in first-occurrence order (range already checked).
std::vector<int64_t> distinct_rows(const at::Tensor& indices, int64_t R) {
  auto idx = indices.reshape({-1}).contiguous();
  std::vector<int64_t> rows;
  rows.reserve(idx.numel());
  std::vector<uint8_t> seen(R, 0);
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "sparse_normalize", [&] {
    const index_t* p = idx.const_data_ptr<index_t>();
    for (int64_t i = 0; i < idx.numel(); ++i) {
      const int64_t r = static_cast<int64_t>(p[i]);
      if (!seen[r]) {
        seen[r] = 1;
        rows.push_back(r);
      }
    }
  });
  return rows;
}

template <typename scalar_t>
void normalize_rows(scalar_t* data, int64_t E, const std::vector<int64_t>& rows, bool use_max_norm,
                    double norm) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t target = static_cast<acc_t>(norm);
  at::parallel_for(0, static_cast<int64_t>(rows.size()), grain_for(E * sizeof(scalar_t) * 2),
                   [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      scalar_t* row = data + rows[k] * E;
      acc_t sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t j = 0; j < E; ++j) sq += static_cast<acc_t>(row[j]) * static_cast<acc_t>(row[j]);
      const acc_t n = std::sqrt(sq);
      // "!(n <= norm)" rather than "n > norm": a NaN row is rescaled (to NaN), as in Caffe2.
      if (use_max_norm && n <= target) continue;
      const acc_t scale = target / (n + acc_t(1e-12));
      for (int64_t j = 0; j < E; ++j) row[j] = static_cast<scalar_t>(static_cast<acc_t>(row[j]) * scale);
    }
  });
}

// Normalises the listed rows of `param` in place; `param` must be contiguous (and on the CPU).
void normalize_in_place(const char* op, const at::Tensor& param, const at::Tensor& indices,
                        bool use_max_norm, double norm) {
  check_cpu(op, "param", param);
  const int64_t R = param.size(0);
  check_indices_in_range(op, "indices", indices, R);
  if (indices.numel() == 0 || param.numel() == 0) return;
  const int64_t E = param.numel() / R;
  auto rows = distinct_rows(indices, R);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kHalf, param.scalar_type(), "sparse_normalize", [&] {
    normalize_rows(param.data_ptr<scalar_t>(), E, rows, use_max_norm, norm);
  });
}

at::Tensor sparse_normalize_cpu(const at::Tensor& param, const at::Tensor& indices,
                                const std::optional<at::Tensor>&, bool use_max_norm, double norm) {
  return sparse_normalize_functional("sparse_normalize", normalize_in_place, param, indices, use_max_norm, norm, false);
}
at::Tensor& sparse_normalize__cpu(at::Tensor& param, const at::Tensor& indices,
                                  const std::optional<at::Tensor>&, bool use_max_norm, double norm) {
  return sparse_normalize_in_place("sparse_normalize_", normalize_in_place, param, indices, use_max_norm, norm, false);
}
at::Tensor float16_sparse_normalize_cpu(const at::Tensor& param, const at::Tensor& indices,
                                        const std::optional<at::Tensor>&, bool use_max_norm, double norm) {
  return sparse_normalize_functional("float16_sparse_normalize", normalize_in_place, param, indices, use_max_norm, norm, true);
}
at::Tensor& float16_sparse_normalize__cpu(at::Tensor& param, const at::Tensor& indices,
                                          const std::optional<at::Tensor>&, bool use_max_norm, double norm) {
  return sparse_normalize_in_place("float16_sparse_normalize_", normalize_in_place, param, indices, use_max_norm, norm, true);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "sparse_normalize", &sparse_normalize_cpu);
  C2_IMPL(m, "sparse_normalize_", &sparse_normalize__cpu);
  C2_IMPL(m, "float16_sparse_normalize", &float16_sparse_normalize_cpu);
  C2_IMPL(m, "float16_sparse_normalize_", &float16_sparse_normalize__cpu);
}

}  // namespace caffe2ops
