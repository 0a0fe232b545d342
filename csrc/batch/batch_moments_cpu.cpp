// BatchMoments: per channel, mu = E[x] and var = E[x^2] (the raw second moment, not
// the variance). One pass over X computes both.
//
// X is viewed as [outer, C, inner] (NCHW: [N, C, HxW]; NHWC: [N*HxW, C, 1]). Every partial sum
// covers a fixed piece of X and partials are combined in a fixed order, so the result is the
// same bit for bit whatever the thread count. Short runs are summed in the input's opmath type
// (vectorisable) and promoted to double per run, which keeps the error independent of N*HxW.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <vector>

#include "batch/batch_shapes.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/register.h"
#include "common/simd.h"

namespace caffe2ops {
namespace {

constexpr int64_t kRun = 1024;  // elements summed in opmath before promotion to double

// sum and sum of squares of p[0..n) into s, s2 (double). Each kRun chunk keeps kLanes partial
// sums (lane k adds elements k, k + kLanes, ...), then adds the lanes in order and promotes the
// result to double. Every SIMD clone adds in this same order (one 512-bit vector of lanes, two
// of 256 bits or four of 128), so the sums do not depend on the CPU, which `omp simd reduction`
// (one partial per lane of whatever width the clone has) did not promise.
constexpr int kLanes = 16;

template <typename scalar_t>
C2_ALWAYS_INLINE void run_moments(const scalar_t* p, int64_t n, double& s, double& s2) {
  using acc_t = at::opmath_type<scalar_t>;
  // GCC's generic vectors: lane k of a Lanes value is the same arithmetic on every target.
  typedef acc_t Lanes __attribute__((vector_size(kLanes * sizeof(acc_t))));
  for (int64_t base = 0; base < n; base += kRun) {
    const int64_t len = std::min(kRun, n - base);
    const scalar_t* q = p + base;
    Lanes a = {}, b = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      Lanes v;
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        std::memcpy(&v, q + i, sizeof(v));
      } else {
        for (int k = 0; k < kLanes; ++k) v[k] = static_cast<acc_t>(q[i + k]);
      }
      a += v;
      b += v * v;
    }
    for (int k = 0; i < len; ++i, ++k) {
      const acc_t v = static_cast<acc_t>(q[i]);
      a[k] += v;
      b[k] += v * v;
    }
    acc_t sa = a[0], sb = b[0];
    for (int k = 1; k < kLanes; ++k) {
      sa += a[k];
      sb += b[k];
    }
    s += sa;
    s2 += sb;
  }
}

template <typename scalar_t>
void run_moments_dispatch(const scalar_t* p, int64_t n, double& s, double& s2) {
  simd_loop<std::is_same_v<scalar_t, float>>([&]() C2_INLINE_LAMBDA { run_moments(p, n, s, s2); });
}

// Column sums of a [rows, width] block into double accumulators, row blocks of kRun rows.
template <typename scalar_t>
void column_moments(const scalar_t* x, int64_t rows, int64_t width, int64_t stride, double* s,
                    double* s2) {
  using acc_t = at::opmath_type<scalar_t>;
  std::vector<acc_t> a(width), b(width);
  for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
    std::fill(a.begin(), a.end(), acc_t(0));
    std::fill(b.begin(), b.end(), acc_t(0));
    const int64_t r1 = std::min(rows, r0 + kRun);
    for (int64_t r = r0; r < r1; ++r) {
      const scalar_t* row = x + r * stride;
      for (int64_t w = 0; w < width; ++w) {
        const acc_t v = static_cast<acc_t>(row[w]);
        a[w] += v;
        b[w] += v * v;
      }
    }
    for (int64_t w = 0; w < width; ++w) {
      s[w] += a[w];
      s2[w] += b[w];
    }
  }
}

