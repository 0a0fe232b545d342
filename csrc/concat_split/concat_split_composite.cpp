// The family's composite kernels. The gradient ops are
// compositions, so one CompositeImplicitAutograd kernel serves every device and they are
// differentiable again; concat's CompositeExplicitAutograd kernel only turns "no kernel" into a
// clear error.
#include <ATen/ops/cat.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/op_handle.h"
#include "common/register.h"
#include "common/sizes.h"
#include "concat_split/concat_split_shapes.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

// Caffe2: Split(dY, split = split_info) with Concat's arguments. The split's rules are checked
// here first, so an error names concat_gradient (on Meta the split below is a Python fake, whose
// errors cannot be renamed); the sizes only when they are concrete.
std::vector<Tensor> concat_gradient(const Tensor& grad_output, const Tensor& split_info, std::optional<int64_t> axis,
                                    std::optional<c10::string_view> order, bool add_axis) {
  constexpr const char* op = "concat_gradient";
  const int64_t a = split_axis(op, grad_output, axis, order, add_axis);
  if (grad_output.sym_size(a).maybe_as_int().has_value()) {
    split_sizes(op, grad_output, split_info, {}, a, add_axis, -1);
  }
  return C2_OP("split", std::vector<Tensor>(const Tensor&, const std::optional<Tensor>&, at::IntArrayRef,
                                            std::optional<int64_t>, std::optional<c10::string_view>, bool, int64_t))
      .call(grad_output, split_info, {}, axis, order, add_axis, -1);
}

// Every defined gradient must be the piece split would have produced: same dtype and device
// as the others, the input's rank (less the axis with add_axis), and extent split_sizes[i]
// along the axis. Without these checks a wrong list concatenated into a wrongly sized gradient.
void check_split_gradients(const c10::List<std::optional<Tensor>>& grad_outputs,
                           c10::SymIntArrayRef split_sizes, int64_t axis, bool add_axis, const Tensor& like,
                           int64_t first) {
  constexpr const char* op = "split_gradient";
  for (size_t i = 0; i < grad_outputs.size(); ++i) {
    const std::optional<Tensor> g = grad_outputs.get(i);
    if (!g.has_value() || !g->defined()) continue;
    const std::string arg = "grad_outputs[" + std::to_string(i) + "]";
    C2_CHECK(g->scalar_type() == like.scalar_type(), op, arg, " has dtype ", g->scalar_type(),
             " but grad_outputs[", first, "] has ", like.scalar_type());
    C2_CHECK(g->device() == like.device(), op, arg, " is on ", g->device(), " but grad_outputs[",
             first, "] is on ", like.device());
    C2_CHECK(g->dim() == like.dim(), op, arg, " has shape ", g->sym_sizes(), " but grad_outputs[",
             first, "] has ", like.sym_sizes());
    for (int64_t d = 0; d < like.dim(); ++d) {
      if (!add_axis && d == axis) {
        C2_CHECK(g->sym_size(d) == split_sizes[i], op, arg, " has extent ", g->sym_size(d),
                 " along axis ", axis, " but split_sizes[", i, "] = ", split_sizes[i]);
      } else {
        C2_CHECK(g->sym_size(d) == like.sym_size(d), op, arg, " has shape ", g->sym_sizes(),
                 " but grad_outputs[", first, "] has ", like.sym_sizes(), " (they may differ only along axis ",
                 axis, ")");
      }
    }
  }
}

// Unlike Caffe2, missing output gradients are zeros of the piece's shape (Caffe2 skipped them and
// produced a wrongly shaped gradient).
Tensor split_gradient(const c10::List<std::optional<Tensor>>& grad_outputs, c10::SymIntArrayRef split_sizes,
                 int64_t axis, bool add_axis) {
  constexpr const char* op = "split_gradient";
  const int64_t k = static_cast<int64_t>(grad_outputs.size());
  C2_CHECK(k == static_cast<int64_t>(split_sizes.size()), op, "got ", k,
           " gradients for ", split_sizes.size(), " split sizes");
  check_output_count(op, "the number of pieces", k);
  std::vector<int64_t> concrete;
  for (int64_t i = 0; i < k; ++i) {
    C2_CHECK(split_sizes[i] >= 0, op, "split_sizes[", i, "] = ", split_sizes[i], " is negative");
    if (auto v = split_sizes[i].maybe_as_int()) concrete.push_back(*v);
  }
  checked_sum(op, "split_sizes", concrete);
  Tensor like;
  int64_t first = 0;
  for (; first < k; ++first) {
    const std::optional<Tensor> g = grad_outputs.get(first);
    if (g.has_value() && g->defined()) {
      like = *g;
      break;
    }
  }
  C2_CHECK(like.defined(), op, "needs at least one defined output gradient");
  const int64_t rank = like.dim() + (add_axis ? 1 : 0);
  C2_CHECK(axis >= 0 && axis < rank, op, "axis ", axis, " out of range for rank ", rank);
  check_split_gradients(grad_outputs, split_sizes, axis, add_axis, like, first);
  std::vector<Tensor> pieces;
  pieces.reserve(k);
  for (int64_t i = 0; i < k; ++i) {
    std::optional<Tensor> g = grad_outputs.get(i);
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

// Chosen by the dispatcher only when there is no tensor to dispatch on (an empty list) or no
// kernel for the inputs' device: either way a clear error instead of the dispatcher's.
// Registered as concat and as depth_concat; `op` is the name it was called by.
[[noreturn]] std::tuple<at::Tensor, at::Tensor> concat_no_kernel(const char* op, at::TensorList inputs,
                                                                 std::optional<int64_t>,
                                                                 std::optional<c10::string_view>, bool) {
  C2_CHECK(!inputs.empty(), op, "needs at least one input");
  TORCH_CHECK(false, "caffe2ops::", op, ": no kernel for inputs on ", inputs[0].device());
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CompositeExplicitAutograd, m) {
  C2_IMPL(m, "concat", &concat_no_kernel);
  C2_IMPL(m, "depth_concat", &concat_no_kernel);
}

TORCH_LIBRARY_IMPL(caffe2ops, CompositeImplicitAutograd, m) {
  C2_IMPL(m, "concat_gradient", &concat_gradient);
  C2_IMPL(m, "split_gradient", &split_gradient);
}

}  // namespace caffe2ops
