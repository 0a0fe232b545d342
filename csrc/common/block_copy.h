#pragma once
// Copies a set of strided row blocks in one parallel loop: piece p moves `rows` rows of
// `row_bytes[p]` bytes from src[p] (row stride src_stride[p]) to dst[p] (row stride
// dst_stride[p]). Concat and split are both this loop with the roles of input and output
// swapped; one parallel region over all (piece, row) pairs keeps small pieces cheap.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/parallel.h"
#include "common/simd.h"

namespace caffe2ops {

// Plain vector loads and stores: fixed-size memcpy calls become vector moves, 256 bytes a
// step. glibc's memcpy (which GCC would also substitute for a loop of 8-byte moves) measured
// slower here: its non-temporal stores for large copies lose 15-30% against ordinary stores
// into freshly allocated outputs (ATen's copy_ uses ordinary stores too).
C2_SIMD_CLONES inline void copy_bytes(char* dst, const char* src, int64_t n) {
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) std::memcpy(dst + i, src + i, 256);
  for (; i + 32 <= n; i += 32) std::memcpy(dst + i, src + i, 32);
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8);
  for (; i < n; ++i) dst[i] = src[i];
}

struct BlockPiece {
  char* dst;
  const char* src;
  int64_t dst_stride, src_stride, row_bytes;
};

// Rows of at most kSmallRow bytes are copied inline in 64-, 32-, 8-, 4- and 1-byte moves:
// a call to memcpy or to the cloned loop costs more than such a row (a ranking model's
// features are 16 to 64 floats wide); longer rows go through copy_bytes.
constexpr int64_t kSmallRow = 256;

C2_ALWAYS_INLINE void copy_row(char* dst, const char* src, int64_t n) {
  if (n > kSmallRow) return copy_bytes(dst, src, n);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) std::memcpy(dst + i, src + i, 64);
  for (; i + 32 <= n; i += 32) std::memcpy(dst + i, src + i, 32);
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8);
  for (; i + 4 <= n; i += 4) std::memcpy(dst + i, src + i, 4);
  for (; i < n; ++i) dst[i] = src[i];
}

// The common case (many rows of short pieces: a ranking model's feature concat). Items are
// (row, piece) pairs in row-major order; a task's whole rows are copied in tiles of a few KiB
// of output, piece by piece down each tile, so that the inner loop copies one size with
// pointer steps (no index arithmetic, a perfectly predicted length). Cloned so that the
// inline row copies use the widest vectors.
C2_SIMD_CLONES inline void copy_short_pieces(const BlockPiece* pieces, int64_t n, int64_t row_total,
                                             int64_t begin, int64_t end) {
  auto item = [&](int64_t r, int64_t q) C2_INLINE_LAMBDA {
    const BlockPiece& piece = pieces[q];
    copy_row(piece.dst + r * piece.dst_stride, piece.src + r * piece.src_stride, piece.row_bytes);
  };
  int64_t r = begin / n, p = begin - r * n;
  const int64_t r_end = end / n, p_end = end - r_end * n;
  if (r == r_end) {
    for (; p < p_end; ++p) item(r, p);
    return;
  }
  if (p != 0) {  // the rest of a row begun by the previous task
    for (; p < n; ++p) item(r, p);
    ++r;
  }
  const int64_t tile = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, row_total));
  for (int64_t r0 = r; r0 < r_end; r0 += tile) {
    const int64_t r1 = std::min(r_end, r0 + tile);
    for (int64_t q = 0; q < n; ++q) {
      const BlockPiece& piece = pieces[q];
      char* dst = piece.dst + r0 * piece.dst_stride;
      const char* src = piece.src + r0 * piece.src_stride;
      // The common widths (1 to 64 floats) as fixed-size moves: a loop with a run-time length
      // costs more than a 4- or 8-byte row.
      auto rows = [&](auto width) C2_INLINE_LAMBDA {
        for (int64_t i = r0; i < r1; ++i, dst += piece.dst_stride, src += piece.src_stride) {
          if constexpr (decltype(width)::value > 0) {
            std::memcpy(dst, src, decltype(width)::value);
          } else {
            copy_row(dst, src, piece.row_bytes);
          }
        }
      };
      switch (piece.row_bytes) {
        case 4: rows(std::integral_constant<int64_t, 4>{}); break;
        case 8: rows(std::integral_constant<int64_t, 8>{}); break;
        case 16: rows(std::integral_constant<int64_t, 16>{}); break;
        case 32: rows(std::integral_constant<int64_t, 32>{}); break;
        case 64: rows(std::integral_constant<int64_t, 64>{}); break;
        case 128: rows(std::integral_constant<int64_t, 128>{}); break;
        case 256: rows(std::integral_constant<int64_t, 256>{}); break;
        default: rows(std::integral_constant<int64_t, 0>{});
      }
    }
  }
  for (int64_t q = 0; q < p_end; ++q) item(r_end, q);  // the start of a row the next task ends
}

inline void copy_pieces(const std::vector<BlockPiece>& pieces, int64_t rows) {
  const int64_t n = static_cast<int64_t>(pieces.size());
  if (n == 0 || rows == 0) return;
  constexpr int64_t kChunk = 1 << 18;
  int64_t total = 0, longest = 0;
  for (const auto& p : pieces) {
    total += p.row_bytes;
    longest = std::max(longest, p.row_bytes);
  }
  if (longest <= kChunk) {
    const int64_t avg = std::max<int64_t>(1, total / n);
    at::parallel_for(0, rows * n, grain_for(avg), [&](int64_t begin, int64_t end) {
      copy_short_pieces(pieces.data(), n, total, begin, end);
    });
    return;
  }
  // Long rows are cut into chunks so that a few large pieces (concat along axis 0) still
  // spread over all threads; chunk_start[p] numbers piece p's first chunk within a row.
  std::vector<int64_t> chunk_start(n + 1, 0);
  for (int64_t p = 0; p < n; ++p) {
    chunk_start[p + 1] = chunk_start[p] + std::max<int64_t>(1, (pieces[p].row_bytes + kChunk - 1) / kChunk);
  }
  const int64_t per_row = chunk_start[n];
  const int64_t avg = std::max<int64_t>(1, total / per_row);
  // Row-major over (row, piece, chunk), as above.
  at::parallel_for(0, rows * per_row, grain_for(avg), [&](int64_t begin, int64_t end) {
    int64_t p = 0;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t r = k / per_row, c = k - r * per_row;
      if (c < chunk_start[p] || c >= chunk_start[p + 1]) {
        p = std::upper_bound(chunk_start.begin(), chunk_start.end(), c) - chunk_start.begin() - 1;
      }
      const BlockPiece& piece = pieces[p];
      const int64_t lo = (c - chunk_start[p]) * kChunk;
      const int64_t len = std::min(kChunk, piece.row_bytes - lo);
      if (len > 0) {
        copy_row(piece.dst + r * piece.dst_stride + lo, piece.src + r * piece.src_stride + lo, len);
      }
    }
  });
}

}  // namespace caffe2ops
