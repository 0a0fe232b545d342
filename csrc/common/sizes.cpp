#include "common/sizes.h"

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
    if (*d == 0) return;  // an empty tensor has no size to overflow
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

}  // namespace caffe2ops
