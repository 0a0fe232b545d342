#pragma once
// Branch-free float32 log and exp (Cephes-style range reduction and minimax polynomials,
// about 1 ulp) written only with arithmetic, integer conversions and selects, so that a loop
// calling them auto-vectorises at any ISA level. libm's logf/expf are function calls that stop
// vectorisation, and ATen's Vectorized<float> falls back to scalar libm calls outside ATen's
// own per-ISA builds.
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/simd.h"

namespace caffe2ops {

C2_ALWAYS_INLINE float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
C2_ALWAYS_INLINE uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Natural log for positive normal x; NaN in -> NaN out, +inf -> +inf.
C2_ALWAYS_INLINE float fast_logf(float x) {
  const uint32_t u = float_to_bits(x);
  float e = static_cast<float>(static_cast<int32_t>((u >> 23) & 0xff) - 126);
  float m = bits_to_float((u & 0x807fffffu) | 0x3f000000u);  // x = m * 2^e, m in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1.f : e;
  m = small ? m + m - 1.f : m - 1.f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += e * -2.12194440e-4f;
  y += -0.5f * z;
  float r = m + y + e * 0.693359375f;
  r = x == std::numeric_limits<float>::infinity() ? x : r;
  return x != x ? x : r;
}

// e^x; overflows to +inf, underflows to 0, NaN in -> NaN out. The exponent is rounded with
// the 1.5 * 2^23 trick on float bits rather than a clamped float->int conversion: GCC will not
// vectorise that clamp for AVX2, and out-of-range inputs are replaced by the selects at the end.
C2_ALWAYS_INLINE float fast_expf(float x) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23
  const float tm = x * 1.44269504088896341f + kMagic;
  const float fx = tm - kMagic;  // nearest integer to x / ln 2
  const uint32_t n = float_to_bits(tm) - float_to_bits(kMagic);  // the same integer, two's complement
  const float r = x - fx * 0.693359375f - fx * -2.12194440e-4f;  // |r| <= ln2 / 2
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.f;
  // 2^n as 2^h * 2^(n-h), h = n/2: both factors stay normal over the whole range n in
  // [-126, 128], so results near overflow and in the subnormal range come out right.
  const int32_t ni = static_cast<int32_t>(n), h = ni >> 1;
  float out = y * bits_to_float(static_cast<uint32_t>(h + 127) << 23) *
              bits_to_float(static_cast<uint32_t>(ni - h + 127) << 23);
  out = x > 88.7228f ? std::numeric_limits<float>::infinity() : out;
  out = x < -87.3365f ? 0.f : out;
  return x != x ? x : out;
}

}  // namespace caffe2ops
