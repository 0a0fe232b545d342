#include "sparse_normalize/sparse_normalize_driver.h"

#include "common/checks.h"
#include "common/output.h"
#include "sparse_normalize/sparse_normalize_shapes.h"

namespace caffe2ops {

at::Tensor sparse_normalize_functional(const char* op, NormalizeRowsFn kernel, const at::Tensor& param,
                                       const at::Tensor& indices, bool use_max_norm, double norm,
                                       bool float16_only) {
  check_sparse_normalize(op, param, indices, norm, float16_only);
  auto out = copy_output(param);  // the one copy
  kernel(op, out, indices, use_max_norm, norm);
  return out;
}

at::Tensor& sparse_normalize_in_place(const char* op, NormalizeRowsFn kernel, at::Tensor& param,
                                      const at::Tensor& indices, bool use_max_norm, double norm,
                                      bool float16_only) {
  check_sparse_normalize_in_place(op, param, indices, norm, float16_only);
  if (param.is_contiguous()) {
    kernel(op, param, indices, use_max_norm, norm);
  } else {
    auto tmp = param.contiguous();
    kernel(op, tmp, indices, use_max_norm, norm);
    param.copy_(tmp);
  }
  return param;
}

}  // namespace caffe2ops
