#include "concat_split/split_pieces.h"

#include "common/output.h"

namespace caffe2ops {

std::vector<at::Tensor> copy_split_pieces(const at::Tensor& input, int64_t axis,
                                          const std::vector<int64_t>& sizes, bool add_axis) {
  std::vector<at::Tensor> outs;
  outs.reserve(sizes.size());
  int64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto piece = add_axis ? input.select(axis, static_cast<int64_t>(i))
                          : input.narrow(axis, start, sizes[i]);
    outs.push_back(copy_output(piece));
    start += sizes[i];
  }
  return outs;
}

}  // namespace caffe2ops
