#pragma once
// The row-block gather and its adjoint, shared by batch_permutation, batch_gather and their
// gradients. Data is viewed as [P, M, block] and the output as [P, L, block]:
//   gather:       out[p, i, :]  = data[p, idx(p, i), :]
//   scatter_add:  grad_data[p, idx(p, i), :] += grad[p, i, :]
// where idx(p, i) = indices[i], or indices[p * L + i] with per_outer_indices (match_outer).
// Indices must already be validated; these loops trust them.
//
// Speed notes. The gathered blocks are typically a few bytes (one dense feature, 4 bytes) to
// a few hundred (an embedding row): a call per block (memcpy) or a loop with a run-time trip
// count costs more than the copy, so each width class gets its own loop of fixed-size moves
// (width_copy.h). The source rows are picked at random, so the hardware prefetcher cannot
// see them coming: each loop prefetches the block kAhead positions ahead, which keeps
// several cache misses in flight on one core instead of one.
#include <ATen/Parallel.h>
#include <ATen/TensorUtils.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/parallel.h"
#include "common/simd.h"
#include "common/streaming.h"
#include "common/width_copy.h"

namespace caffe2ops {

namespace detail {

// How far ahead (in gathered blocks) to prefetch: enough to cover a memory latency at a few
// nanoseconds per block, small enough that the lines are still in L1 when used.
constexpr int64_t kAhead = 16;

inline void prefetch_block(const char* p, int64_t bytes) {
  // The first 256 bytes; longer blocks are sequential runs the hardware prefetcher follows.
  const int64_t n = std::min<int64_t>(bytes, 256);
  for (int64_t o = 0; o < n; o += 64) __builtin_prefetch(p + o);
}

// Output positions [begin, end) of the flattened [P, L] index space, walked without a
// division per position: the index row and the data slab change only at row boundaries.
// kNextSlab: the indices touch most cache lines of each slab (a few columns of every row), so
// the next slab is prefetched front to back while this one is gathered, a sequential stream
// the memory system serves at full speed, instead of one random miss per block; the copies
// run between prefetches in tight loops.
enum class Prefetch { kNone, kAhead, kNextSlab };

// The positions [begin, end) of the flattened [P, L] index space one row's run at a time,
// without a division per position: for (RowRuns run(L, begin, end); run.next();) visits
// positions [run.i, run.stop) of row run.p.
struct RowRuns {
  int64_t L, end, k, p, i, stop = 0;
  RowRuns(int64_t L_, int64_t begin, int64_t end_)
      : L(L_), end(end_), k(begin), p(begin / L_), i(begin - begin / L_ * L_) {}
  C2_ALWAYS_INLINE bool next() {
    if (stop != 0) {  // runs are never empty: past the first, each starts a row
      ++p;
      i = 0;
    }
    if (k >= end) return false;
    stop = std::min(L, i + (end - k));
    k += stop - i;
    return true;
  }
};

template <typename Copy, typename index_t>
C2_ALWAYS_INLINE void gather_range(char* out, const char* data, const index_t* indices, int64_t P, int64_t L,
                  int64_t M, int64_t block_bytes, bool per_outer, Prefetch prefetch,
                  int64_t begin, int64_t end) {
  const int64_t bytes = Copy::bytes(block_bytes);
  const int64_t slab_bytes = M * bytes;
  // Four blocks a step, their sources computed first: the output never overlaps the data
  // (__restrict), so the compiler may issue the four reads before the four writes (a 4-byte
  // gather from L2: 3.0 us instead of 5.1 us, one block a step). Inlined into each clone.
  auto copy_run = [&](char* __restrict dst, const char* __restrict slab, const index_t* idx, int64_t i0,
                      int64_t i1) C2_INLINE_LAMBDA {
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4, dst += 4 * bytes) {
      const char* s0 = slab + static_cast<int64_t>(idx[i]) * bytes;
      const char* s1 = slab + static_cast<int64_t>(idx[i + 1]) * bytes;
      const char* s2 = slab + static_cast<int64_t>(idx[i + 2]) * bytes;
      const char* s3 = slab + static_cast<int64_t>(idx[i + 3]) * bytes;
      Copy::copy(dst, s0, bytes);
      Copy::copy(dst + bytes, s1, bytes);
      Copy::copy(dst + 2 * bytes, s2, bytes);
      Copy::copy(dst + 3 * bytes, s3, bytes);
    }
    for (; i < i1; ++i, dst += bytes) {
      Copy::copy(dst, slab + static_cast<int64_t>(idx[i]) * bytes, bytes);
    }
  };
  char* dst = out + begin * bytes;
  for (RowRuns run(L, begin, end); run.next();) {
    const int64_t p = run.p, stop = run.stop;
    int64_t i = run.i;
    const index_t* idx = indices + (per_outer ? p * L : 0);
    const char* slab = data + p * slab_bytes;
    if (prefetch == Prefetch::kNextSlab && p + 1 < P) {
      // One line of the next slab per `every` positions covers it by the end of this one.
      const char* next = slab + slab_bytes;
      const int64_t every = std::max<int64_t>(1, L * 64 / slab_bytes);
      for (int64_t ahead = i / every * 64; i < stop; ahead += 64) {
        if (ahead < slab_bytes) __builtin_prefetch(next + ahead);
        const int64_t run = std::min(stop, i + every);
        copy_run(dst, slab, idx, i, run);
        dst += (run - i) * bytes;
        i = run;
      }
      continue;
    }
    if (prefetch == Prefetch::kAhead) {
      for (; i + kAhead < stop; ++i, dst += bytes) {
        prefetch_block(slab + static_cast<int64_t>(idx[i + kAhead]) * bytes, bytes);
        Copy::copy(dst, slab + static_cast<int64_t>(idx[i]) * bytes, bytes);
      }
    }
    copy_run(dst, slab, idx, i, stop);
    dst += (stop - i) * bytes;
  }
}

#ifdef C2_STREAMING_X86
// gather_range for blocks of whole 64-byte lines into a line-aligned output, when the call
// moves enough bytes that streaming stores pay (common/streaming.h): each line is written with
// one streaming store, so the output costs no read for ownership and evicts nothing. The
// walk of gather_range's kNone and kAhead (kNextSlab is for blocks under a line), in a function
// of its own because the AVX-512 moves must be compiled in a function of that target.
template <typename index_t>
__attribute__((target("avx512f"))) void gather_lines_streamed(char* out, const char* data, const index_t* indices,
                                                              int64_t L, int64_t slab_bytes, int64_t bytes,
                                                              bool per_outer, bool ahead, int64_t begin, int64_t end) {
  char* dst = out + begin * bytes;
  for (RowRuns run(L, begin, end); run.next();) {
    const index_t* idx = indices + (per_outer ? run.p * L : 0);
    const char* slab = data + run.p * slab_bytes;
    for (int64_t i = run.i; i < run.stop; ++i, dst += bytes) {
      if (ahead && i + kAhead < L) prefetch_block(slab + static_cast<int64_t>(idx[i + kAhead]) * bytes, bytes);
      const char* src = slab + static_cast<int64_t>(idx[i]) * bytes;
      for (int64_t o = 0; o < bytes; o += 64) {
        _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + o), _mm512_loadu_si512(src + o));
      }
    }
  }
  streaming_fence();  // done before the task ends
}
#endif

