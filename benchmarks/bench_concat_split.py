"""Concat/split family: concat against torch.cat, split and split_by_lengths against
torch.split followed by a copy of each piece (what a user needs for fresh tensors).

    .venv/bin/python benchmarks/bench_concat_split.py [--size small|large|both] [--only NAME ...]

A 64 MiB output is above glibc's largest mmap threshold, so every call of either side maps
fresh pages and the first-touch page faults dominate the large rows (ours ask for 2 MiB pages
for outputs of 4 MiB or more; TORCH_CAFFE2OPS_HUGE_PAGES=0 turns that off). To time the
copies themselves, let malloc reuse memory:
    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 .venv/bin/python benchmarks/bench_concat_split.py
or let PyTorch's allocator map huge pages (THP_MEM_ALLOC_ENABLE=1). benchmarks/cpp/kernels_vs_aten.cpp
times the kernels from C++, without the Python call path (torch.ops boxes each argument of a
list of tensors: a few microseconds more than torch.cat's binding for 20 inputs).
"""
import torch

from common import fwd_bwd, parse_args, run
from torch_caffe2ops import ops

C2 = torch.ops.caffe2ops


def pieces(size, n, device):
    rows, total = (64, 4096) if size == "small" else (1024, 16384)
    g = torch.Generator().manual_seed(n)
    cuts = torch.sort(torch.randint(0, total, (n - 1,), generator=g)).values.tolist()
    widths = [b - a for a, b in zip([0] + cuts, cuts + [total])]
    return [torch.randn(rows, w, device=device) for w in widths], widths


def concat(size, device):
    for n in (2, 8, 64):
        xs, _ = pieces(size, n, device)
        nbytes = 2 * sum(x.numel() for x in xs) * 4
        ones = [torch.randn(1, 1, device=device) for _ in xs]  # the one-element floor
        yield (f"concat n={n} axis=1", lambda: C2.concat(xs, axis=1), lambda: torch.cat(xs, 1), nbytes, "torch.cat(xs, 1)",
               (lambda: C2.concat(ones, axis=1), lambda: torch.cat(ones, 1)))
        big = [x.t().contiguous() for x in xs]  # whole blocks along axis 0
        yield (f"concat n={n} axis=0", lambda: C2.concat(big, axis=0), lambda: torch.cat(big, 0), nbytes, "torch.cat(xs, 0)",
               (lambda: C2.concat(ones, axis=0), lambda: torch.cat(ones, 0)))
    xs, _ = pieces(size, 8, device)
    strided = [x.t().contiguous().t() for x in xs]  # same values, column-major
    yield ("concat n=8 axis=1 strided inputs", lambda: C2.concat(strided, axis=1), lambda: torch.cat(strided, 1),
           2 * sum(x.numel() for x in xs) * 4, "torch.cat(xs, 1)")
    # NCHW inputs in channels-last memory, concatenated along the channels into Caffe2's
    # contiguous NCHW output (torch.cat keeps channels-last; .contiguous() makes it NCHW).
    n_batch = 4 if size == "small" else 256
    cl = [torch.randn(n_batch, c, 16, 16, device=device).contiguous(memory_format=torch.channels_last)
          for c in (32, 64, 32, 128)]
    yield ("concat n=4 axis=1 channels-last inputs", lambda: C2.concat(cl, axis=1),
           lambda: torch.cat(cl, 1).contiguous(), 2 * sum(x.numel() for x in cl) * 4, "torch.cat(xs, 1).contiguous()")
    xg = [x.clone().requires_grad_(True) for x in xs]
    yield ("concat n=8 fwd+bwd", fwd_bwd(lambda *a: C2.concat(list(a), axis=1)[0], *xg),
           fwd_bwd(lambda *a: torch.cat(a, 1), *xg), 4 * sum(x.numel() for x in xs) * 4,
           "torch.cat + autograd (backward returns views)")