template <typename scalar_t>
void moments_kernel(const scalar_t* x, int64_t outer, int64_t C, int64_t inner, double* sum,
                    double* sumsq) {
  if (inner >= 16) {
    // Contiguous runs: one partial per (n, c) run, reduced over n in order.
    std::vector<double> part(2 * outer * C, 0.0);
    at::parallel_for(0, outer * C, grain_for(inner * sizeof(scalar_t)), [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) run_moments_dispatch(x + k * inner, inner, part[2 * k], part[2 * k + 1]);
    });
    for (int64_t n = 0; n < outer; ++n) {
      for (int64_t c = 0; c < C; ++c) {
        sum[c] += part[2 * (n * C + c)];
        sumsq[c] += part[2 * (n * C + c) + 1];
      }
    }
    return;
  }
  // Short runs: column sums over rows of width W = C * inner.
  const int64_t W = C * inner;
  std::vector<double> cs(W, 0.0), cs2(W, 0.0);
  if (W >= 256) {
    // Wide rows: each thread owns a fixed range of columns.
    at::parallel_for(0, W, 64, [&](int64_t w0, int64_t w1) {
      column_moments(x + w0, outer, w1 - w0, W, cs.data() + w0, cs2.data() + w0);
    });
  } else {
    // Narrow rows: fixed row blocks, one partial per block, reduced in block order.
    const int64_t rows_per_block = std::max<int64_t>(kRun, (1 << 16) / std::max<int64_t>(W, 1));
    const int64_t nblk = (outer + rows_per_block - 1) / rows_per_block;
    std::vector<double> part(2 * nblk * W, 0.0);
    at::parallel_for(0, nblk, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t r0 = k * rows_per_block, r1 = std::min(outer, r0 + rows_per_block);
        column_moments(x + r0 * W, r1 - r0, W, W, part.data() + 2 * k * W,
                       part.data() + (2 * k + 1) * W);
      }
    });
    for (int64_t k = 0; k < nblk; ++k) {
      for (int64_t w = 0; w < W; ++w) {
        cs[w] += part[2 * k * W + w];
        cs2[w] += part[(2 * k + 1) * W + w];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t s = 0; s < inner; ++s) {
      sum[c] += cs[c * inner + s];
      sumsq[c] += cs2[c * inner + s];
    }
  }
}

std::tuple<at::Tensor, at::Tensor> batch_moments_cpu(const at::Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments", X, std::string(order));
  const int64_t outer = v.outer.expect_int(), C = v.channels.expect_int(),
                inner = v.inner.expect_int();
  auto x = X.contiguous();
  auto mu = empty_output({C}, x.options());
  auto var = empty_output({C}, x.options());
  std::vector<double> sum(C, 0.0), sumsq(C, 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "batch_moments", [&] {
    moments_kernel(x.const_data_ptr<scalar_t>(), outer, C, inner, sum.data(), sumsq.data());
    // An empty reduction (N * HxW == 0) gives 0/0 = NaN, like mean() over nothing.
    const double count = static_cast<double>(outer * inner);
    for (int64_t c = 0; c < C; ++c) {
      mu.data_ptr<scalar_t>()[c] = static_cast<scalar_t>(sum[c] / count);
      var.data_ptr<scalar_t>()[c] = static_cast<scalar_t>(sumsq[c] / count);
    }
  });
  return {mu, var};
}

// dX[n, c, s] = (dmu[c] + 2 * dvar[c] * x[n, c, s]) / (N * HxW).
at::Tensor batch_moments_gradient_cpu(const at::Tensor& dmu, const at::Tensor& dvar,
                                      const at::Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments_gradient", X, std::string(order));
  batch_moments_gradient_check(dmu, dvar, X, v);
  const int64_t outer = v.outer.expect_int(), C = v.channels.expect_int(),
                inner = v.inner.expect_int();
  auto x = X.contiguous();
  auto dX = empty_output(x.sizes(), x.options());
  if (x.numel() == 0) return dX;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "batch_moments_gradient", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto gm = dmu.contiguous(), gv = dvar.contiguous();
    const acc_t inv = acc_t(1) / static_cast<acc_t>(outer * inner);
    std::vector<acc_t> a(C), b(C);
    for (int64_t c = 0; c < C; ++c) {
      a[c] = static_cast<acc_t>(gm.const_data_ptr<scalar_t>()[c]) * inv;
      b[c] = acc_t(2) * static_cast<acc_t>(gv.const_data_ptr<scalar_t>()[c]) * inv;
    }
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* dp = dX.data_ptr<scalar_t>();
    if (inner == 1) {  // NHWC: rows of C channels
      at::parallel_for(0, outer, grain_for(C * 2 * sizeof(scalar_t)), [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          for (int64_t c = 0; c < C; ++c) {
            dp[n * C + c] = static_cast<scalar_t>(a[c] + b[c] * static_cast<acc_t>(xp[n * C + c]));
          }
        }
      });
    } else {  // NCHW: runs of HxW elements, run k belongs to channel k % C
      at::parallel_for(0, outer * C, grain_for(inner * 2 * sizeof(scalar_t)), [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
          const acc_t ac = a[k % C], bc = b[k % C];
          const scalar_t* xr = xp + k * inner;
          scalar_t* dr = dp + k * inner;
          for (int64_t s = 0; s < inner; ++s) dr[s] = static_cast<scalar_t>(ac + bc * static_cast<acc_t>(xr[s]));
        }
      });
    }
  });
  return dX;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "batch_moments", &batch_moments_cpu);
  C2_IMPL(m, "batch_moments_gradient", &batch_moments_gradient_cpu);
}

}  // namespace caffe2ops
