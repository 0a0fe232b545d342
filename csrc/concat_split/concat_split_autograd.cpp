// Autograd of the concat/split family. Concat's backward is Caffe2's gradient, a Split of dY
// with the input extents; the extents are taken from the input shapes (not from the split_info
// values) so the backward graph keeps static shapes under torch.compile. The splits' backward
// is split_gradient with the resolved piece sizes; unused outputs get zeros.
#include <torch/library.h>

#include <string_view>

#include "common/autograd.h"
#include "common/checks.h"
#include "common/register.h"
#include "common/schema_args.h"
#include "concat_split/concat_split_shapes.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;
using OptStr = std::optional<c10::string_view>;
using SplitSig = std::vector<Tensor>(const Tensor&, const std::optional<Tensor>&, at::IntArrayRef,
                                std::optional<int64_t>, OptStr, bool, int64_t);
using ConcatSig = std::tuple<Tensor, Tensor>(at::TensorList, std::optional<int64_t>, OptStr, bool);

const c10::TypedOperatorHandle<ConcatSig>& concat_handle(bool depth) {
  return depth ? C2_OP("depth_concat", ConcatSig) : C2_OP("concat", ConcatSig);
}
const c10::TypedOperatorHandle<SplitSig>& split_handle(bool depth) {
  return depth ? C2_OP("depth_split", SplitSig) : C2_OP("split", SplitSig);
}
decltype(auto) split_by_lengths_op() {
  return C2_OP("split_by_lengths",
               std::vector<Tensor>(const Tensor&, const Tensor&, int64_t, std::optional<int64_t>, OptStr, bool));
}

class ConcatFn : public torch::autograd::Function<ConcatFn> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList inputs,
                               std::optional<int64_t> axis, OptStr order, bool add_axis, bool depth) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const char* op = depth ? "depth_concat" : "concat";
    auto plan = concat_plan(op, inputs, axis, optional_string(order), add_axis);
    auto [out, split_info] = concat_handle(depth).call(inputs, axis, order, add_axis);
    ctx->mark_non_differentiable({split_info});
    ctx->saved_data["sizes"] = c10::IValue(plan.sizes);
    ctx->saved_data["axis"] = plan.axis;
    ctx->saved_data["add_axis"] = add_axis;
    ctx->saved_data["depth"] = depth;
    return {out, split_info};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto sizes = ctx->saved_data["sizes"].toIntVector();
    auto pieces = split_handle(ctx->saved_data["depth"].toBool())
                      .call(grads[0], std::nullopt, sizes, ctx->saved_data["axis"].toInt(),
                            std::nullopt, ctx->saved_data["add_axis"].toBool(), -1);
    variable_list out(pieces.begin(), pieces.end());
    out.resize(out.size() + 4);  // axis, order, add_axis, depth
    return out;
  }
};

// split / depth_split / split_by_lengths share the backward: split_gradient of the pieces.
variable_list split_backward(AutogradContext* ctx, const variable_list& grads, size_t n_args) {
  c10::List<std::optional<Tensor>> gl;
  bool any = false;
  for (const auto& g : grads) {
    any = any || g.defined();
    gl.push_back(g.defined() ? std::optional<Tensor>(g) : std::nullopt);
  }
  if (!any) return variable_list(n_args);  // nothing flows back: an undefined gradient
  auto sizes = ctx->saved_data["sizes"].toSymIntVector();
  auto grad = C2_OP("split_gradient",
                    Tensor(const c10::List<std::optional<Tensor>>&, c10::SymIntArrayRef, int64_t, bool))
                  .call(gl, sizes, ctx->saved_data["axis"].toInt(), ctx->saved_data["add_axis"].toBool());
  variable_list out{grad};
  out.resize(n_args);
  return out;
}

