#pragma once
// Typed handles to our own registered ops. Autograd functions call the forward op below the
// autograd key and the *_gradient op through the dispatcher, so the backward runs whatever
// kernel the device has (CPU, CUDA, Meta under torch.compile).
#include <ATen/core/dispatch/Dispatcher.h>

namespace caffe2ops {

template <typename Sig>
c10::TypedOperatorHandle<Sig> op_handle(const char* name, const char* overload = "") {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload).typed<Sig>();
}

}  // namespace caffe2ops

// One static handle per call site: the schema lookup happens once per process.
// The signature is variadic because it may contain commas (std::tuple<T, T>(...)).
#define C2_OP(name, ...)                                                             \
  ([]() -> const c10::TypedOperatorHandle<__VA_ARGS__>& {                            \
    static const auto h = ::caffe2ops::op_handle<__VA_ARGS__>("caffe2ops::" name);   \
    return h;                                                                        \
  }())
