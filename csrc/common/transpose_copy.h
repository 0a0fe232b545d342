#pragma once
// Copies 2-D blocks whose columns are contiguous in the source into rows that are contiguous in
// the destination: a transpose, which is what concatenating a column-major (transposed) input,
// or a channels-last one along its channels, into a row-major output comes to.
//
// Element (b, r, c) moves from src + (b * src_batch + r + c * src_col) elements to
// dst + (b * dst_batch + r * dst_row + c) elements. Copied element by element in the
// destination's order (as copy_ into a slice of the output does), every source element is a
// different cache line; here the block goes by tiles, transposed in registers where AVX2 is
// there for 4-byte (8x8) and 8-byte (4x4) elements, so that both sides move whole vectors, and
// element by element in 16x16 tiles otherwise, which still reads and writes each tile's lines
// while they are in L1.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace caffe2ops {

struct TransposeBlock {
  char* dst;
  const char* src;
  int64_t batches, rows, cols;        // the block, as [batches, rows, cols]
  int64_t dst_batch, dst_row;         // destination strides in elements (columns: 1)
  int64_t src_batch, src_col;         // source strides in elements (rows: 1)
  int64_t element_size;               // bytes: any; 4 and 8 have vector tiles on AVX2
};

// Parallel over batches and bands of rows; the destination must not overlap the source.
void copy_transposed(const TransposeBlock& t);

// Copies x, seen as `rows` rows of x.numel() / rows elements (the dimensions before `axis`
// against the rest), into rows of dst that lie dst_row elements apart, when x is laid out so
// that copy_transposed applies: x as [rows, inner] with unit stride down the rows (a transposed
// matrix), or as [rows, x.size(axis), rest] with unit stride along `axis` (a channels-last
// tensor split or concatenated along its channels). Returns false, copying nothing, for any
// other layout: the caller then copies with copy_. Element-wise copy_ from such a layout reads
// one cache line per element; these tiles measured 1.6x-7x faster for concat.
bool copy_transposed_rows(char* dst, int64_t dst_row, const at::Tensor& x, int64_t axis, int64_t rows);

}  // namespace caffe2ops
