#include "concat_split/split_pieces.h"

#include "common/output.h"
#include "common/transpose_copy.h"

namespace caffe2ops {

std::vector<at::Tensor> copy_split_pieces(const at::Tensor& input, int64_t axis,
                                          const std::vector<int64_t>& sizes, bool add_axis) {
  // On the CPU a transposed or channels-last input goes through register-transposed tiles
  // (copy_ would read it one cache line per element); every other piece is copied by copy_.
  const bool tiles = input.device().is_cpu() && !add_axis;
  int64_t rows = 1;
  for (int64_t i = 0; i < axis; ++i) rows *= input.size(i);
  std::vector<at::Tensor> outs;
  outs.reserve(sizes.size());
  int64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto piece = add_axis ? input.select(axis, static_cast<int64_t>(i))
                          : input.narrow(axis, start, sizes[i]);
    start += sizes[i];
    if (!tiles) {
      outs.push_back(copy_output(piece));
      continue;
    }
    auto out = empty_output(piece.sizes(), piece.options());
    const int64_t row = rows == 0 ? 0 : piece.numel() / rows;
    if (!copy_transposed_rows(static_cast<char*>(out.data_ptr()), row, piece, axis, rows)) out.copy_(piece);
    outs.push_back(std::move(out));
  }
  return outs;
}

}  // namespace caffe2ops
