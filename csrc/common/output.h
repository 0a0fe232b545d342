#pragma once
// The one way the CPU kernels allocate their outputs.
//
// An output of tens of MB is often freshly mapped by the allocator (glibc maps every
// allocation over 32 MiB, and smaller ones until its threshold has grown, and unmaps them on
// free), and the kernel then pays one page fault per 4 KiB when it first writes it: on a virtual
// machine that is most of the time of a large gather gradient (a 64 MB zero fill: 29 ms, of
// which the stores are 2 ms). Asking for 2 MiB pages (MADV_HUGEPAGE) on the 2 MiB-aligned part
// of such an output, before anything is written to it, makes that one fault per 2 MiB where a
// huge page is free. PyTorch does the same for every large CPU allocation under
// THP_MEM_ALLOC_ENABLE=1; here only our outputs ask, and only when
//  - the system gives huge pages on request only (transparent_hugepage/enabled is "madvise":
//    under "always" large mappings get them anyway, under "never" not at all), and
//  - the first page of that part is not resident yet (a fresh mapping, not malloc reusing
//    memory it already holds, which would gain nothing and keep the advice after the tensor).
// The values are the same either way. TORCH_CAFFE2OPS_HUGE_PAGES=0 turns it off (read once):
// with the usual transparent_hugepage/defrag setting, "madvise", a fault in an advised range may
// wait for memory compaction, which matters where latency does more than throughput.
#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace caffe2ops {

// Below this, the 2 MiB-aligned part of an output is at most one page and the fault count
// hardly changes.
constexpr int64_t kHugePageOutputBytes = int64_t{4} << 20;

namespace detail {

inline bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* v = std::getenv("TORCH_CAFFE2OPS_HUGE_PAGES");
    if (v != nullptr && std::strcmp(v, "0") == 0) return false;
    std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == nullptr) return false;
    char mode[128] = {};
    const size_t n = std::fread(mode, 1, sizeof(mode) - 1, f);
    std::fclose(f);
    mode[n] = '\0';
    return std::strstr(mode, "[madvise]") != nullptr;
  }();
  return wanted;
}

// `out` must be a fresh at::empty result (its bytes are exactly [data_ptr, data_ptr + nbytes)).
inline void advise_huge_pages(const at::Tensor& out) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const int64_t nbytes = static_cast<int64_t>(out.nbytes());
  if (nbytes < kHugePageOutputBytes || !out.device().is_cpu() || !huge_pages_wanted()) return;
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(out.data_ptr());
  const uintptr_t lo = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (begin + static_cast<uintptr_t>(nbytes)) & ~(kHuge - 1);
  if (hi <= lo) return;
  unsigned char resident = 0;
  if (mincore(reinterpret_cast<void*>(lo), 1, &resident) != 0 || (resident & 1) != 0) return;
  (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice: a refusal changes nothing
#else
  (void)out;
#endif
}

}  // namespace detail

// A fresh CPU output, backed by 2 MiB pages where it is large and the system allows it.
// at::detail::empty_cpu rather than at::empty: the kernels write every element of their
// outputs, so the dispatch at::empty adds (and, under torch.use_deterministic_algorithms, its
// fill of uninitialised memory) would be paid for nothing, on every call.
inline at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor out = options.device().is_cpu() ? at::Tensor(at::detail::empty_cpu(sizes, options))
                                              : at::empty(sizes, options);
  detail::advise_huge_pages(out);
  return out;
}

// A fresh contiguous copy of x, allocated as above.
inline at::Tensor copy_output(const at::Tensor& x) { return empty_output(x.sizes(), x.options()).copy_(x); }

}  // namespace caffe2ops
