#include "sparse_normalize/sparse_normalize_shapes.h"

#include <ATen/MemoryOverlap.h>

#include <cmath>

#include "common/checks.h"

namespace caffe2ops {

void check_sparse_normalize(const char* op, const at::Tensor& param, const at::Tensor& indices,
                            double norm, bool float16_only) {
  C2_CHECK(norm >= 0, op, "norm should be bigger than 0, got ", norm);
  check_min_dim(op, "param", param, 1);
  const auto st = param.scalar_type();
  if (float16_only) {
    C2_CHECK(st == at::kHalf, op, "param must be float16 (use sparse_normalize for other dtypes), got ", st);
  } else {
    C2_CHECK(st == at::kFloat || st == at::kDouble || st == at::kHalf, op,
             "param must be float32, float64 or float16, got ", st);
  }
  check_index_dtype(op, "indices", indices);
  check_same_device(op, "param", param, "indices", indices);
  // The rows are scaled in float for float16/float32 params: a norm that is finite in double
  // but not in float would scale by inf and turn zeros into NaN.
  const bool in_float = st != at::kDouble;
  C2_CHECK(in_float ? std::isfinite(static_cast<float>(norm)) : std::isfinite(norm), op, "norm ", norm,
           " is not finite in ", in_float ? "float32" : "float64", ", the type param's rows are scaled in");
}

void check_sparse_normalize_in_place(const char* op, const at::Tensor& param, const at::Tensor& indices,
                                     double norm, bool float16_only) {
  check_sparse_normalize(op, param, indices, norm, float16_only);
  C2_CHECK(at::has_internal_overlap(param) != at::MemOverlap::Yes, op,
           "param has elements that share memory (an expanded or stride-0 tensor), so its rows cannot "
           "be normalised in place; pass a tensor that owns its rows (e.g. param.clone()) or use the "
           "functional variant");
}

}  // namespace caffe2ops
