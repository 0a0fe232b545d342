#include "common/checks.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/nonzero.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <type_traits>

#include "common/parallel.h"
#include "common/simd.h"

namespace caffe2ops {

void check_dim(const char* op, const char* arg, const at::Tensor& t, int64_t dim) {
  C2_CHECK(t.dim() == dim, op, arg, " must be ", dim, "-D, got shape ", t.sizes());
}

void check_min_dim(const char* op, const char* arg, const at::Tensor& t, int64_t min_dim) {
  C2_CHECK(t.dim() >= min_dim, op, arg, " must have rank >= ", min_dim, ", got shape ", t.sizes());
}

void check_index_dtype(const char* op, const char* arg, const at::Tensor& t) {
  auto st = t.scalar_type();
  C2_CHECK(st == at::kInt || st == at::kLong, op, arg, " must be int32 or int64, got ", st);
}

void check_floating(const char* op, const char* arg, const at::Tensor& t, bool allow_half) {
  auto st = t.scalar_type();
  bool ok = st == at::kFloat || st == at::kDouble ||
            (allow_half && (st == at::kHalf || st == at::kBFloat16));
  C2_CHECK(ok, op, arg, " must be ", allow_half ? "float16, bfloat16, " : "",
           "float32 or float64, got ", st);
}

void check_same_dtype(const char* op, const char* arg_a, const at::Tensor& a, const char* arg_b,
                      const at::Tensor& b) {
  C2_CHECK(a.scalar_type() == b.scalar_type(), op, arg_b, " must have the dtype of ", arg_a, " (",
           a.scalar_type(), "), got ", b.scalar_type());
}

void check_same_device(const char* op, const char* arg_a, const at::Tensor& a, const char* arg_b,
                       const at::Tensor& b) {
  C2_CHECK(a.device() == b.device(), op, arg_b, " must be on the device of ", arg_a, " (",
           a.device(), "), got ", b.device());
}

void check_cpu(const char* op, const char* arg, const at::Tensor& t) {
  C2_CHECK(t.device().is_cpu(), op, arg, " must be a CPU tensor here, got ", t.device());
}

namespace {

// Whether any of n indices lies outside [0, last]. Compared as unsigned, a negative index is
// larger than any bound, so one maximum covers both ends; it vectorises (the loop that stopped
// at the first bad position did not, and cost a third of a 64K-row permutation gradient).
template <typename index_t>
C2_ALWAYS_INLINE bool any_above(const index_t* idx, int64_t n, std::make_unsigned_t<index_t> last) {
  using U = std::make_unsigned_t<index_t>;
  U top = 0;
  for (int64_t i = 0; i < n; ++i) top = std::max(top, static_cast<U>(idx[i]));
  return top > last;
}

// Smallest position whose value is outside [0, bound), or -1. Blocks are checked at full speed
// and only a block that holds a bad index is searched one by one; the atomic minimum keeps the
// reported position independent of the thread count.
template <typename index_t>
int64_t first_out_of_range(const index_t* idx, int64_t n, int64_t bound) {
  if (n == 0) return -1;
  if (bound <= 0) return 0;
  using U = std::make_unsigned_t<index_t>;
  // A bound beyond index_t's range leaves only the negative values out.
  const U last = static_cast<U>(std::min<int64_t>(bound - 1, std::numeric_limits<index_t>::max()));
  constexpr int64_t kBlock = 4096;
  std::atomic<int64_t> first{n};
  at::parallel_for(0, n, std::max<int64_t>(kBlock, grain_for(sizeof(index_t))), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end && b < first.load(std::memory_order_relaxed); b += kBlock) {
      const int64_t e = std::min(end, b + kBlock);
      if (!simd_loop<true>([&]() C2_INLINE_LAMBDA { return any_above(idx + b, e - b, last); })) continue;
      int64_t i = b;
      while (static_cast<U>(idx[i]) <= last) ++i;
      int64_t cur = first.load();
      while (i < cur && !first.compare_exchange_weak(cur, i)) {
      }
      return;
    }
  });
  const int64_t f = first.load();
  return f == n ? -1 : f;
}

[[noreturn]] void raise_out_of_range(const char* op, const char* arg, int64_t pos, int64_t v,
                                      int64_t bound, const IndexErrorText& text) {
  TORCH_CHECK(false, "caffe2ops::", op, ": ", text ? text(pos, v) + "; " : std::string(), arg,
              " value ", v, " out of range [0, ", bound, ") at position ", pos);
}

}  // namespace

void check_indices_in_range(const char* op, const char* arg, const at::Tensor& indices,
                            int64_t bound, const IndexErrorText& text) {
  check_index_dtype(op, arg, indices);
  if (!indices.device().is_cpu()) {
    // One reduction on the device (and one sync) for the common, valid case; the offending
    // position is looked up only on failure.
    auto flat = indices.reshape({-1});
    auto bad = flat.lt(0).logical_or_(flat.ge(bound));
    if (!bad.any().item<bool>()) return;
    const int64_t pos = bad.nonzero().select(1, 0).min().item<int64_t>();
    raise_out_of_range(op, arg, pos, flat[pos].item<int64_t>(), bound, text);
  }
  auto idx = indices.contiguous();
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "check_indices_in_range", [&] {
    const index_t* p = idx.const_data_ptr<index_t>();
    int64_t pos = first_out_of_range(p, idx.numel(), bound);
    if (pos >= 0) raise_out_of_range(op, arg, pos, static_cast<int64_t>(p[pos]), bound, text);
  });
}

}  // namespace caffe2ops
