// SparseNormalize has no gradient (Caffe2: SHOULD_NOT_DO_GRADIENT): autograd
// raises if one is needed. The in-place variants also bump param's version counter so that a
// saved tensor they modify is detected.
#include <torch/library.h>

#include "common/autograd.h"

namespace caffe2ops {

TORCH_LIBRARY_IMPL(caffe2ops, Autograd, m) {
  for (const char* name : {"sparse_normalize", "sparse_normalize_", "float16_sparse_normalize",
                           "float16_sparse_normalize_"}) {
    m.impl(name, no_gradient());
  }
}

TORCH_LIBRARY_IMPL(caffe2ops, ADInplaceOrView, m) {
  m.impl("sparse_normalize_", torch::autograd::autogradNotImplementedInplaceOrViewFallback());
  m.impl("float16_sparse_normalize_", torch::autograd::autogradNotImplementedInplaceOrViewFallback());
}

}  // namespace caffe2ops
