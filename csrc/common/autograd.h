#pragma once
// Shared pieces of the C++ autograd functions. Each differentiable op has a
// torch::autograd::Function whose forward calls the op below the autograd key and whose
// backward calls the registered *_gradient op, so gradients work the same from eager Python,
// from a TorchScript model loaded in another process, and from libtorch.
#include <ATen/core/grad_mode.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>

#include <optional>

#include "common/op_handle.h"

namespace caffe2ops {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// For ops without a gradient and for the *_gradient ops themselves: outputs that
// would need a gradient get a node that raises "the derivative for 'caffe2ops::<op>' is not
// implemented" when backward reaches it.
inline torch::CppFunction no_gradient() {
  return torch::autograd::autogradNotImplementedFallback();
}

inline bool requires_grad(const at::Tensor& t) { return t.defined() && t.requires_grad(); }
inline bool requires_grad(const std::optional<at::Tensor>& t) { return t.has_value() && requires_grad(*t); }
inline bool requires_grad(at::TensorList ts) {
  for (const auto& t : ts) {
    if (requires_grad(t)) return true;
  }
  return false;
}

// Whether backward can reach any of these (differentiable) inputs. When it cannot (no_grad, or
// plain inference tensors), the autograd kernels call the op directly below autograd: the
// Function's node, context and saved state cost microseconds that dominate small inputs.
template <typename... Inputs>
bool grad_needed(const Inputs&... inputs) {
  return at::GradMode::is_enabled() && (requires_grad(inputs) || ...);
}

template <typename Handle, typename... Args>
decltype(auto) call_below_autograd(const Handle& op, Args&&... args) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(std::forward<Args>(args)...);
}

}  // namespace caffe2ops
