#pragma once
// Shared pieces of the C++ autograd functions. Each differentiable op has a
// torch::autograd::Function whose forward calls the op below the autograd key and whose
// backward calls the registered *_gradient op, so gradients work the same from eager Python,
// from a TorchScript model loaded in another process, and from libtorch.
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>

#include "common/op_handle.h"

namespace caffe2ops {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// For ops without a gradient (spec 0.6) and for the *_gradient ops themselves: outputs that
// would need a gradient get a node that raises "the derivative for 'caffe2ops::<op>' is not
// implemented" when backward reaches it.
inline torch::CppFunction no_gradient() {
  return torch::autograd::autogradNotImplementedFallback();
}

}  // namespace caffe2ops
