// The gradient ops of the family (spec 3.1 item 4, 3.2 item 4). Both are compositions, so one
// CompositeImplicitAutograd kernel serves every device and they are differentiable again.
#include <ATen/ops/cat.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/op_handle.h"

namespace caffe2ops {
namespace {

using T = at::Tensor;

// Caffe2: Split(dY, split = split_info) with Concat's arguments.
std::vector<T> concat_gradient(const T& grad_output, const T& split_info, std::optional<int64_t> axis,
                               std::optional<c10::string_view> order, bool add_axis) {
  return C2_OP("split", std::vector<T>(const T&, const std::optional<T>&, at::IntArrayRef,
                                       std::optional<int64_t>, std::optional<c10::string_view>,
                                       bool, int64_t))
      .call(grad_output, split_info, {}, axis, order, add_axis, -1);
}

// [PORT] Missing output gradients are zeros of the piece's shape (Caffe2 skipped them and
// produced a wrongly shaped gradient).
T split_gradient(const c10::List<std::optional<T>>& grad_outputs, c10::SymIntArrayRef split_sizes,
                 int64_t axis, bool add_axis) {
  constexpr const char* op = "split_gradient";
  const int64_t k = static_cast<int64_t>(grad_outputs.size());
  C2_CHECK(k == static_cast<int64_t>(split_sizes.size()), op, "got ", k,
           " gradients for ", split_sizes.size(), " split sizes");
  T like;
  for (const std::optional<T> g : grad_outputs) {
    if (g.has_value() && g->defined()) {
      like = *g;
      break;
    }
  }
  C2_CHECK(like.defined(), op, "needs at least one defined output gradient");
  const int64_t rank = like.dim() + (add_axis ? 1 : 0);
  C2_CHECK(axis >= 0 && axis < rank, op, "axis ", axis, " out of range for rank ", rank);
  std::vector<T> pieces;
  pieces.reserve(k);
  for (int64_t i = 0; i < k; ++i) {
    std::optional<T> g = grad_outputs.get(i);
    if (g.has_value() && g->defined()) {
      pieces.push_back(*g);
      continue;
    }
    c10::SymDimVector shape(like.sym_sizes().begin(), like.sym_sizes().end());
    if (!add_axis) shape[axis] = split_sizes[i];
    pieces.push_back(at::zeros_symint(shape, like.options()));
  }
  return add_axis ? at::stack(pieces, axis) : at::cat(pieces, axis);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CompositeImplicitAutograd, m) {
  m.impl("concat_gradient", &concat_gradient);
  m.impl("split_gradient", &split_gradient);
}

}  // namespace caffe2ops
