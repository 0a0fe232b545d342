#pragma once
// The one way every kernel is registered: C2_IMPL(m, "op", &kernel).
//
// The op's own checks raise "caffe2ops::<op>: ..." messages. Anything that fails below them (an
// ATen call, the allocator, a std::vector size) would reach the user without the op's name; the
// wrapper re-raises such an error with "caffe2ops::<op>: " in front, keeping its Python
// exception type (IndexError, ValueError, torch.OutOfMemoryError, torch.AcceleratorError ...;
// std::bad_alloc becomes torch.OutOfMemoryError). Python exceptions from Python kernels pass
// unchanged. On the normal path it adds nothing: the try block is free until something throws.
#include <torch/library.h>

#include <cstddef>
#include <utility>

namespace caffe2ops {

// Call only inside a catch block: rethrows the current exception naming `op`.
[[noreturn]] void rethrow_naming_op(const char* op);

// A string literal usable as a template argument (C++20), so each registration names its op at
// compile time and the wrapper stays a plain function the dispatcher can unbox into.
template <std::size_t N>
struct OpName {
  char value[N];
  constexpr OpName(const char (&s)[N]) {  // NOLINT: implicit on purpose
    for (std::size_t i = 0; i < N; ++i) value[i] = s[i];
  }
};

// Specialised on the kernel's signature only (not on a class-type template argument), a form
// nvcc's front end also accepts.
template <typename Signature>
struct Named;

template <typename Ret, typename... Args>
struct Named<Ret (*)(Args...)> {
  template <OpName Name, Ret (*Kernel)(Args...)>
  static Ret call(Args... args) {
    try {
      return Kernel(std::forward<Args>(args)...);
    } catch (...) {
      rethrow_naming_op(Name.value);
    }
  }
};

// A kernel that serves several ops (concat and depth_concat, split and depth_split) takes
// `const char* op` first: the registration passes the op's name, so one function registered
// under each name raises errors naming the op that was called. No schema argument is a
// const char*, so this form cannot be confused with a kernel's own first argument.
template <typename Ret, typename... Args>
struct Named<Ret (*)(const char*, Args...)> {
  template <OpName Name, Ret (*Kernel)(const char*, Args...)>
  static Ret call(Args... args) {
    try {
      return Kernel(Name.value, std::forward<Args>(args)...);
    } catch (...) {
      rethrow_naming_op(Name.value);
    }
  }
};

}  // namespace caffe2ops

#define C2_IMPL(m, name, kernel) \
  (m).impl(name, TORCH_FN((::caffe2ops::Named<decltype(kernel)>::template call<name, kernel>)))