template <typename Copy, typename index_t>
void gather_parallel(void* out, const void* data, const index_t* indices, int64_t P, int64_t L,
                     int64_t M, int64_t block_bytes, bool per_outer) {
  // Data that fits in L2 needs no prefetching (it costs more than it saves there). Beyond:
  // "dense" gathers (blocks of less than a line, at least as many gathered as the slab has
  // lines, so that 63% or more of its lines are touched: streaming all of them measured
  // faster than fetching those at random; slabs small enough that the prefetched one waits
  // in L2) stream the next slab, the others prefetch kAhead blocks ahead.
  const int64_t slab_bytes = M * block_bytes;
  const bool cold = P * slab_bytes > (int64_t{1} << 20);
  const bool dense = P > 1 && block_bytes < 64 && L * 64 >= slab_bytes && slab_bytes <= (int64_t{1} << 18);
  const Prefetch prefetch = !cold ? Prefetch::kNone : dense ? Prefetch::kNextSlab : Prefetch::kAhead;
  // A block read and written; a random read from memory costs a whole line, whatever the block.
  const int64_t grain = copy_grain_for((cold ? std::max<int64_t>(block_bytes, 64) : block_bytes) + block_bytes);
#ifdef C2_STREAMING_X86
  // The call writes the output and reads at most as many bytes of data, and no more than
  // the data holds.
  const int64_t out_bytes = P * L * block_bytes;
  if (block_bytes % 64 == 0 && line_aligned(out) && line_streaming_available() &&
      streaming_stores_pay(out_bytes + std::min(out_bytes, P * slab_bytes))) {
    at::parallel_for(0, P * L, grain, [&](int64_t begin, int64_t end) {
      gather_lines_streamed(static_cast<char*>(out), static_cast<const char*>(data), indices, L, slab_bytes,
                            block_bytes, per_outer, prefetch == Prefetch::kAhead, begin, end);
    });
    return;
  }
#endif
  at::parallel_for(0, P * L, grain, [&](int64_t begin, int64_t end) {
    // Blocks of 32 bytes or more are moved in the widest vectors the machine has.
    simd_loop<Copy::kVector>([&]() C2_INLINE_LAMBDA {
      gather_range<Copy>(static_cast<char*>(out), static_cast<const char*>(data), indices, P, L, M,
                         block_bytes, per_outer, prefetch, begin, end);
    });
  });
}

}  // namespace detail

