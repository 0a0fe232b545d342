// Meta kernels of the sparse-normalize family.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "sparse_normalize/sparse_normalize_shapes.h"

namespace caffe2ops {
namespace {

using OptionalTensor = std::optional<at::Tensor>;

at::Tensor functional_meta(const char* op, const at::Tensor& param, const at::Tensor& indices, double norm,
                           bool float16_only) {
  check_sparse_normalize(op, param, indices, norm, float16_only);
  return at::empty_symint(param.sym_sizes(), param.options());
}

at::Tensor sparse_normalize_meta(const at::Tensor& param, const at::Tensor& indices, const OptionalTensor&,
                                 bool, double norm) {
  return functional_meta("sparse_normalize", param, indices, norm, false);
}
at::Tensor& sparse_normalize__meta(at::Tensor& param, const at::Tensor& indices, const OptionalTensor&, bool,
                                   double norm) {
  check_sparse_normalize_in_place("sparse_normalize_", param, indices, norm, false);
  return param;
}
at::Tensor float16_sparse_normalize_meta(const at::Tensor& param, const at::Tensor& indices,
                                         const OptionalTensor&, bool, double norm) {
  return functional_meta("float16_sparse_normalize", param, indices, norm, true);
}
at::Tensor& float16_sparse_normalize__meta(at::Tensor& param, const at::Tensor& indices, const OptionalTensor&,
                                           bool, double norm) {
  check_sparse_normalize_in_place("float16_sparse_normalize_", param, indices, norm, true);
  return param;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "sparse_normalize", &sparse_normalize_meta);
  C2_IMPL(m, "sparse_normalize_", &sparse_normalize__meta);
  C2_IMPL(m, "float16_sparse_normalize", &float16_sparse_normalize_meta);
  C2_IMPL(m, "float16_sparse_normalize_", &float16_sparse_normalize__meta);
}

}  // namespace caffe2ops
