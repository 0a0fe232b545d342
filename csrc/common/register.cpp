#include "common/register.h"

#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace caffe2ops {

namespace {

// Same exception class as `e`, so Python sees the same exception type with the op's name.
// Returns (without throwing) for a class it does not know, which the caller then rethrows as it
// is: the op's name is lost there, the exception's type and data are not.
void throw_like(const c10::Error& e, std::string msg) {
  const c10::SourceLocation here{__func__, __FILE__, __LINE__};
  if (typeid(e) == typeid(c10::Error)) throw c10::Error(here, std::move(msg));
  if (typeid(e) == typeid(c10::OutOfMemoryError)) throw c10::OutOfMemoryError(here, std::move(msg));
  if (typeid(e) == typeid(c10::IndexError)) throw c10::IndexError(here, std::move(msg));
  if (typeid(e) == typeid(c10::ValueError)) throw c10::ValueError(here, std::move(msg));
  if (typeid(e) == typeid(c10::TypeError)) throw c10::TypeError(here, std::move(msg));
  if (typeid(e) == typeid(c10::NotImplementedError)) throw c10::NotImplementedError(here, std::move(msg));
  if (typeid(e) == typeid(c10::LinAlgError)) throw c10::LinAlgError(here, std::move(msg));
  if (const auto* a = dynamic_cast<const c10::AcceleratorError*>(&e)) {
    throw c10::AcceleratorError(here, a->get_error_code(), std::move(msg));
  }
}

}  // namespace

void rethrow_naming_op(const char* op) {
  const std::string prefix = std::string("caffe2ops::") + op + ": ";
  const c10::SourceLocation here{__func__, __FILE__, __LINE__};
  try {
    throw;
  } catch (const c10::Error& e) {
    // Already named by this op: keep it. Named by an op this one called (concat_gradient runs
    // split): name both, outermost first.
    if (e.msg().rfind(prefix, 0) == 0) throw;
    std::string named = prefix + e.msg();
    if (e.msg().find("cannot use C++ torch::autograd::Function with functorch") != std::string::npos) {
      named = prefix + "torch.func transforms that differentiate (grad, vjp, jacrev, jacfwd, hessian) "
                 "are not supported on torch.ops.caffe2ops directly: the op's gradient is a C++ autograd "
                 "function, so that it also works in TorchScript and from libtorch, and functorch cannot "
                 "trace C++ autograd functions. Call the op through torch_caffe2ops.ops (or the nn "
                 "modules), where these transforms work, or use torch.autograd.grad / .backward() "
                 "(double backward included); torch.func.vmap works either way. (" + e.msg() + ")";
    }
    throw_like(e, std::move(named));
    throw;
  } catch (const std::bad_alloc& e) {  // reaches Python as torch.OutOfMemoryError
    throw c10::OutOfMemoryError(here, prefix + "out of memory (" + e.what() + ")");
  } catch (const std::length_error& e) {  // a container asked for more than it can hold: ValueError
    throw c10::ValueError(here, prefix + e.what());
  } catch (const std::out_of_range& e) {  // IndexError, as pybind11 would have made it
    throw c10::IndexError(here, prefix + e.what());
  }
  // Anything else passes unchanged: above all a Python exception raised by a Python kernel we
  // called (a fake kernel, a torch.compile callback) must reach Python as itself.
}

}  // namespace caffe2ops
