// Meta kernels of the sparse-normalize family.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/register.h"
#include "sparse_normalize/sparse_normalize_checks.h"

namespace caffe2ops {
namespace {

using T = at::Tensor;
using OptT = std::optional<T>;

T functional_meta(const char* op, const T& param, const T& indices, double norm, bool f16) {
  check_sparse_normalize(op, param, indices, norm, f16);
  return at::empty_symint(param.sym_sizes(), param.options());
}

T sparse_normalize_meta(const T& p, const T& i, const OptT&, bool, double norm) {
  return functional_meta("sparse_normalize", p, i, norm, false);
}
T& sparse_normalize__meta(T& p, const T& i, const OptT&, bool, double norm) {
  check_sparse_normalize("sparse_normalize_", p, i, norm, false);
  return p;
}
T float16_sparse_normalize_meta(const T& p, const T& i, const OptT&, bool, double norm) {
  return functional_meta("float16_sparse_normalize", p, i, norm, true);
}
T& float16_sparse_normalize__meta(T& p, const T& i, const OptT&, bool, double norm) {
  check_sparse_normalize("float16_sparse_normalize_", p, i, norm, true);
  return p;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "sparse_normalize", &sparse_normalize_meta);
  C2_IMPL(m, "sparse_normalize_", &sparse_normalize__meta);
  C2_IMPL(m, "float16_sparse_normalize", &float16_sparse_normalize_meta);
  C2_IMPL(m, "float16_sparse_normalize_", &float16_sparse_normalize__meta);
}

}  // namespace caffe2ops
