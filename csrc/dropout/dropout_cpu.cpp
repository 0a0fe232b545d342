// Dropout / DropoutGrad on the CPU. One pass writes Y and the bool mask.
//
// keep_i = (u_i >= ratio) for a 32-bit uniform u_i, decided as the integer comparison
// u_i >= t = ceil(ratio * 2^32): P(keep) = 1 - ratio to within 2^-32, and ratio = 0 keeps all.
// u_i's high 16 bits come from a Philox stream, eight elements per Philox call; only when they
// equal t's high half (probability 2^-16) and t's low half is not 0 are the low 16 bits
// needed, and those come from a second Philox stream keyed by the element index. This halves
// the generator work against one 32-bit word per element while keeping the full 32-bit
// resolution.
//
// The key is drawn from PyTorch's CPU generator (advancing it), so manual_seed reproduces the
// mask and successive calls differ. Element i's bits depend only on (key, i): blocks have a
// fixed size, whatever the thread count or the chunking.
//
// A float32 call that moves 32 MiB or more writes Y and the mask with streaming stores
// (common/streaming.h): the memory traffic it saves hides part of the generator's cost (at 4M
// elements on one core, about half the gap to a bare copy), and it draws the next block's
// words between those stores while the next input is prefetched (apply_mask_streaming),
// hiding more.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>
#include <torch/library.h>

#include <cmath>
#include <mutex>
#include <utility>

#include "common/checks.h"
#include "common/output.h"
#include "common/parallel.h"
#include "common/philox.h"
#include "common/philox_simd.h"
#include "common/register.h"
#include "common/simd.h"
#include "common/streaming.h"
#include "dropout/dropout_shapes.h"

namespace caffe2ops {
namespace {

constexpr int64_t kBlock = 2048;           // elements per block of the stream
constexpr int64_t kCalls = kBlock / 8;     // Philox calls per block (4 words = 8 halves each)
constexpr uint64_t kTieStream = 1ull << 63;  // counter space of the low-half stream

// The high 16 bits of u for element e of a block are half e / (kBlock / 2) of word
// e % (kBlock / 2): the low half of words[e] for the first half of the block, the high half
// for the second. Words are laid out word-major (words[j * kCalls + c] is word j of call c).
C2_ALWAYS_INLINE uint32_t high_half(const uint32_t* words, int64_t e) {
  constexpr int64_t kHalf = kBlock / 2;
  return e < kHalf ? (words[e] & 0xffffu) : (words[e - kHalf] >> 16);
}

// t = high * 2^16 + low (high may be 2^16: keep nothing). The mask loop keeps a high half h
// when h > keep_above; h == tie needs the low half. When low is 0 (ratios that are multiples of
// 2^-16, 0.5 among them) h == high already means u >= t, so h >= high keeps and nothing ties
// (tie = -1 matches no h).
struct Threshold {
  uint32_t low;
  int32_t keep_above, tie;
  explicit Threshold(double ratio) {
    const uint64_t t = static_cast<uint64_t>(std::ceil(ratio * 4294967296.0));
    const auto high = static_cast<int32_t>(t >> 16);
    low = static_cast<uint32_t>(t & 0xffffu);
    keep_above = high - (low == 0 ? 1 : 0);
    tie = low == 0 ? -1 : high;
  }
};

// The rare elements whose high half ties with the threshold's: decide on the low half.
bool keep_on_tie(PhiloxKey key, int64_t index, const Threshold& t) {
  uint32_t w[4];
  philox4x32_10(kTieStream | static_cast<uint64_t>(index), key, w);
  return (w[0] & 0xffffu) >= t.low;
}

// A kept element is X * scale (one rounding, as Caffe2 and torch.native_dropout); a dropped
// one is X * 0, so a dropped NaN or inf still gives NaN, as in Caffe2 and torch.
template <int kShift, typename scalar_t, typename acc_t>
C2_ALWAYS_INLINE bool apply_mask_loop(const scalar_t* x, const uint32_t* words, const Threshold& t,
                                      acc_t scale, scalar_t* y, bool* mask, int64_t n) {
  const int32_t keep_above = t.keep_above, tie = t.tie;
  uint32_t ties = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t h = static_cast<int32_t>((words[i] >> kShift) & 0xffffu);
    const acc_t v = static_cast<acc_t>(x[i]);
    ties |= static_cast<uint32_t>(h == tie);
    mask[i] = h > keep_above;
    y[i] = static_cast<scalar_t>(h > keep_above ? v * scale : v * acc_t(0));
  }
  return ties != 0;
}

// One block of up to kBlock elements: the first half takes the words' low halves, the second
// their high halves. Returns whether any element tied with the threshold (and was
// provisionally dropped).
template <typename scalar_t>
bool apply_mask(const scalar_t* x, const uint32_t* words, const Threshold& t, at::opmath_type<scalar_t> scale,
                scalar_t* y, bool* mask, int64_t n) {
  constexpr int64_t kHalf = kBlock / 2;
  return simd_loop<std::is_same_v<scalar_t, float>>([&]() C2_INLINE_LAMBDA {
    const int64_t first = std::min(n, kHalf);
    bool ties = apply_mask_loop<0>(x, words, t, scale, y, mask, first);
    if (n > kHalf) ties |= apply_mask_loop<16>(x + kHalf, words, t, scale, y + kHalf, mask + kHalf, n - kHalf);
    return ties;
  });
}

// dX = (dY * mask) * scale in the order native_dropout_backward uses, so the two agree bit for
// bit. The mask is read as bytes (0 or 1): GCC does not vectorise loads of bool.
template <typename scalar_t, typename acc_t>
C2_ALWAYS_INLINE void masked_scale_loop(const scalar_t* g, const bool* mask, acc_t scale,
                                        scalar_t* out, int64_t n) {
  const uint8_t* m = reinterpret_cast<const uint8_t*>(mask);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<scalar_t>(static_cast<acc_t>(g[i]) * static_cast<acc_t>(m[i]) * scale);
  }
}