// Type-erased by element size: any dtype is copied bit for bit (Caffe2's CPU BatchGather
// copied bytes).
template <typename index_t>
void gather_blocks(void* out, const void* data, const index_t* indices, int64_t P, int64_t L,
                   int64_t M, int64_t block_bytes, bool per_outer) {
  if (P * L == 0 || block_bytes == 0) return;
  with_copy_class(copy_class(block_bytes), [&](auto copy) {
    detail::gather_parallel<decltype(copy)>(out, data, indices, P, L, M, block_bytes, per_outer);
  });
}

// Element strides of the gradient viewed as [P, L, block].
struct GradStrides {
  int64_t p, l, c;
};

// The gradient to read and its strides as [P, L, block]. One that arrives expanded (the
// backward of a sum) or transposed is read where it is when such a view exists (always for an
// expanded one), instead of being copied first; any other is made contiguous.
struct GradView {
  at::Tensor tensor;
  GradStrides strides;
};

inline GradView grad_view(const at::Tensor& grad, int64_t P, int64_t L, int64_t block) {
  const int64_t shape[3] = {P, L, block};
  if (auto s = at::detail::computeStride(grad.sizes(), grad.strides(), at::IntArrayRef(shape, 3))) {
    return {grad, GradStrides{(*s)[0], (*s)[1], (*s)[2]}};
  }
  return {grad.contiguous(), GradStrides{L * block, block, 1}};
}

