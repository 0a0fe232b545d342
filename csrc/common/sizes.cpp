#include "common/sizes.h"

#include <ATen/Dispatch.h>

#include <limits>

#include "common/checks.h"

namespace caffe2ops {

int64_t checked_sum(const char* op, const char* arg, c10::ArrayRef<int64_t> values) {
  int64_t sum = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    C2_CHECK(values[i] >= 0, op, arg, "[", i, "] = ", values[i], " is negative");
    C2_CHECK(!__builtin_add_overflow(sum, values[i], &sum), op, "the sum of ", arg, " ",
             values, " does not fit int64");
  }
  return sum;
}

namespace {

template <typename Dims, typename AsInt>
void check_fits(const char* op, const char* arg, Dims shape, int64_t element_size, AsInt as_int) {
  int64_t bytes = element_size;
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::optional<int64_t> d = as_int(shape[i]);
    if (!d.has_value()) continue;
    C2_CHECK(*d >= 0, op, arg, ": dimension ", i, " is negative (", *d, ") in shape ", shape);
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (as_int(shape[i]) == std::optional<int64_t>(0)) return;  // an empty tensor has no size to overflow
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::optional<int64_t> d = as_int(shape[i]);
    if (!d.has_value()) continue;
    C2_CHECK(!__builtin_mul_overflow(bytes, *d, &bytes), op, arg, ": a tensor of shape ", shape,
             " would need more than 2^63 bytes");
  }
}

}  // namespace

void check_shape_fits(const char* op, const char* arg, c10::SymIntArrayRef shape,
                      int64_t element_size) {
  check_fits(op, arg, shape, element_size, [](const c10::SymInt& s) { return s.maybe_as_int(); });
}

void check_shape_fits(const char* op, const char* arg, c10::IntArrayRef shape, int64_t element_size) {
  check_fits(op, arg, shape, element_size, [](int64_t s) { return std::optional<int64_t>(s); });
}

void check_fits_int32(const char* op, const char* arg, int64_t value) {
  C2_CHECK(value >= 0 && value <= std::numeric_limits<int32_t>::max(), op, arg, " = ", value,
           " does not fit the int32 it is returned in");
}

void check_output_count(const char* op, const char* arg, int64_t count) {
  C2_CHECK(count >= 1 && count <= kMaxOutputs, op, arg, " = ", count, " outputs; must be in [1, ",
           kMaxOutputs, "]");
}

std::vector<int64_t> lengths_to_offsets(const char* op, const char* arg, const at::Tensor& lengths) {
  check_index_dtype(op, arg, lengths);
  check_dim(op, arg, lengths, 1);
  // Offsets are needed on the host to plan the work; Caffe2 copied lengths there too.
  auto len = lengths.to(at::kCPU).contiguous();
  std::vector<int64_t> offsets(len.numel() + 1, 0);
  AT_DISPATCH_INDEX_TYPES(len.scalar_type(), "lengths_to_offsets", [&] {
    const index_t* p = len.const_data_ptr<index_t>();
    for (int64_t i = 0; i < len.numel(); ++i) {
      C2_CHECK(p[i] >= 0, op, arg, "[", i, "] = ", static_cast<int64_t>(p[i]), " is negative");
      // A wrapped running sum could pass the callers' "sum == numel" check and send the kernels
      // out of bounds: it must raise.
      C2_CHECK(!__builtin_add_overflow(offsets[i], static_cast<int64_t>(p[i]), &offsets[i + 1]), op,
               "the sum of ", arg, " does not fit int64 (at ", arg, "[", i, "])");
    }
  });
  return offsets;
}

int64_t canonical_axis(const char* op, int64_t axis, int64_t ndim) {
  C2_CHECK(axis >= -ndim && axis < ndim, op, "Axis not in input ndim range: axis ", axis,
           " for rank ", ndim);
  return axis < 0 ? axis + ndim : axis;
}

bool order_is_nhwc(const char* op, const std::string& order) {
  if (order == "NCHW" || order == "nchw") return false;
  if (order == "NHWC" || order == "nhwc") return true;
  TORCH_CHECK(false, "caffe2ops::", op, ": Unsupported storage order: ", order);
}

int64_t order_to_axis(const char* op, const std::string& order) {
  return order_is_nhwc(op, order) ? 3 : 1;
}

c10::SymInt sym_prod(c10::SymIntArrayRef sizes, int64_t begin, int64_t end) {
  c10::SymInt p = 1;
  for (int64_t i = begin; i < end; ++i) p = p * sizes[i];
  return p;
}

}  // namespace caffe2ops
