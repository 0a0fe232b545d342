#include "common/register.h"

#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace caffe2ops {

namespace {

// Same exception class as `e`, so Python sees the same exception type with the op's name.
[[noreturn]] void throw_like(const c10::Error& e, std::string msg) {
  const c10::SourceLocation here{__func__, __FILE__, __LINE__};
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) throw c10::OutOfMemoryError(here, std::move(msg));
  if (dynamic_cast<const c10::IndexError*>(&e)) throw c10::IndexError(here, std::move(msg));
  if (dynamic_cast<const c10::ValueError*>(&e)) throw c10::ValueError(here, std::move(msg));
  if (dynamic_cast<const c10::TypeError*>(&e)) throw c10::TypeError(here, std::move(msg));
  if (dynamic_cast<const c10::NotImplementedError*>(&e)) throw c10::NotImplementedError(here, std::move(msg));
  throw c10::Error(here, std::move(msg));
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
    if (e.msg().find("cannot use C++ torch::autograd::Function with functorch") != std::string::npos) {
      throw_like(e, prefix + "torch.func transforms that differentiate (grad, vjp, jacrev, jacfwd, hessian) "
                 "are not supported: the op's gradient is a C++ autograd function, so that it also works in "
                 "TorchScript and from libtorch, and functorch cannot trace C++ autograd functions. Use "
                 "torch.autograd.grad or .backward() (double backward included); torch.func.vmap is "
                 "supported. (" + e.msg() + ")");
    }
    throw_like(e, prefix + e.msg());
  } catch (const std::bad_alloc& e) {
    throw c10::OutOfMemoryError(here, prefix + "out of memory (" + e.what() + ")");
  } catch (const std::length_error& e) {  // a container asked for more than it can hold
    throw c10::Error(here, prefix + e.what());
  } catch (const std::out_of_range& e) {
    throw c10::Error(here, prefix + e.what());
  }
  // Anything else passes unchanged: above all a Python exception raised by a Python kernel we
  // called (a fake kernel, a torch.compile callback) must reach Python as itself.
}

}  // namespace caffe2ops
