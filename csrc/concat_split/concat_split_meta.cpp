// Meta kernels of the concat/split family. split, depth_split and split_by_lengths have output
// sizes that may come from tensor values; their fake kernels are in torch_caffe2ops/_fake.py.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/register.h"
#include "common/schema_args.h"
#include "concat_split/concat_split_shapes.h"

namespace caffe2ops {
namespace {

// Registered as concat and as depth_concat; `op` is the name it was called by.
std::tuple<at::Tensor, at::Tensor> concat_meta(const char* op, at::TensorList inputs,
                                               std::optional<int64_t> axis,
                                               std::optional<c10::string_view> order, bool add_axis) {
  auto plan = concat_plan(op, inputs, axis, optional_string(order), add_axis);
  return {at::empty_symint(plan.out_shape, inputs[0].options()),
          at::empty({static_cast<int64_t>(inputs.size())}, inputs[0].options().dtype(at::kInt))};
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "concat", &concat_meta);
  C2_IMPL(m, "depth_concat", &concat_meta);
}

}  // namespace caffe2ops
