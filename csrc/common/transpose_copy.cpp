#include "common/transpose_copy.h"

#include <ATen/Parallel.h>
#include <ATen/TensorUtils.h>

#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "common/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define C2_TRANSPOSE_AVX2 1
#endif

namespace caffe2ops {
namespace {

// Rows [r0, r1) x columns [c0, c1) of one batch, one element at a time; `kBytes` fixed so each
// move is a single load and store.
template <int64_t kBytes>
void tile_scalar(char* dst, const char* src, int64_t dst_row, int64_t src_col, int64_t r0, int64_t r1,
                 int64_t c0, int64_t c1) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) {
      std::memcpy(dst + (r * dst_row + c) * kBytes, src + (r + c * src_col) * kBytes, kBytes);
    }
  }
}

void tile_bytes(char* dst, const char* src, int64_t dst_row, int64_t src_col, int64_t r0, int64_t r1,
                int64_t c0, int64_t c1, int64_t el) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) std::memcpy(dst + (r * dst_row + c) * el, src + (r + c * src_col) * el, el);
  }
}

#ifdef C2_TRANSPOSE_AVX2
// One 8x8 tile of 4-byte elements: eight source columns in, eight destination rows out.
__attribute__((target("avx2"))) inline void tile8x8_4(char* dst, const char* src, int64_t dst_row,
                                                      int64_t src_col) {
  const float* s = reinterpret_cast<const float*>(src);
  float* d = reinterpret_cast<float*>(dst);
  __m256 v[8];
  for (int k = 0; k < 8; ++k) v[k] = _mm256_loadu_ps(s + k * src_col);
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d + 0 * dst_row, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * dst_row, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * dst_row, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * dst_row, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * dst_row, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * dst_row, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * dst_row, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * dst_row, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// One 4x4 tile of 8-byte elements.
__attribute__((target("avx2"))) inline void tile4x4_8(char* dst, const char* src, int64_t dst_row,
                                                      int64_t src_col) {
  const double* s = reinterpret_cast<const double*>(src);
  double* d = reinterpret_cast<double*>(dst);
  const __m256d v0 = _mm256_loadu_pd(s), v1 = _mm256_loadu_pd(s + src_col);
  const __m256d v2 = _mm256_loadu_pd(s + 2 * src_col), v3 = _mm256_loadu_pd(s + 3 * src_col);
  const __m256d t0 = _mm256_unpacklo_pd(v0, v1), t1 = _mm256_unpackhi_pd(v0, v1);
  const __m256d t2 = _mm256_unpacklo_pd(v2, v3), t3 = _mm256_unpackhi_pd(v2, v3);
  _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + dst_row, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * dst_row, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * dst_row, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// Rows [r0, r1) of one batch: whole kT x kT tiles in registers, column by column of tiles (the
// band's source lines are used up before the next), then the ragged edges one by one.
template <int64_t kBytes, int64_t kT, void (*Tile)(char*, const char*, int64_t, int64_t)>
__attribute__((target("avx2"))) void band_avx2(char* dst, const char* src, int64_t dst_row, int64_t src_col,
                                               int64_t r0, int64_t r1, int64_t cols) {
  const int64_t r_full = r0 + (r1 - r0) / kT * kT;
  int64_t c = 0;
  for (; c + kT <= cols; c += kT) {
    for (int64_t r = r0; r < r_full; r += kT) {
      Tile(dst + (r * dst_row + c) * kBytes, src + (r + c * src_col) * kBytes, dst_row, src_col);
    }
  }
  tile_scalar<kBytes>(dst, src, dst_row, src_col, r0, r_full, c, cols);
  tile_scalar<kBytes>(dst, src, dst_row, src_col, r_full, r1, 0, cols);
}
#endif

// Rows [r0, r1) of one batch, in tiles of 16 x 16 elements so that the lines read from the
// source columns and written to the destination rows stay in L1 while the tile is done.
void band_portable(char* dst, const char* src, int64_t dst_row, int64_t src_col, int64_t r0, int64_t r1,
                   int64_t cols, int64_t el) {
  constexpr int64_t kT = 16;
  for (int64_t c0 = 0; c0 < cols; c0 += kT) {
    const int64_t c1 = std::min(cols, c0 + kT);
    for (int64_t r = r0; r < r1; r += kT) {
      const int64_t re = std::min(r1, r + kT);
      switch (el) {
        case 1: tile_scalar<1>(dst, src, dst_row, src_col, r, re, c0, c1); break;
        case 2: tile_scalar<2>(dst, src, dst_row, src_col, r, re, c0, c1); break;
        case 4: tile_scalar<4>(dst, src, dst_row, src_col, r, re, c0, c1); break;
        case 8: tile_scalar<8>(dst, src, dst_row, src_col, r, re, c0, c1); break;
        default: tile_bytes(dst, src, dst_row, src_col, r, re, c0, c1, el);
      }
    }
  }
}

}  // namespace

void copy_transposed(const TransposeBlock& t) {
  if (t.batches == 0 || t.rows == 0 || t.cols == 0) return;
  const int64_t el = t.element_size;
  // Bands of rows as wide as a cache line of the source columns, so that each band reads whole
  // lines; four lines where the columns lie 1 KiB or more apart (four or fewer to a page), so
  // that each page reached is used for more: 8 column-major 1024 x 2048 inputs 1.3x faster, a
  // channels-last split of 256 x 256 x 16 x 16 along its channels 1.5x (and then 2 threads
  // gain 1.6x, where with one line they gained nothing).
  const int64_t band = std::max<int64_t>(8, (t.src_col * el >= 1024 ? 256 : 64) / el);
  const int64_t bands = (t.rows + band - 1) / band;
  at::parallel_for(0, t.batches * bands, grain_for(2 * band * t.cols * el), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / bands, r0 = (k - b * bands) * band, r1 = std::min(t.rows, r0 + band);
      char* dst = t.dst + b * t.dst_batch * el;
      const char* src = t.src + b * t.src_batch * el;
#ifdef C2_TRANSPOSE_AVX2
      if (cpu_has_avx2() && el == 4) {
        band_avx2<4, 8, tile8x8_4>(dst, src, t.dst_row, t.src_col, r0, r1, t.cols);
        continue;
      }
      if (cpu_has_avx2() && el == 8) {
        band_avx2<8, 4, tile4x4_8>(dst, src, t.dst_row, t.src_col, r0, r1, t.cols);
        continue;
      }
#endif
      band_portable(dst, src, t.dst_row, t.src_col, r0, r1, t.cols, el);
    }
  });
}

bool copy_transposed_rows(char* dst, int64_t dst_row, const at::Tensor& x, int64_t axis, int64_t rows) {
  if (x.numel() == 0) return false;
  const int64_t inner = x.numel() / rows, el = x.element_size();
  const auto* src = static_cast<const char*>(x.const_data_ptr());
  const int64_t as_matrix[2] = {rows, inner};
  if (rows > 1 && inner > 1) {
    if (auto s = at::detail::computeStride(x.sizes(), x.strides(), at::IntArrayRef(as_matrix, 2));
        s && (*s)[0] == 1) {
      copy_transposed({dst, src, 1, rows, inner, 0, dst_row, 0, (*s)[1], el});
      return true;
    }
  }
  const int64_t a = x.size(axis), rest = a == 0 ? 0 : inner / a;
  const int64_t as_batches[3] = {rows, a, rest};
  if (auto s = at::detail::computeStride(x.sizes(), x.strides(), at::IntArrayRef(as_batches, 3))) {
    if ((*s)[1] == 1 && a > 1 && rest > 1) {
      copy_transposed({dst, src, rows, a, rest, dst_row, rest, (*s)[0], (*s)[2], el});
      return true;
    }
  }
  return false;
}

}  // namespace caffe2ops
