// Split / DepthSplit and SplitByLengths: every output written once, as a
// fresh tensor (a custom op may not return views of its input).
#include <torch/library.h>

#include "common/block_copy.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/register.h"
#include "common/schema_args.h"
#include "concat_split/concat_split_shapes.h"
#include "concat_split/split_pieces.h"

namespace caffe2ops {
namespace {

// Pieces along `axis` of the given sizes; with add_axis every piece is one slice and loses
// the axis (unbind).
std::vector<at::Tensor> split_copy(const char* op, const at::Tensor& input, int64_t axis,
                                   const std::vector<int64_t>& sizes, bool add_axis) {
  check_cpu(op, "input", input);
  // A strided input (concat's backward often gets an expanded gradient) is read where it is,
  // piece by piece, instead of first being copied whole into a contiguous buffer.
  if (!input.is_contiguous()) return copy_split_pieces(input, axis, sizes, add_axis);
  const auto& x = input;
  const int64_t el = x.element_size();
  auto shape = x.sizes();
  int64_t rows = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= shape[i];
  for (int64_t i = axis + 1; i < x.dim(); ++i) inner *= shape[i];
  const int64_t src_row = shape[axis] * inner * el;
  std::vector<at::Tensor> outs;
  std::vector<BlockPiece> pieces;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    std::vector<int64_t> out_shape(shape.begin(), shape.end());
    if (add_axis) {
      out_shape.erase(out_shape.begin() + axis);
      s = 1;
    } else {
      out_shape[axis] = s;
    }
    outs.push_back(empty_output(out_shape, x.options()));
    const int64_t row_bytes = s * inner * el;
    pieces.push_back({static_cast<char*>(outs.back().data_ptr()),
                      static_cast<const char*>(x.const_data_ptr()) + offset, row_bytes, src_row,
                      row_bytes});
    offset += row_bytes;
  }
  copy_pieces(pieces, rows);
  return outs;
}

// Registered as split and as depth_split; `op` is the name it was called by.
std::vector<at::Tensor> split_cpu(const char* op, const at::Tensor& input,
                                  const std::optional<at::Tensor>& split_tensor,
                                  at::IntArrayRef split, std::optional<int64_t> axis,
                                  std::optional<c10::string_view> order, bool add_axis,
                                  int64_t num_outputs) {
  const int64_t a = split_axis(op, input, axis, order, add_axis);
  auto sizes = split_sizes(op, input, split_tensor, split, a, add_axis, num_outputs);
  return split_copy(op, input, a, sizes, add_axis);
}

std::vector<at::Tensor> split_by_lengths_cpu(const at::Tensor& input, const at::Tensor& lengths,
                                             int64_t num_outputs, std::optional<int64_t> axis,
                                             std::optional<c10::string_view> order,
                                             bool use_scaling_lengths) {
  constexpr const char* op = "split_by_lengths";
  const int64_t a = split_axis(op, input, axis, order, false);
  auto sizes = split_by_lengths_sizes(op, input, lengths, num_outputs, a, use_scaling_lengths);
  return split_copy(op, input, a, sizes, false);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "split", &split_cpu);
  C2_IMPL(m, "depth_split", &split_cpu);
  C2_IMPL(m, "split_by_lengths", &split_by_lengths_cpu);
}

}  // namespace caffe2ops
