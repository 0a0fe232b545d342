// Our CPU kernels against ATen's, called from C++ through the dispatcher: no Python, no
// torch.ops argument boxing, so the ratio is the kernel's (plus the same dispatch on both
// sides). Python-level rows (benchmarks/bench_*.py) add the call path, which for a list of
// tensors costs torch.ops a few microseconds more than torch.cat's generated binding.
//
// Build and run from the repository root, after scripts/setup.sh:
//   TP=$(.venv/bin/python -c "import torch, os; print(os.path.dirname(torch.__file__))")
//   PYLIB=$(.venv/bin/python -c "import sysconfig as s, os; print(os.path.join(s.get_config_var('LIBDIR'), s.get_config_var('LDLIBRARY')))")
//   g++ -O2 -fopenmp -std=c++20 benchmarks/cpp/kernels_vs_aten.cpp -I$TP/include -I$TP/include/torch/csrc/api/include \
//       -L$TP/lib -ltorch -ltorch_cpu -lc10 -Wl,-rpath,$TP/lib -o build/kernels_vs_aten
//   MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 \
//       build/kernels_vs_aten torch_caffe2ops/_C.abi3.so $PYLIB
// (the malloc settings keep page faults out of the large rows; one thread, medians of 21
// interleaved samples; the last row, the cost of a parallel region, at all threads: -fopenmp
// is what makes at::parallel_for in this file run in parallel, as it does in the extension).
#include <ATen/core/dispatch/Dispatcher.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double seconds_per_call(const F& f, int n) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double>(Clock::now() - t0).count() / n;
}

