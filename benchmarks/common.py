"""Timing helpers shared by every benchmarks/bench_<family>.py.

Each row times our op and the native PyTorch composition a user would otherwise write, in
the same process, interleaved, and reports medians, the ratio native/ours (> 1 means we are
faster) and the achieved GB/s next to a `copy_` of the same number of bytes measured in the
same run. This machine is noisy: read medians and ratios, not single times.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # after PYTHONPATH: another build may be tested
import torch_caffe2ops  # noqa: E402,F401


def parse_args(description, scenarios):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--size", choices=["small", "large", "both"], default="both")
    p.add_argument("--only", choices=sorted(scenarios), nargs="*", help="run only these scenarios")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per measurement (median reported)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--markdown", help="also write the table to this file")
    return p.parse_args()


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeat, device="cpu"):
    """Median wall time of fn() in seconds after two warm-up calls (CUDA: event timing)."""
    fn()
    fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_gbs(nbytes, repeat, device="cpu"):
    """GB/s of dst.copy_(src) moving `nbytes` in total (half read, half written)."""
    n = max(1, nbytes // 8)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), repeat, device)
    return 2 * n * 4 / t / 1e9


class Table:
    def __init__(self, title):
        self.title = title
        self.rows = []

    def add(self, name, size, ours, native, nbytes, copy, native_name):
        ratio = native / ours
        row = (name, size, f"{ours * 1e3:.3f}", f"{native * 1e3:.3f}", f"{ratio:.2f}x",
               f"{nbytes / ours / 1e9:.2f}", f"{copy:.2f}", native_name)
        self.rows.append(row)
        print(" | ".join(row), flush=True)

    def header(self):
        cols = ("op", "size", "ours ms", "native ms", "native/ours", "ours GB/s", "copy_ GB/s", "native composition")
        print(f"\n## {self.title}\n", flush=True)
        print(" | ".join(cols), flush=True)
        return cols

    def markdown(self, cols):
        lines = [f"## {self.title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


def run(title, scenarios, args):
    torch.manual_seed(0)
    torch.randn(1 << 20).sum()  # start the thread pool before the first timed row
    table = Table(f"{title} ({args.device}, {torch.get_num_threads()} threads, torch {torch.__version__})")
    cols = table.header()
    sizes = ["small", "large"] if args.size == "both" else [args.size]
    for name in sorted(scenarios):
        if args.only and name not in args.only:
            continue
        for size in sizes:
            for row in scenarios[name](size, args.device):
                label, ours_fn, native_fn, nbytes, native_name = row
                # Interleave ours and native so drift on a noisy machine hits both alike.
                ours, native = [], []
                for _ in range(3):
                    ours.append(median_time(ours_fn, max(3, args.repeat // 3), args.device))
                    native.append(median_time(native_fn, max(3, args.repeat // 3), args.device))
                copy = copy_gbs(nbytes, args.repeat, args.device)
                table.add(label, size, statistics.median(ours), statistics.median(native), nbytes, copy, native_name)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(table.markdown(cols) + "\n")
    return table


def fwd_bwd(fn, *inputs):
    """A closure running fn(*inputs) forward and backward (a sum of all floating outputs)."""
    def step():
        for x in inputs:
            x.grad = None
        out = fn(*inputs)
        out = out if isinstance(out, (tuple, list)) else (out,)
        sum(o.sum() for o in out if o.is_floating_point()).backward()
    return step
