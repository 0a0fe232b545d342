// CUDA kernels of the concat/split family: ATen's cat / stack and contiguous copies of the
// pieces, which are bandwidth-bound already. split_info stays an int32 CPU tensor, as in
// Caffe2; split sizes given as a tensor must be on the CPU, lengths may be on the GPU (copied
// to the host, as Caffe2 did).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/register.h"
#include "common/schema_args.h"
#include "concat_split/concat_split_shapes.h"
#include "concat_split/split_pieces.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;
using OptStr = std::optional<c10::string_view>;

// concat_cuda and split_cuda are registered under both names of their pair (concat and
// depth_concat, split and depth_split); `op` is the name they were called by.
std::tuple<Tensor, Tensor> concat_cuda(const char* op, at::TensorList inputs, std::optional<int64_t> axis,
                                       OptStr order, bool add_axis) {
  auto plan = concat_plan(op, inputs, axis, optional_string(order), add_axis);
  std::vector<Tensor> xs(inputs.begin(), inputs.end());
  auto out = add_axis ? at::stack(xs, plan.axis) : at::cat(xs, plan.axis);
  std::vector<int32_t> info(plan.sizes.begin(), plan.sizes.end());
  return {out.contiguous(), at::tensor(info, at::TensorOptions().dtype(at::kInt))};
}

std::vector<Tensor> split_cuda(const char* op, const Tensor& input, const std::optional<Tensor>& split_tensor,
                               at::IntArrayRef split, std::optional<int64_t> axis, OptStr order,
                               bool add_axis, int64_t num_outputs) {
  const int64_t a = split_axis(op, input, axis, order, add_axis);
  return copy_split_pieces(input, a, split_sizes(op, input, split_tensor, split, a, add_axis, num_outputs), add_axis);
}

std::vector<Tensor> split_by_lengths_cuda(const Tensor& input, const Tensor& lengths, int64_t num_outputs,
                                     std::optional<int64_t> axis, OptStr order, bool use_scaling_lengths) {
  constexpr const char* op = "split_by_lengths";
  const int64_t a = split_axis(op, input, axis, order, false);
  return copy_split_pieces(input, a, split_by_lengths_sizes(op, input, lengths, num_outputs, a, use_scaling_lengths), false);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CUDA, m) {
  C2_IMPL(m, "concat", &concat_cuda);
  C2_IMPL(m, "depth_concat", &concat_cuda);
  C2_IMPL(m, "split", &split_cuda);
  C2_IMPL(m, "depth_split", &split_cuda);
  C2_IMPL(m, "split_by_lengths", &split_by_lengths_cuda);
}

}  // namespace caffe2ops
