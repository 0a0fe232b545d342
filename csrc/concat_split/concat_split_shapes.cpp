#include "concat_split/concat_split_shapes.h"

#include <ATen/Dispatch.h>

#include "common/checks.h"
#include "common/schema_args.h"
#include "common/sizes.h"

namespace caffe2ops {

int64_t resolve_axis(const char* op, const char* verb, std::optional<int64_t> axis,
                     const std::optional<std::string>& order, bool add_axis, int64_t rank) {
  C2_CHECK(!(axis.has_value() && order.has_value()), op, "You shouldn't specify both the dim to ",
           verb, ", and the order in the case of 4-D images.");
  if (axis.has_value()) return canonical_axis(op, *axis, rank);
  // Caffe2 silently ignored add_axis without an explicit axis.
  C2_CHECK(!add_axis, op, "add_axis=True needs an explicit axis (Caffe2 ignored add_axis when "
           "the axis came from order)");
  return canonical_axis(op, order_to_axis(op, order.value_or("NCHW")), rank);
}

int64_t split_axis(const char* op, const at::Tensor& input, std::optional<int64_t> axis,
                   const std::optional<c10::string_view>& order, bool add_axis) {
  C2_CHECK(input.dim() >= 1, op, "input must have rank >= 1, got a 0-d tensor");
  return resolve_axis(op, "split", axis, optional_string(order), add_axis, input.dim());
}

ConcatPlan concat_plan(const char* op, at::TensorList inputs, std::optional<int64_t> axis,
                       const std::optional<std::string>& order, bool add_axis) {
  C2_CHECK(!inputs.empty(), op, "needs at least one input");
  const auto& x0 = inputs[0];
  const int64_t r = x0.dim();
  ConcatPlan plan;
  plan.axis = resolve_axis(op, "concat", axis, order, add_axis, r + (add_axis ? 1 : 0));
  const int64_t n = static_cast<int64_t>(inputs.size());
  c10::SymInt total = 0;
  for (int64_t j = 0; j < n; ++j) {
    const auto& xj = inputs[j];
    C2_CHECK(xj.scalar_type() == x0.scalar_type(), op,
             "All inputs must have the same type, expected: ", x0.scalar_type(), " but got: ",
             xj.scalar_type(), " for input: ", j);
    C2_CHECK(xj.device() == x0.device(), op, "All inputs must be on one device, expected: ",
             x0.device(), " but got: ", xj.device(), " for input: ", j);
    C2_CHECK(xj.dim() == r, op, "All inputs must have the rank of input 0 (", r, "), got ",
             xj.dim(), " for input: ", j, " (shape ", xj.sym_sizes(), ")");
    for (int64_t i = 0; i < r; ++i) {
      if (!add_axis && i == plan.axis) continue;
      C2_CHECK(xj.sym_size(i) == x0.sym_size(i), op, "Expect dimension = ", x0.sym_size(i),
               " got ", xj.sym_size(i), " at axis = ", i, " for input: ", j,
               ". The input tensors can only have different dimensions when arg 'add_axis' = 0 "
               "and along the axis = ", plan.axis, "; inputs[0] has shape ", x0.sym_sizes(),
               ", inputs[", j, "] has shape ", xj.sym_sizes(), ".");
    }
    if (add_axis) {
      plan.sizes.push_back(1);
    } else {
      total = total + xj.sym_size(plan.axis);
      // split_info is a concrete int32 tensor, so the extents must be known here; a symbolic
      // extent is specialised (guarded) to its hint.
      plan.sizes.push_back(xj.sym_size(plan.axis).guard_int(__FILE__, __LINE__));
      check_fits_int32(op, "an input's extent along the axis (split_info)", plan.sizes.back());
    }
  }
  // The output's extent is the sum of the inputs'; it must not wrap (it would pass as a small,
  // valid-looking size) and must fit split_info's int32 as every piece does.
  if (!add_axis) check_fits_int32(op, "the output's extent along the axis", checked_sum(op, "split_info", plan.sizes));
  auto s = x0.sym_sizes();
  plan.out_shape.assign(s.begin(), s.end());
  if (add_axis) {
    plan.out_shape.insert(plan.out_shape.begin() + plan.axis, c10::SymInt(n));
  } else {
    plan.out_shape[plan.axis] = total;
  }
  return plan;
}

std::vector<int64_t> split_sizes(const char* op, const at::Tensor& input,
                                 const std::optional<at::Tensor>& split_tensor,
                                 at::IntArrayRef split, int64_t axis, bool add_axis,
                                 int64_t num_outputs) {
  const int64_t C = input.sym_size(axis).guard_int(__FILE__, __LINE__);
  std::vector<int64_t> sizes;
  if (split_tensor.has_value() && split_tensor->defined()) {
    const auto& st = *split_tensor;
    C2_CHECK(split.empty(), op,
             "If you set split with an input blob, do not pass in split in the argument.");
    check_index_dtype(op, "split_tensor", st);
    C2_CHECK(st.device().is_cpu(), op, "split_tensor must be a CPU tensor (as in Caffe2), got ",
             st.device());
    C2_CHECK(num_outputs == -1 || num_outputs == st.numel(), op, "num_outputs = ", num_outputs,
             " but split_tensor has ", st.numel(), " entries");
    check_output_count(op, "split_tensor's number of entries", st.numel());
    auto v = st.reshape({-1}).to(at::kLong).contiguous();
    sizes.assign(v.const_data_ptr<int64_t>(), v.const_data_ptr<int64_t>() + v.numel());
  } else if (!split.empty()) {
    C2_CHECK(num_outputs == -1 || num_outputs == static_cast<int64_t>(split.size()), op,
             "The number of splits specified should be equal to the number of outputs: split has ",
             split.size(), " entries, num_outputs = ", num_outputs);
    check_output_count(op, "the number of entries of split", static_cast<int64_t>(split.size()));
    sizes.assign(split.begin(), split.end());
  } else {
    int64_t k = num_outputs;
    if (k == -1 && add_axis) k = C;
    C2_CHECK(k > 0, op, "an equal split needs num_outputs > 0 (or a split / split_tensor), got ",
             num_outputs);
    check_output_count(op, "num_outputs", k);
    C2_CHECK(C % k == 0, op,
             "If you did not specify split explicitly, the number of input channels should be "
             "divisible by the output size: ", C, " channels, ", k, " outputs");
    sizes.assign(k, C / k);
  }
  check_output_count(op, "the number of split sizes", static_cast<int64_t>(sizes.size()));
  const int64_t sum = checked_sum(op, "split", sizes);
  if (add_axis) {
    C2_CHECK(static_cast<int64_t>(sizes.size()) == C, op,
             "Sum of split dimensions do not match: should be ", C, " outputs with add_axis, got ",
             sizes.size());
  } else {
    C2_CHECK(sum == C, op, "Sum of split dimensions do not match: should be ", C, ", got ", sum);
  }
  return sizes;
}

std::vector<int64_t> split_by_lengths_sizes(const char* op, const at::Tensor& input,
                                            const at::Tensor& lengths, int64_t num_outputs,
                                            int64_t axis, bool use_scaling_lengths) {
  check_index_dtype(op, "lengths", lengths);
  C2_CHECK(lengths.dim() == 1, op, "lengths must be 1-D, got shape ", lengths.sizes());
  check_output_count(op, "num_outputs", num_outputs);
  const int64_t m = lengths.numel();
  C2_CHECK(m % num_outputs == 0, op, "len(lengths) = ", m, " must be divisible by num_outputs = ",
           num_outputs);
  auto len = lengths.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* lp = len.const_data_ptr<int64_t>();
  const int64_t S = checked_sum(op, "lengths", c10::ArrayRef<int64_t>(lp, m));
  const int64_t C = input.sym_size(axis).guard_int(__FILE__, __LINE__);
  int64_t mult = 1;
  if (use_scaling_lengths) {
    C2_CHECK(C % (S != 0 ? S : 1) == 0, op, "with use_scaling_lengths, input.shape[", axis, "] = ", C,
             " must be divisible by sum(lengths) = ", S);
    // Unlike Caffe2: with S = 0 nothing would consume the input: require it to be empty too.
    C2_CHECK(S != 0 || C == 0, op, "lengths sum to 0 but the input has ", C,
             " channels along axis ", axis);
    mult = S != 0 ? C / S : 1;
  } else {
    C2_CHECK(S == C, op, "sum(lengths) = ", S, " must equal input.shape[", axis, "] = ", C);
  }
  const int64_t g = m / num_outputs;
  std::vector<int64_t> sizes(num_outputs, 0);
  for (int64_t i = 0; i < num_outputs; ++i) {
    for (int64_t l = i * g; l < (i + 1) * g; ++l) sizes[i] += lp[l];
    sizes[i] *= mult;
  }
  return sizes;
}

}  // namespace caffe2ops
