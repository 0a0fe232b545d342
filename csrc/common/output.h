#pragma once
// The one way the CPU kernels allocate their outputs.
//
// An output of tens of MB is freshly mapped by the allocator on every call (glibc maps every
// allocation over 32 MiB, and smaller ones until its threshold has grown, and unmaps them on
// free), and the kernel then pays one page fault per 4 KiB when it first writes them: on a virtual machine that is most of
// the time of a large gather gradient (a 64 MB zero fill: 29 ms, of which the stores are 2 ms).
// Asking for 2 MiB pages (MADV_HUGEPAGE) on the whole 2 MiB-aligned part of a large output,
// before anything is written to it, makes that one fault per 2 MiB. This is what PyTorch does
// for every large CPU allocation under THP_MEM_ALLOC_ENABLE=1; here only our outputs ask, and
// only where the system allows it (transparent_hugepage "madvise" or "always"; a no-op
// otherwise). The memory and the values are the same. TORCH_CAFFE2OPS_HUGE_PAGES=0 turns it
// off (where the kernel's defrag setting makes a fault wait for compaction and latency matters
// more than throughput).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace caffe2ops {

// Below this, the 2 MiB-aligned part of an output is at most one page and the fault count
// hardly changes.
constexpr int64_t kHugePageOutputBytes = int64_t{4} << 20;

inline bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("TORCH_CAFFE2OPS_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

inline void advise_huge_pages(const at::Tensor& out) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const int64_t nbytes = static_cast<int64_t>(out.nbytes());
  if (nbytes < kHugePageOutputBytes || !out.device().is_cpu() || !huge_pages_enabled()) return;
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(out.data_ptr());
  const uintptr_t lo = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (begin + static_cast<uintptr_t>(nbytes)) & ~(kHuge - 1);
  // Advice only: a kernel without transparent huge pages refuses it and nothing changes.
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)out;
#endif
}

// at::empty, with large outputs backed by 2 MiB pages where the system allows it.
inline at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  auto out = at::empty(sizes, options);
  advise_huge_pages(out);
  return out;
}

}  // namespace caffe2ops
