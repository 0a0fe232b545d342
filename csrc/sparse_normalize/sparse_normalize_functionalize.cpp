// Functionalization of the in-place variants. Their schema returns `Tensor(a!)`,
// which torch.compile / AOTAutograd cannot functionalize automatically for a custom op; this
// kernel rewrites `sparse_normalize_(p, ...)` as `p = sparse_normalize(p, ...)`, the same way
// ATen's generated kernels treat its own in-place ops.
#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/library.h>

#include "common/op_handle.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

namespace fz = at::functionalization::impl;
using Tensor = at::Tensor;
using Sig = Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, bool, double);

Tensor unwrap(const Tensor& t) {
  if (!fz::isFunctionalTensor(t)) return t;
  fz::sync(t);
  return fz::from_functional_tensor(t);
}

Tensor& functionalize(const c10::TypedOperatorHandle<Sig>& functional, Tensor& param, const Tensor& indices,
                 const std::optional<Tensor>& grad, bool use_max_norm, double norm) {
  TORCH_CHECK(fz::isFunctionalTensor(param), "caffe2ops: in-place sparse normalize under "
              "functionalization needs a functional param");
  std::optional<Tensor> grad_;
  if (grad.has_value() && grad->defined()) grad_ = unwrap(*grad);
  Tensor out;
  {
    at::AutoDispatchSkipFunctionalize guard;
    out = functional.call(unwrap(param), unwrap(indices), grad_, use_max_norm, norm);
  }
  fz::replace_(param, out);
  fz::commit_update(param);
  fz::sync(param);
  return param;
}

Tensor& sparse_normalize__functionalize(Tensor& p, const Tensor& i, const std::optional<Tensor>& g, bool m, double n) {
  return functionalize(C2_OP("sparse_normalize", Sig), p, i, g, m, n);
}
Tensor& float16_sparse_normalize__functionalize(Tensor& p, const Tensor& i, const std::optional<Tensor>& g, bool m, double n) {
  return functionalize(C2_OP("float16_sparse_normalize", Sig), p, i, g, m, n);
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Functionalize, m) {
  C2_IMPL(m, "sparse_normalize_", &sparse_normalize__functionalize);
  C2_IMPL(m, "float16_sparse_normalize_", &float16_sparse_normalize__functionalize);
}

}  // namespace caffe2ops