void save_split(AutogradContext* ctx, const std::vector<Tensor>& outs, int64_t axis, bool add_axis) {
  std::vector<c10::SymInt> sizes;
  for (const auto& o : outs) sizes.push_back(add_axis ? c10::SymInt(1) : o.sym_size(axis));
  ctx->saved_data["sizes"] = c10::IValue(c10::SymIntArrayRef(sizes));
  ctx->saved_data["axis"] = axis;
  ctx->saved_data["add_axis"] = add_axis;
  ctx->set_materialize_grads(false);  // split_gradient fills missing pieces with zeros
}

class SplitFn : public torch::autograd::Function<SplitFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const std::optional<Tensor>& split_tensor,
                               at::IntArrayRef split, std::optional<int64_t> axis, OptStr order,
                               bool add_axis, int64_t num_outputs, bool depth) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const char* op = depth ? "depth_split" : "split";
    const int64_t a = split_axis(op, input, axis, order, add_axis);
    auto outs = split_handle(depth).call(input, split_tensor, split, axis, order, add_axis, num_outputs);
    save_split(ctx, outs, a, add_axis);
    return outs;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return split_backward(ctx, grads, 8);  // one per forward argument: input, split_tensor, 6 others
  }
};

class SplitByLengthsFn : public torch::autograd::Function<SplitByLengthsFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const Tensor& lengths,
                               int64_t num_outputs, std::optional<int64_t> axis, OptStr order,
                               bool use_scaling_lengths) {
    at::AutoDispatchBelowADInplaceOrView guard;
    constexpr const char* op = "split_by_lengths";
    const int64_t a = split_axis(op, input, axis, order, false);
    auto outs = split_by_lengths_op().call(input, lengths, num_outputs, axis, order, use_scaling_lengths);
    save_split(ctx, outs, a, false);
    return outs;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return split_backward(ctx, grads, 6);  // one per forward argument: input, lengths, 4 others
  }
};

// concat_autograd and split_autograd are registered under both names of their pair (concat and
// depth_concat, split and depth_split); `op` is the name they were called by.
bool is_depth(const char* op) { return std::string_view(op).starts_with("depth_"); }

std::tuple<Tensor, Tensor> concat_autograd(const char* op, at::TensorList inputs, std::optional<int64_t> axis,
                                           OptStr order, bool add_axis) {
  const bool depth = is_depth(op);
  if (!grad_needed(inputs)) return call_below_autograd(concat_handle(depth), inputs, axis, order, add_axis);
  auto r = ConcatFn::apply(inputs, axis, order, add_axis, depth);
  return {r[0], r[1]};
}
std::vector<Tensor> split_autograd(const char* op, const Tensor& input, const std::optional<Tensor>& split_tensor,
                                   at::IntArrayRef split, std::optional<int64_t> axis, OptStr order, bool add_axis,
                                   int64_t num_outputs) {
  const bool depth = is_depth(op);
  if (!grad_needed(input)) {
    return call_below_autograd(split_handle(depth), input, split_tensor, split, axis, order, add_axis, num_outputs);
  }
  return SplitFn::apply(input, split_tensor, split, axis, order, add_axis, num_outputs, depth);
}
std::vector<Tensor> split_by_lengths_autograd(const Tensor& input, const Tensor& lengths, int64_t num_outputs,
                                         std::optional<int64_t> axis, OptStr order, bool use_scaling_lengths) {
  if (!grad_needed(input)) {
    return call_below_autograd(split_by_lengths_op(), input, lengths, num_outputs, axis, order, use_scaling_lengths);
  }
  return SplitByLengthsFn::apply(input, lengths, num_outputs, axis, order, use_scaling_lengths);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  C2_IMPL(m, "concat", &concat_autograd);
  C2_IMPL(m, "depth_concat", &concat_autograd);
  C2_IMPL(m, "split", &split_autograd);
  C2_IMPL(m, "depth_split", &split_autograd);
  C2_IMPL(m, "split_by_lengths", &split_by_lengths_autograd);
}

}  // namespace caffe2ops
