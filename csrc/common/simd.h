#pragma once
// C2_SIMD_CLONES compiles a hot loop for AVX-512, AVX2 and the baseline and picks one at load
// time (GCC function multi-versioning), so one wheel runs fast on every x86-64.
//
// Helpers called from such a loop must be C2_ALWAYS_INLINE: GCC does not inline an ordinary
// function into an AVX2 clone on its own, and the clone would run the baseline code.
//
// The AVX-512 clone targets x86-64-v4 (AVX-512 F, BW, CD, DQ, VL) rather than AVX-512F alone
// (from GCC 12, the first that dispatches on an ISA level; older GCC keeps AVX-512F). With F
// alone GCC vectorises with 256-bit registers and no mask registers (16 of them, blends and
// spills); with VL and BW it uses 512-bit vectors and masks (a dropout of 64K floats went from
// 29 to 26 us a call). No result depends on the clone: -ffp-contract=off (setup.py,
// CMakeLists.txt) keeps GCC from fusing a * b + c into an FMA, which its AVX-512 targets allow.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#if __GNUC__ >= 12
#define C2_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define C2_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define C2_SIMD_CLONES
#endif
#define C2_ALWAYS_INLINE __attribute__((always_inline)) inline
// For a lambda run through simd_loop: it must inline into each clone to be compiled for it.
#define C2_INLINE_LAMBDA __attribute__((always_inline))

#include <type_traits>

namespace caffe2ops {

// What this CPU runs, each read once: the loops written with intrinsics are compiled for their
// target and chosen at run time by these (other machines take the generic loops).
#if defined(__x86_64__) && defined(__GNUC__)
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
inline bool cpu_has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
inline bool cpu_has_avx512bw() {
  static const bool yes = cpu_has_avx512f() && __builtin_cpu_supports("avx512bw");
  return yes;
}
#else
inline bool cpu_has_avx2() { return false; }
inline bool cpu_has_avx512f() { return false; }
inline bool cpu_has_avx512bw() { return false; }
#endif

namespace detail {
template <typename Loop>
C2_SIMD_CLONES auto run_cloned(const Loop& loop) -> decltype(loop()) {
  return loop();
}
}  // namespace detail

// The one place a kernel chooses between the clones and a plain call: `loop` (a lambda marked
// C2_INLINE_LAMBDA) runs through the AVX-512 / AVX2 / baseline clones when `use_clones` (kernels
// pass "the data is float32", where wider vectors pay), and is called directly otherwise.
template <bool use_clones, typename Loop>
C2_ALWAYS_INLINE auto simd_loop(const Loop& loop) -> decltype(loop()) {
  if constexpr (use_clones) {
    return detail::run_cloned(loop);
  } else {
    return loop();
  }
}

}  // namespace caffe2ops