template <typename scalar_t>
void masked_scale(const scalar_t* g, const bool* mask, at::opmath_type<scalar_t> scale, scalar_t* out, int64_t n) {
  simd_loop<std::is_same_v<scalar_t, float>>([&]() C2_INLINE_LAMBDA { masked_scale_loop(g, mask, scale, out, n); });
}

// Streaming stores (common/streaming.h) for float32 on AVX-512: a full block masked, and
// written around the cache, while the next block's words are drawn (next_words: the words of
// Philox calls next_call .., or nullptr for none). The same values as the loops above. Other
// dtypes and machines keep those loops; these generic forms only let the dispatch compile.
template <typename scalar_t, typename acc_t>
bool apply_mask_streaming(const scalar_t* x, const uint32_t* words, const Threshold& t, acc_t scale, scalar_t* y,
                          bool* mask, uint32_t* next_words, uint64_t next_call, PhiloxKey key) {
  if (next_words != nullptr) philox_words(next_call, key, kCalls, next_words, kCalls);
  return apply_mask(x, words, t, scale, y, mask, kBlock);
}

template <typename scalar_t, typename acc_t>
void masked_scale_streaming(const scalar_t* g, const bool* mask, acc_t scale, scalar_t* out, int64_t n) {
  masked_scale(g, mask, scale, out, n);
}

#ifdef C2_STREAMING_X86
// Elements [begin, end) of half a full block: the words' low halves (kShift 0) or high halves
// (kShift 16), 64 elements a step (four vectors of Y, one of mask bytes). Y = X * (keep ?
// scale : 0) is the same single rounding as apply_mask_loop's two branches.
template <int kShift>
__attribute__((target("avx512f,avx512bw"))) C2_ALWAYS_INLINE __mmask16 stream_half_block(
    const float* x, const uint32_t* words, __m512i keep_above, __m512i tie, __m512 scale, float* y, bool* mask,
    int64_t begin, int64_t end) {
  const __m512i low16 = _mm512_set1_epi32(0xffff);
  const __m512 zero = _mm512_setzero_ps();
  __mmask16 ties = 0;
  for (int64_t i = begin; i < end; i += 64) {
    __mmask64 keep = 0;
    for (int j = 0; j < 4; ++j) {
      const __m512i h = _mm512_and_si512(_mm512_srli_epi32(_mm512_load_si512(words + i + 16 * j), kShift), low16);
      const __mmask16 k = _mm512_cmpgt_epi32_mask(h, keep_above);
      ties |= _mm512_cmpeq_epi32_mask(h, tie);
      const __m512 v = _mm512_loadu_ps(x + i + 16 * j);
      _mm512_stream_ps(y + i + 16 * j, _mm512_mul_ps(v, _mm512_mask_blend_ps(k, zero, scale)));
      keep |= static_cast<__mmask64>(k) << (16 * j);
    }
    _mm512_stream_si512(reinterpret_cast<__m512i*>(mask + i), _mm512_maskz_set1_epi8(keep, 1));
  }
  return ties;
}