template <typename F, typename G>
void compare(const char* name, const F& ours, const G& aten) {
  ours();
  aten();
  const int n = std::max(1, static_cast<int>(2e-3 / std::max(seconds_per_call(ours, 1), 1e-8)));
  std::vector<double> a, b, r;
  for (int k = 0; k < 21; ++k) {
    const double x = seconds_per_call(ours, n), y = seconds_per_call(aten, n);
    a.push_back(x);
    b.push_back(y);
    r.push_back(y / x);
  }
  for (auto* v : {&a, &b, &r}) std::sort(v->begin(), v->end());
  std::printf("%-34s ours %10.2f us   aten %10.2f us   aten/ours %.2f\n", name, a[10] * 1e6, b[10] * 1e6, r[10]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::printf("usage: %s <torch_caffe2ops/_C.abi3.so> <libpython.so>\n", argv[0]);
    return 2;
  }
  dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL);  // the extension is a Python module
  if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
    std::printf("%s\n", dlerror());
    return 1;
  }
  at::set_num_threads(1);
  auto& dispatcher = c10::Dispatcher::singleton();
  auto concat = dispatcher.findSchemaOrThrow("caffe2ops::concat", "")
                    .typed<std::tuple<at::Tensor, at::Tensor>(at::TensorList, std::optional<int64_t>,
                                                              std::optional<c10::string_view>, bool)>();
  auto gather = dispatcher.findSchemaOrThrow("caffe2ops::batch_gather", "")
                    .typed<at::Tensor(const at::Tensor&, const at::Tensor&, bool)>();
  auto permutation = dispatcher.findSchemaOrThrow("caffe2ops::batch_permutation", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();

  std::vector<int64_t> ranking{64}, odd;
  for (int i = 0; i < 20; ++i) ranking.push_back(16);
  for (int i = 0; i < 64; ++i) odd.push_back(1 + (7 * i) % 64);
  struct Layout {
    const char* name;
    std::vector<int64_t> widths;
  };
  const std::vector<Layout> layouts{{"ranking 64+20x16", ranking}, {"64 x 1..64 cols", odd},
                                    {"2 x 1 col", {1, 1}}, {"8 x 8 cols", std::vector<int64_t>(8, 8)}};
  for (int64_t B : {1, 64, 512, 4096}) {
    for (const auto& layout : layouts) {
      std::vector<at::Tensor> xs;
      for (auto w : layout.widths) xs.push_back(at::randn({B, w}));
      char name[64];
      std::snprintf(name, sizeof(name), "concat %s, B=%ld", layout.name, static_cast<long>(B));
      compare(name, [&] { return std::get<0>(concat.call(xs, 1, std::nullopt, false)); },
              [&] { return at::cat(xs, 1); });
    }
  }
  // Narrow rows with output over 1 MiB (copied a row, or a few narrow rows, at a time).
  for (int64_t B : {int64_t{1} << 20, int64_t{1} << 16}) {
    const int64_t w = B == (int64_t{1} << 20) ? 1 : 8, n = B == (int64_t{1} << 20) ? 2 : 8;
    std::vector<at::Tensor> xs;
    for (int64_t i = 0; i < n; ++i) xs.push_back(at::randn({B, w}));
    char name[64];
    std::snprintf(name, sizeof(name), "concat %ld x %ld col, B=%ld", static_cast<long>(n), static_cast<long>(w),
                  static_cast<long>(B));
    compare(name, [&] { return std::get<0>(concat.call(xs, 1, std::nullopt, false)); },
            [&] { return at::cat(xs, 1); });
  }
  {
    std::vector<at::Tensor> xs{at::randn({1024, 8000}), at::randn({1024, 8384})};
    compare("concat 2 x 32 KiB rows, B=1024", [&] { return std::get<0>(concat.call(xs, 1, std::nullopt, false)); },
            [&] { return at::cat(xs, 1); });
  }
  // A 1 MiB output (64 x 4096 floats) cut into 2, 8 and 64 pieces of random widths, along
  // axis 1 and, transposed, along axis 0 (whole blocks), as in bench_concat_split.py.
  for (int n : {2, 8, 64}) {
    auto cuts = std::get<0>(at::sort(at::randint(0, 4096, {n - 1}, at::kLong)));
    std::vector<at::Tensor> xs, big;
    int64_t prev = 0;
    for (int i = 0; i < n; ++i) {
      const int64_t cut = i + 1 < n ? cuts[i].item<int64_t>() : 4096;
      xs.push_back(at::randn({64, cut - prev}));
      big.push_back(xs.back().t().contiguous());
      prev = cut;
    }
    char name[64];
    std::snprintf(name, sizeof(name), "concat 1 MiB, n=%d axis=1", n);
    compare(name, [&] { return std::get<0>(concat.call(xs, 1, std::nullopt, false)); },
            [&] { return at::cat(xs, 1); });
    std::snprintf(name, sizeof(name), "concat 1 MiB, n=%d axis=0", n);
    compare(name, [&] { return std::get<0>(concat.call(big, 0, std::nullopt, false)); },
            [&] { return at::cat(big, 0); });
  }
  struct GatherCase {
    const char* name;
    std::vector<int64_t> shape;
    int64_t L;
  };
  for (const auto& c : std::vector<GatherCase>{{"batch_gather (64,512,1)[128]", {64, 512, 1}, 128},
                                               {"batch_gather (32,100,64)[50]", {32, 100, 64}, 50},
                                               {"batch_gather (256,4096,16)[1024]", {256, 4096, 16}, 1024}}) {
    auto data = at::randn(c.shape);
    auto idx = at::randint(0, c.shape[1], {c.L});
    compare(c.name, [&] { return gather.call(data, idx, false); }, [&] { return at::index_select(data, 1, idx); });
  }
  {
    auto data = at::randn({1024, 64});
    auto idx = at::randperm(1024).to(at::kInt);
    compare("batch_permutation (1024,64)", [&] { return permutation.call(data, idx); },
            [&] { return at::index_select(data, 0, idx); });
  }
  // What a parallel region costs here: the least time a kernel must save by using all threads
  // before a second core pays. Two chunks of about 1 us of arithmetic each, in a parallel
  // region, against the same chunks run one after the other.
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  {
    std::atomic<uint64_t> sink{0};
    auto body = [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        uint64_t x = static_cast<uint64_t>(c) + 1;
        for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
        sink.fetch_add(x, std::memory_order_relaxed);
      }
    };
    compare("parallel_for, 2 chunks of ~1 us", [&] { at::parallel_for(0, 2, 1, body); }, [&] { body(0, 2); });
    std::printf("  (at %d threads, 'ours' runs the chunks in a parallel region, 'aten' inline: aten/ours\n"
                "   under 2 is the region's cost)\n",
                at::get_num_threads());
  }
  return 0;
}