def split(size, device):
    for n in (2, 8, 64):
        xs, widths = pieces(size, n, device)
        x = torch.cat(xs, 1)
        nbytes = 2 * x.numel() * 4
        x1, ws1 = torch.randn(1, n, device=device), [1] * n  # the one-element floor
        yield (f"split n={n} axis=1", lambda: C2.split(x, split=widths, axis=1),
               lambda: [p.clone() for p in torch.split(x, widths, 1)], nbytes, "[p.clone() for p in torch.split(x, sizes, 1)]",
               (lambda: C2.split(x1, split=ws1, axis=1), lambda: [p.clone() for p in torch.split(x1, ws1, 1)]))
    xs, widths = pieces(size, 8, device)
    x = torch.cat(xs, 1)
    lengths = torch.tensor([w for w in widths for _ in range(1)], dtype=torch.int32)
    yield ("split_by_lengths n=8 axis=1", lambda: C2.split_by_lengths(x, lengths, 8, axis=1),
           lambda: [p.clone() for p in torch.split(x, lengths.tolist(), 1)], 2 * x.numel() * 4,
           "torch.split(x, lengths.tolist(), 1) + clone")
    # Caffe2's pieces are contiguous: from a column-major or channels-last input the native
    # composition needs .contiguous() (clone() would keep the input's layout).
    strided = x.t().contiguous().t()
    yield ("split n=8 axis=1 strided input", lambda: C2.split(strided, split=widths, axis=1),
           lambda: [p.contiguous() for p in torch.split(strided, widths, 1)], 2 * x.numel() * 4,
           "[p.contiguous() for p in torch.split(x, sizes, 1)]")
    n_batch = 4 if size == "small" else 256
    cl = torch.randn(n_batch, 256, 16, 16, device=device).contiguous(memory_format=torch.channels_last)
    channels = [32, 64, 32, 128]
    yield ("split n=4 axis=1 channels-last input", lambda: C2.split(cl, split=channels, axis=1),
           lambda: [p.contiguous() for p in torch.split(cl, channels, 1)], 2 * cl.numel() * 4,
           "[p.contiguous() for p in torch.split(x, sizes, 1)]")
    xg = x.clone().requires_grad_(True)
    yield ("split n=8 fwd+bwd", fwd_bwd(lambda a: C2.split(a, split=widths, axis=1), xg),
           fwd_bwd(lambda a: [p.clone() for p in torch.split(a, widths, 1)], xg), 4 * x.numel() * 4,
           "torch.split + clone + autograd")


def many_small(size, device):
    # A ranking model's feature concat: one (B, 64) block and 20 (B, 16) blocks on axis 1, and
    # 2 to 64 inputs of 1 to 64 columns; batch 1 to 4096. The split rows undo each concat.
    batches = (1, 64) if size == "small" else (512, 4096)
    layouts = [("ranking 64+20x16", [64] + [16] * 20), ("2 x 1 col", [1, 1]), ("8 x 8 cols", [8] * 8),
               ("64 x 1..64 cols", [1 + (7 * i) % 64 for i in range(64)])]
    for B in batches:
        for name, widths in layouts:
            xs = [torch.randn(B, w, device=device) for w in widths]
            nbytes = 2 * B * sum(widths) * 4
            ones = [torch.randn(1, 1, device=device) for _ in widths]  # the one-element floor
            yield (f"concat {name}, B={B}", lambda: C2.concat(xs, axis=1), lambda: torch.cat(xs, 1), nbytes,
                   "torch.cat(xs, 1)", (lambda: C2.concat(ones, axis=1), lambda: torch.cat(ones, 1)))
            x = torch.cat(xs, 1)
            x1, ws1 = torch.cat(ones, 1), [1] * len(widths)
            yield (f"split {name}, B={B}", lambda: C2.split(x, split=widths, axis=1),
                   lambda: [p.clone() for p in torch.split(x, widths, 1)], nbytes,
                   "[p.clone() for p in torch.split(x, sizes, 1)]",
                   (lambda: C2.split(x1, split=ws1, axis=1), lambda: [p.clone() for p in torch.split(x1, ws1, 1)]))


def calls(device):
    """Small calls: (label, wrapper, torch.ops, nearest ATen call, its name, the same ATen op
    through torch.ops.aten)."""
    a, b = torch.randn(64, 32, device=device), torch.randn(64, 32, device=device)
    yield ("concat 2 x (64,32)", lambda: ops.concat([a, b], 1), lambda: C2.concat.default([a, b], 1),
           lambda: torch.cat([a, b], 1), "torch.cat", lambda: torch.ops.aten.cat.default([a, b], 1))
    xs = [torch.randn(1, 64, device=device)] + [torch.randn(1, 16, device=device) for _ in range(20)]
    yield ("concat ranking 64+20x16, B=1", lambda: ops.concat(xs, 1), lambda: C2.concat.default(xs, 1),
           lambda: torch.cat(xs, 1), "torch.cat", lambda: torch.ops.aten.cat.default(xs, 1))
    x = torch.randn(64, 64, device=device)
    yield ("split (64,64) in 2", lambda: ops.split(x, split=[32, 32], axis=1), lambda: C2.split.default(x, split=[32, 32], axis=1),
           lambda: [p.clone() for p in torch.split(x, 32, 1)], "torch.split + clone",
           lambda: torch.ops.aten.split_with_sizes_copy.default(x, [32, 32], 1))


SCENARIOS = {"concat": concat, "split": split, "many_small": many_small}

if __name__ == "__main__":
    run("concat/split family", SCENARIOS, parse_args(__doc__, SCENARIOS), calls)