// A full block whose Y and mask start on a 64-byte line (words 64-byte aligned), in eight
// steps: the draws of 32 calls of the next block, then the mask of 256 elements of this one,
// each step first prefetching the X of the next. The draws are arithmetic and the mask waits
// on memory: interleaved this finely, with the next X on its way during the draws, the core
// runs one while the other waits, where all of a block's draws and then all of its mask left
// the memory idle during the draws. 4M elements, the builds before and after, medians of eight
// processes each: the interleave 2.07 -> 1.87 ms on one core (two cores: no change), then the
// prefetch 1.86 -> 1.46 ms on one core and 0.87 -> 0.80 ms on two. In the cache there is no
// wait to fill (1M elements: no change), and calls that stay there draw, then mask.
__attribute__((target("avx512f,avx512bw"))) bool apply_mask_streaming(const float* x, const uint32_t* words,
                                                                      const Threshold& t, float scale, float* y,
                                                                      bool* mask, uint32_t* next_words,
                                                                      uint64_t next_call, PhiloxKey key) {
  constexpr int64_t kHalf = kBlock / 2, kSteps = 8, kStep = kHalf / kSteps, kStepCalls = kCalls / kSteps;
  // philox_words_avx512 draws 32 calls a round, stream_half_block masks 64 elements a round.
  static_assert(kStepCalls % 32 == 0 && kStep % 64 == 0, "steps must be whole rounds of both loops");
  const __m512i keep_above = _mm512_set1_epi32(t.keep_above), tie = _mm512_set1_epi32(t.tie);
  const __m512 vscale = _mm512_set1_ps(scale);
  __mmask16 ties = 0;
  for (int64_t s = 0; s < kSteps; ++s) {
    // X of the next step, both halves, on its way while this step draws. After the last step
    // that is the next block's, which may lie past the tensor: the addresses are formed as
    // integers (a prefetch never faults; a pointer past the end would be undefined).
    const auto next_x = reinterpret_cast<uintptr_t>(x + (s + 1) * kStep);
    for (int64_t o = 0; o < kStep * int64_t{sizeof(float)}; o += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(next_x + o));
      __builtin_prefetch(reinterpret_cast<const void*>(next_x + kHalf * sizeof(float) + o));
    }
    if (next_words != nullptr) {
      detail::philox_words_avx512(next_call + s * kStepCalls, key, kStepCalls, next_words + s * kStepCalls, kCalls);
    }
    const int64_t i0 = s * kStep, i1 = i0 + kStep;
    ties |= stream_half_block<0>(x, words, keep_above, tie, vscale, y, mask, i0, i1) |
            stream_half_block<16>(x + kHalf, words, keep_above, tie, vscale, y + kHalf, mask + kHalf, i0, i1);
  }
  return ties != 0;
}

// masked_scale, streamed from out's first 64-byte line on (the elements before it and the
// last partial vector go through masked_scale). Each call ends with its stores done.
__attribute__((target("avx512f,avx512bw"))) void masked_scale_streaming(const float* g, const bool* mask, float scale,
                                                                        float* out, int64_t n) {
  const auto misaligned = static_cast<int64_t>((reinterpret_cast<uintptr_t>(out) / sizeof(float)) % 16);
  const int64_t head = std::min(n, misaligned == 0 ? int64_t{0} : 16 - misaligned);
  masked_scale(g, mask, scale, out, head);
  const uint8_t* m = reinterpret_cast<const uint8_t*>(mask);
  const __m512 vscale = _mm512_set1_ps(scale);
  int64_t i = head;
  for (; i + 16 <= n; i += 16) {
    const __m512i keep = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m + i)));
    _mm512_stream_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(g + i), _mm512_cvtepi32_ps(keep)), vscale));
  }
  masked_scale(g + i, mask + i, scale, out + i, n - i);
  streaming_fence();  // done before the task ends
}
#endif

// Whether a call streams: float32 on a machine with the streaming forms, and `bytes` (all the
// call reads and writes) past what the cache holds.
template <typename scalar_t>
bool dropout_streams(int64_t bytes) {
  return std::is_same_v<scalar_t, float> && line_streaming_available() && streaming_stores_pay(bytes);
}

