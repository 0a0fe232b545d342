// Concat / DepthConcat: every input written once into a preallocated output.
#include <torch/library.h>

#include <algorithm>

#include "common/block_copy.h"
#include "common/checks.h"
#include "common/output.h"
#include "common/register.h"
#include "common/schema_args.h"
#include "common/transpose_copy.h"
#include "concat_split/concat_split_shapes.h"

namespace caffe2ops {
namespace {

// Registered as concat and as depth_concat; `op` is the name it was called by.
std::tuple<at::Tensor, at::Tensor> concat_cpu(const char* op, at::TensorList inputs,
                                              std::optional<int64_t> axis,
                                              std::optional<c10::string_view> order, bool add_axis) {
  auto plan = concat_plan(op, inputs, axis, optional_string(order), add_axis);
  auto out = empty_output(c10::asIntArrayRefUnchecked(plan.out_shape), inputs[0].options());
  for (const auto& x : inputs) check_cpu(op, "inputs", x);
  const int64_t el = out.element_size();
  auto out_sizes = out.sizes();
  int64_t rows = 1;
  for (int64_t i = 0; i < plan.axis; ++i) rows *= out_sizes[i];
  const int64_t out_row = rows == 0 ? 0 : out.numel() / rows * el;
  std::vector<BlockPiece> pieces;
  int64_t offset = 0, start = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& x = inputs[i];
    const int64_t row_bytes = rows == 0 ? 0 : x.numel() / rows * el;
    if (x.is_contiguous()) {
      pieces.push_back({static_cast<char*>(out.data_ptr()) + offset,
                        static_cast<const char*>(x.const_data_ptr()), out_row, row_bytes, row_bytes});
    } else if (add_axis || !copy_transposed_rows(static_cast<char*>(out.data_ptr()) + offset, out_row / el, x,
                                                  plan.axis, rows)) {
      // Read where it is, in one strided copy, instead of made contiguous first and copied again.
      auto slice = add_axis ? out.select(plan.axis, static_cast<int64_t>(i))
                            : out.narrow(plan.axis, start, plan.sizes[i]);
      slice.copy_(x);
    }
    offset += row_bytes;
    start += plan.sizes[i];
  }
  copy_pieces(pieces, rows);
  // Written in place: at::tensor(vector) costs a second allocation and copy, which shows at
  // batch 1 (a ranking model's feature concat).
  auto split_info = empty_output({static_cast<int64_t>(plan.sizes.size())}, at::TensorOptions().dtype(at::kInt));
  std::copy(plan.sizes.begin(), plan.sizes.end(), split_info.data_ptr<int32_t>());
  return {out, split_info};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "concat", &concat_cpu);
  C2_IMPL(m, "depth_concat", &concat_cpu);
}

}  // namespace caffe2ops