namespace detail {

// grad_data[p, idx(p, i), c] += grad[p, i, c] for the rows of one outer batch p (grad points
// at its first element) and the columns [c0, c1), in increasing i. kBlock > 0 fixes the block
// width at compile time and needs unit column stride.
template <int64_t kBlock, typename scalar_t, typename index_t>
C2_ALWAYS_INLINE void accumulate_rows(scalar_t* slab, const scalar_t* grad, const index_t* idx, int64_t L,
                     int64_t block, int64_t c0, int64_t c1, GradStrides gs) {
  if constexpr (kBlock > 0) {
    for (int64_t i = 0; i < L; ++i) {
      scalar_t* dst = slab + static_cast<int64_t>(idx[i]) * kBlock;
      const scalar_t* src = grad + i * gs.l;
      for (int64_t c = 0; c < kBlock; ++c) dst[c] += src[c];
    }
  } else if (gs.c == 1) {  // kept apart from the strided loop below so that it vectorises
    for (int64_t i = 0; i < L; ++i) {
      scalar_t* dst = slab + static_cast<int64_t>(idx[i]) * block;
      const scalar_t* src = grad + i * gs.l;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  } else if (gs.c == 0) {
    // An expanded gradient (the backward of a sum): one value per row, added as a broadcast
    // vector instead of read element by element (1.9x on a 400 KB gradient).
    for (int64_t i = 0; i < L; ++i) {
      scalar_t* dst = slab + static_cast<int64_t>(idx[i]) * block;
      const scalar_t value = grad[i * gs.l];
      for (int64_t c = c0; c < c1; ++c) dst[c] += value;
    }
  } else {
    for (int64_t i = 0; i < L; ++i) {
      scalar_t* dst = slab + static_cast<int64_t>(idx[i]) * block;
      const scalar_t* src = grad + i * gs.l;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c * gs.c];
    }
  }
}

template <typename scalar_t, typename index_t>
C2_ALWAYS_INLINE void accumulate_batch(scalar_t* slab, const scalar_t* grad, const index_t* idx, int64_t L,
                      int64_t block, GradStrides gs) {
  switch (gs.c == 1 ? block : 0) {
    case 1: return accumulate_rows<1>(slab, grad, idx, L, block, 0, block, gs);
    case 2: return accumulate_rows<2>(slab, grad, idx, L, block, 0, block, gs);
    case 4: return accumulate_rows<4>(slab, grad, idx, L, block, 0, block, gs);
    case 8: return accumulate_rows<8>(slab, grad, idx, L, block, 0, block, gs);
    case 16: return accumulate_rows<16>(slab, grad, idx, L, block, 0, block, gs);
    default: return accumulate_rows<0>(slab, grad, idx, L, block, 0, block, gs);
  }
}

// Rows [m0, m1) of a one-batch grad_data (P == 1), each written at its first contribution
// instead of zeroed first: v = 0; v += grad is the same arithmetic as the zero-then-add loop
// (a -0.0 gradient still gives +0.0), so the result is bit for bit the same, but a row that is
// too large for the cache is no longer written twice and read back in between (a permutation
// gradient of 16 MB moves about 48 MB instead of 80). Rows no index names are zeroed last.
// kUnit: the gradient's columns are adjacent (gs.c == 1), so the row loops vectorise.
template <bool kUnit, typename scalar_t, typename index_t>
void scatter_owned_rows(scalar_t* grad_data, const scalar_t* grad, GradStrides gs, const index_t* indices,
                        int64_t L, int64_t block, int64_t m0, int64_t m1) {
  const int64_t sc = kUnit ? 1 : gs.c;
  std::vector<uint8_t> seen(static_cast<size_t>(m1 - m0), 0);
  for (int64_t i = 0; i < L; ++i) {
    const int64_t m = static_cast<int64_t>(indices[i]);
    if (m < m0 || m >= m1) continue;
    scalar_t* dst = grad_data + m * block;
    const scalar_t* src = grad + i * gs.l;
    if (seen[m - m0]) {
      for (int64_t c = 0; c < block; ++c) dst[c] += src[c * sc];
    } else {
      seen[m - m0] = 1;
      for (int64_t c = 0; c < block; ++c) {
        scalar_t v(0);
        v += src[c * sc];
        dst[c] = v;
      }
    }
  }
  const int64_t row_bytes = block * static_cast<int64_t>(sizeof(scalar_t));
  for (int64_t m = m0; m < m1;) {
    if (seen[m - m0]) {
      ++m;
      continue;
    }
    int64_t e = m + 1;
    while (e < m1 && !seen[e - m0]) ++e;
    zero_bytes(reinterpret_cast<char*>(grad_data + m * block), (e - m) * row_bytes);
    m = e;
  }
}

}  // namespace detail

