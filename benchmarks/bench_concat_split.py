"""Concat/split family: concat against torch.cat, split and split_by_lengths against
torch.split followed by a copy of each piece (what a user needs for fresh tensors).

    .venv/bin/python benchmarks/bench_concat_split.py [--size small|large|both] [--only NAME ...]

A 64 MiB output is above glibc's largest mmap threshold, so every call of either side maps
fresh pages and the first-touch page faults dominate the large rows. To time the copies
themselves, let malloc reuse memory:
    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 .venv/bin/python benchmarks/bench_concat_split.py
"""
import torch

from common import fwd_bwd, parse_args, run

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
        yield (f"concat n={n} axis=1", lambda: C2.concat(xs, axis=1), lambda: torch.cat(xs, 1), nbytes, "torch.cat(xs, 1)")
        big = [x.t().contiguous() for x in xs]  # whole blocks along axis 0
        yield (f"concat n={n} axis=0", lambda: C2.concat(big, axis=0), lambda: torch.cat(big, 0), nbytes, "torch.cat(xs, 0)")
    xs, _ = pieces(size, 8, device)
    strided = [x.t().contiguous().t() for x in xs]  # same values, column-major
    yield ("concat n=8 axis=1 strided inputs", lambda: C2.concat(strided, axis=1), lambda: torch.cat(strided, 1),
           2 * sum(x.numel() for x in xs) * 4, "torch.cat(xs, 1)")
    xg = [x.clone().requires_grad_(True) for x in xs]
    yield ("concat n=8 fwd+bwd", fwd_bwd(lambda *a: C2.concat(list(a), axis=1)[0], *xg),
           fwd_bwd(lambda *a: torch.cat(a, 1), *xg), 4 * sum(x.numel() for x in xs) * 4,
           "torch.cat + autograd (backward returns views)")


def split(size, device):
    for n in (2, 8, 64):
        xs, widths = pieces(size, n, device)
        x = torch.cat(xs, 1)
        nbytes = 2 * x.numel() * 4
        yield (f"split n={n} axis=1", lambda: C2.split(x, split=widths, axis=1),
               lambda: [p.clone() for p in torch.split(x, widths, 1)], nbytes, "[p.clone() for p in torch.split(x, sizes, 1)]")
    xs, widths = pieces(size, 8, device)
    x = torch.cat(xs, 1)
    lengths = torch.tensor([w for w in widths for _ in range(1)], dtype=torch.int32)
    yield ("split_by_lengths n=8 axis=1", lambda: C2.split_by_lengths(x, lengths, 8, axis=1),
           lambda: [p.clone() for p in torch.split(x, lengths.tolist(), 1)], 2 * x.numel() * 4,
           "torch.split(x, lengths.tolist(), 1) + clone")
    xg = x.clone().requires_grad_(True)
    yield ("split n=8 fwd+bwd", fwd_bwd(lambda a: C2.split(a, split=widths, axis=1), xg),
           fwd_bwd(lambda a: [p.clone() for p in torch.split(a, widths, 1)], xg), 4 * x.numel() * 4,
           "torch.split + clone + autograd")


SCENARIOS = {"concat": concat, "split": split}

if __name__ == "__main__":
    run("concat/split family", SCENARIOS, parse_args(__doc__, SCENARIOS))