uint64_t draw_seed(const std::optional<at::Generator>& generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
      generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

std::tuple<at::Tensor, at::Tensor> dropout_cpu(const at::Tensor& X, double ratio, bool is_test,
                                               std::optional<at::Generator> generator) {
  check_dropout_input("dropout", X, ratio);
  if (is_test) {
    // Unlike Caffe2: Y is a copy (outputs never alias inputs); the mask Caffe2 left unwritten is all True.
    return {copy_output(X), empty_output(X.sizes(), X.options().dtype(at::kBool)).fill_(true)};
  }
  auto x = X.contiguous();
  auto Y = empty_output(x.sizes(), x.options());
  auto mask = empty_output(x.sizes(), x.options().dtype(at::kBool));
  const int64_t n = x.numel();
  if (n == 0) return {Y, mask};
  const PhiloxKey key(draw_seed(generator));
  const Threshold threshold(ratio);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dropout", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t scale = dropout_scale<acc_t>(ratio);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = Y.data_ptr<scalar_t>();
    bool* mp = mask.data_ptr<bool>();
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    // Every full block of an aligned Y and mask starts on a line (a block is 8 KiB of Y).
    const bool streaming = dropout_streams<scalar_t>(n * static_cast<int64_t>(2 * sizeof(scalar_t) + 1)) &&
                           line_aligned(yp) && line_aligned(mp);
    // A block reads X and writes Y and the mask; the Philox draws make it compute-bound, so
    // the byte count is a lower bound and blocks split finely.
    at::parallel_for(0, blocks, grain_for(kBlock * (2 * sizeof(scalar_t) + 1)), [&](int64_t b0, int64_t b1) {
      // A block's words are drawn into `next` while the block before it is masked (streaming
      // calls), or just after (the others).
      alignas(64) uint32_t buffers[2][kBlock / 2];
      uint32_t* words = buffers[0];
      uint32_t* next = buffers[1];
      philox_words(static_cast<uint64_t>(b0) * kCalls, key, kCalls, words, kCalls);
      for (int64_t b = b0; b < b1; ++b, std::swap(words, next)) {
        const int64_t first = b * kBlock, len = std::min(kBlock, n - first);
        const uint64_t next_call = static_cast<uint64_t>(b + 1) * kCalls;
        uint32_t* drawn = b + 1 < b1 ? next : nullptr;
        bool ties;
        if (streaming && len == kBlock) {
          ties = apply_mask_streaming(xp + first, words, threshold, scale, yp + first, mp + first, drawn, next_call,
                                      key);
        } else {
          ties = apply_mask(xp + first, words, threshold, scale, yp + first, mp + first, len);
          if (drawn != nullptr) philox_words(next_call, key, kCalls, drawn, kCalls);
        }
        if (!ties) continue;
        // The fix-ups below store ordinarily to lines just streamed (a block in 32 has a tie).
        if (streaming) streaming_fence();
        for (int64_t i = 0; i < len; ++i) {
          const auto h = static_cast<int32_t>(high_half(words, i));
          if (h == threshold.tie && keep_on_tie(key, first + i, threshold)) {
            mp[first + i] = true;
            yp[first + i] = static_cast<scalar_t>(static_cast<acc_t>(xp[first + i]) * scale);
          }
        }
      }
      if (streaming) streaming_fence();  // done before the task ends
    });
  });
  return {Y, mask};
}

// dX = dY * mask * scale in training (NaN in dY propagates), dY in test mode.
at::Tensor dropout_gradient_cpu(const at::Tensor& dY, const std::optional<at::Tensor>& mask,
                                double ratio, bool is_test) {
  check_dropout_gradient(dY, mask, ratio, is_test);
  if (is_test) return copy_output(dY);
  auto dy = dY.contiguous();
  auto m = mask->contiguous();
  auto dX = empty_output(dy.sizes(), dy.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dy.scalar_type(), "dropout_gradient", [&] {
    const auto scale = dropout_scale<at::opmath_type<scalar_t>>(ratio);
    const scalar_t* gp = dy.const_data_ptr<scalar_t>();
    const bool* mp = m.const_data_ptr<bool>();
    scalar_t* dp = dX.data_ptr<scalar_t>();
    const int64_t n = dy.numel();
    const bool streaming = dropout_streams<scalar_t>(n * static_cast<int64_t>(2 * sizeof(scalar_t) + 1));
    at::parallel_for(0, n, grain_for(2 * sizeof(scalar_t) + 1), [&](int64_t i0, int64_t i1) {
      if (streaming) {
        masked_scale_streaming(gp + i0, mp + i0, scale, dp + i0, i1 - i0);
      } else {
        masked_scale(gp + i0, mp + i0, scale, dp + i0, i1 - i0);
      }
    });
  });
  return dX;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, CPU, m) {
  C2_IMPL(m, "dropout", &dropout_cpu);
  C2_IMPL(m, "dropout_gradient", &dropout_gradient_cpu);
}

}  // namespace caffe2ops