// grad_data is written entirely, so it may come uninitialised: each task zeroes exactly the
// part it then accumulates into (or writes each row at its first contribution), which saves a
// separate pass. Every destination element receives its contributions in increasing i,
// whatever the thread count, so the float result is deterministic: the work is split over p
// when there are several outer batches, otherwise over destination rows or columns of the
// block. grad is read through `gs`.
template <typename scalar_t, typename index_t>
void scatter_add_blocks(scalar_t* grad_data, const scalar_t* grad, GradStrides gs, const index_t* indices,
                        int64_t P, int64_t L, int64_t M, int64_t block, bool per_outer) {
  if (P * M * block == 0) return;
  if (P > 1) {
    // float and double rows are added in the widest vectors the machine has.
    constexpr bool kVector = std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>;
    at::parallel_for(0, P, grain_for((L + M) * block * sizeof(scalar_t)), [&](int64_t b, int64_t e) {
      simd_loop<kVector>([&]() C2_INLINE_LAMBDA {
        for (int64_t p = b; p < e; ++p) {
          scalar_t* slab = grad_data + p * M * block;
          zero_bytes(reinterpret_cast<char*>(slab), M * block * static_cast<int64_t>(sizeof(scalar_t)));
          detail::accumulate_batch(slab, grad + p * gs.p, indices + (per_outer ? p * L : 0), L, block, gs);
        }
      });
    });
  } else {
    // One outer batch. Rows of a cache line or more in a destination too large for the cache:
    // each task owns a range of destination rows, scans all L indices for its own and writes
    // each row at its first contribution (scatter_owned_rows); the index reads repeat per task,
    // and whole rows stay on one thread. Narrower rows stay on one thread: scanning for its own
    // rows, each of two threads mispredicts the owner test half the time, which measured 2x
    // slower than one thread doing all of a 16 MB gradient of 1-element rows. Rows of a cache
    // line or more of a smaller destination are split by groups of 16 columns, so that two
    // threads do not write the same line.
    const int64_t row_bytes = block * static_cast<int64_t>(sizeof(scalar_t));
    const bool split = row_bytes >= 64 && M * row_bytes >= (int64_t{1} << 22) &&
                       L * static_cast<int64_t>(sizeof(index_t)) >= kGrainBytes;
    if (split) {
      const int64_t tasks = at::get_num_threads();
      at::parallel_for(0, M, (M + tasks - 1) / tasks, [&](int64_t m0, int64_t m1) {
        if (gs.c == 1) return detail::scatter_owned_rows<true>(grad_data, grad, gs, indices, L, block, m0, m1);
        detail::scatter_owned_rows<false>(grad_data, grad, gs, indices, L, block, m0, m1);
      });
      return;
    }
    if (block < 16 || row_bytes < 64) {
      zero_bytes(reinterpret_cast<char*>(grad_data), M * row_bytes);
      return detail::accumulate_batch(grad_data, grad, indices, L, block, gs);
    }
    constexpr int64_t kGroup = 16;
    const int64_t groups = (block + kGroup - 1) / kGroup;
    const int64_t min_groups = (grain_for((L + M) * sizeof(scalar_t)) + kGroup - 1) / kGroup;
    at::parallel_for(0, groups, min_groups, [&](int64_t g0, int64_t g1) {
      const int64_t c0 = g0 * kGroup, c1 = std::min(block, g1 * kGroup);
      for (int64_t m = 0; m < M; ++m) {
        zero_bytes(reinterpret_cast<char*>(grad_data + m * block + c0),
                   (c1 - c0) * static_cast<int64_t>(sizeof(scalar_t)));
      }
      if (c0 == 0 && c1 == block) return detail::accumulate_batch(grad_data, grad, indices, L, block, gs);
      detail::accumulate_rows<0>(grad_data, grad, indices, L, block, c0, c1, gs);
    });
  }
}

}  // namespace caffe2ops
