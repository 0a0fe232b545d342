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


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeat, device="cpu"):
    """Median wall time of fn() in seconds after two warm-up calls (CUDA: event timing). On the
    CPU a sample of a call shorter than 200 us times a loop of calls lasting about that long,
    so that microsecond rows are not one timer read each."""
    fn()
    fn()
    _sync(device)
    number = 1
    if device != "cuda":
        t0 = time.perf_counter()
        fn()
        number = max(1, min(1000, int(2e-4 / max(time.perf_counter() - t0, 1e-7))))
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
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def copy_gbs(nbytes, repeat, device="cpu"):
    """GB/s of dst.copy_(src) moving `nbytes` in total (half read, half written)."""
    n = max(1, nbytes // 8)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), repeat, device)
    return 2 * n * 4 / t / 1e9


THREAD_COUNTS = {"1": lambda: [1], "all": lambda: [ALL_THREADS], "both": lambda: sorted({1, ALL_THREADS})}
ALL_THREADS = torch.get_num_threads()


def parse_args(description, scenarios):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--size", choices=["small", "large", "both"], default="both")
    p.add_argument("--only", choices=sorted(scenarios), nargs="*", help="run only these scenarios")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per measurement (median reported)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", choices=sorted(THREAD_COUNTS), default="both",
                   help="time every row with one thread, with all threads, or both (default)")
    p.add_argument("--no-calls", action="store_true", help="skip the small-call (per-call overhead) table")
    p.add_argument("--markdown", help="also write the tables to this file")
    return p.parse_args()


class Table:
    """One row per case; for each thread count: ours, native, native/ours, our GB/s and copy_'s."""

    def __init__(self, title, threads):
        self.title = title
        self.threads = threads
        self.rows = []
        self.cols = ["op", "size"]
        for t in threads:
            self.cols += [f"ours ms {t}t", f"native ms {t}t", f"native/ours {t}t", f"ours GB/s {t}t",
                          f"copy_ GB/s {t}t"]
        self.cols.append("native composition")

    def header(self):
        print(f"\n## {self.title}\n", flush=True)
        print(" | ".join(self.cols), flush=True)

    def add(self, name, size, per_thread, nbytes, native_name):
        row = [name, size]
        for ours, native, copy in per_thread:
            row += [f"{ours * 1e3:.3f}", f"{native * 1e3:.3f}", f"{native / ours:.2f}x", f"{nbytes / ours / 1e9:.2f}",
                    f"{copy:.2f}"]
        row.append(native_name)
        self.rows.append(row)
        print(" | ".join(row), flush=True)

    def markdown(self):
        lines = [f"## {self.title}", "", "| " + " | ".join(self.cols) + " |", "|" + "---|" * len(self.cols)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


def _interleaved(ours_fn, native_fn, args):
    # Interleave ours and native so drift on a noisy machine hits both alike.
    ours, native = [], []
    for _ in range(3):
        ours.append(median_time(ours_fn, max(3, args.repeat // 3), args.device))
        native.append(median_time(native_fn, max(3, args.repeat // 3), args.device))
    return statistics.median(ours), statistics.median(native)


def _time_pair(ours_fn, native_fn, nbytes, args):
    return (*_interleaved(ours_fn, native_fn, args), copy_gbs(nbytes, args.repeat, args.device))


def call_time(fn, number=200, rounds=15):
    """Median seconds per call of fn() over `rounds` loops of `number` calls (small calls)."""
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def run_calls(title, calls, args):
    """The per-call table: each small call through the wrapper (torch_caffe2ops.ops), through
    torch.ops.caffe2ops, and the nearest ATen call doing the same work, in microseconds; and
    the same ATen work as one op called through torch.ops.aten (for split + clone:
    split_with_sizes_copy), which pays the same generic argument parsing (boxing) as
    torch.ops.caffe2ops, where ATen's own Python binding is generated code. Both torch.ops
    columns call the op's overload (`.default`), the same entry on both sides; the packet
    (`torch.ops.caffe2ops.concat(...)`) adds its own Python frame and overload matching."""
    cols = ["call", "threads", "ops wrapper us", "torch.ops us", "ATen us", "torch.ops.aten us",
            "wrapper - torch.ops us", "torch.ops - ATen us", "torch.ops - torch.ops.aten us", "ATen call"]
    rows = []
    print(f"\n## {title}\n", flush=True)
    print(" | ".join(cols), flush=True)
    for threads in THREAD_COUNTS[args.threads]():
        torch.set_num_threads(threads)
        for label, wrapper_fn, raw_fn, aten_fn, aten_name, boxed_fn in calls(args.device):
            w, r, a, b = [], [], [], []
            for _ in range(5):  # interleaved rounds
                w.append(call_time(wrapper_fn, rounds=3))
                r.append(call_time(raw_fn, rounds=3))
                a.append(call_time(aten_fn, rounds=3))
                b.append(call_time(boxed_fn, rounds=3))
            w, r, a, b = (statistics.median(v) * 1e6 for v in (w, r, a, b))
            row = [label, str(threads), f"{w:.2f}", f"{r:.2f}", f"{a:.2f}", f"{b:.2f}", f"{w - r:+.2f}", f"{r - a:+.2f}",
                   f"{r - b:+.2f}", aten_name]
            rows.append(row)
            print(" | ".join(row), flush=True)
    torch.set_num_threads(ALL_THREADS)
    lines = [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


# Rows faster than this that carry a floor pair are also timed against it (FloorTable).
FLOOR_ROW_SECONDS = 50e-6


class FloorTable:
    """Fast rows next to their entry floor: the same call on one-element inputs (same op,
    dtypes, argument form and number of tensors), which pays the Python entry, the dispatcher,
    the checks and the output allocation but does almost no work. native / (ours, one element)
    is the highest ratio any kernel could reach through that entry: where it is below a row's
    target, no kernel meets the target. The work ratio compares the kernels with each side's
    floor taken off; it is left out where our work is under 0.05 us (noise). The work GB/s
    are the row's bytes over each side's time less its floor, beside a `copy_` of the same
    bytes in the same run: a kernel at the `copy_` rate moves its bytes as fast as this machine
    copies them (`copy_`'s own call cost is left in its rate, so for the smallest rows it reads
    low). "GB/s for 1.0x" is the work rate our kernel would need to tie with native through
    our entry (bytes / (native - ours on one element); "none" where our entry alone takes as
    long as native): where it is well above `copy_`, no kernel that copies its bytes ties."""

    cols = ["row", "size", "threads", "ours us", "native us", "native/ours", "ours, one element us",
            "native, one element us", "native/(ours, one element)", "work ratio", "ours work GB/s",
            "native work GB/s", "copy_ GB/s", "GB/s for 1.0x"]

    def __init__(self, title):
        self.title = title
        self.rows = []

    def add(self, label, size, threads, ours, native, ours_floor, native_floor, nbytes, copy_rate):
        us = [v * 1e6 for v in (ours, native, ours_floor, native_floor)]
        ours_work, native_work = us[0] - us[2], us[1] - us[3]
        work = f"{native_work / ours_work:.2f}x" if ours_work > 0.05 and native_work > 0 else "-"

        def rate(work_us):
            return f"{nbytes / work_us / 1e3:.1f}" if work_us > 0.05 else "-"
        self.rows.append([label, size, str(threads), f"{us[0]:.2f}", f"{us[1]:.2f}", f"{native / ours:.2f}x",
                          f"{us[2]:.2f}", f"{us[3]:.2f}", f"{native / ours_floor:.2f}x", work,
                          rate(ours_work), rate(native_work), f"{copy_rate:.1f}",
                          rate(us[1] - us[2]) if us[1] - us[2] > 0.05 else "none"])

    def markdown(self):
        lines = [f"## {self.title}", "", "| " + " | ".join(self.cols) + " |", "|" + "---|" * len(self.cols)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


def run(title, scenarios, args, calls=None):
    """Times every scenario's rows at each thread count of --threads (same process: the thread
    count changes with torch.set_num_threads), then the family's small-call table.

    A row is (label, ours, native, bytes moved, native's name) and optionally its floor pair
    (ours, native on one-element inputs): CPU rows faster than FLOOR_ROW_SECONDS are then also
    timed against it."""
    torch.manual_seed(0)
    torch.randn(1 << 20).sum()  # start the thread pool before the first timed row
    threads = THREAD_COUNTS[args.threads]()
    table = Table(f"{title} ({args.device}, threads {'/'.join(map(str, threads))}, torch {torch.__version__})", threads)
    floors = FloorTable(f"{title}: rows under {FLOOR_ROW_SECONDS * 1e6:.0f} us against their entry floor ({args.device})")
    table.header()
    sizes = ["small", "large"] if args.size == "both" else [args.size]
    for name in sorted(scenarios):
        if args.only and name not in args.only:
            continue
        for size in sizes:
            for row in scenarios[name](size, args.device):
                label, ours_fn, native_fn, nbytes, native_name, *floor_pair = row
                per_thread = []
                for t in threads:
                    torch.set_num_threads(t)
                    per_thread.append(_time_pair(ours_fn, native_fn, nbytes, args))
                    ours, native, copy_rate = per_thread[-1]
                    if floor_pair and args.device == "cpu" and ours < FLOOR_ROW_SECONDS:
                        floors.add(label, size, t, ours, native, *_interleaved(*floor_pair[0], args), nbytes,
                                   copy_rate)
                torch.set_num_threads(ALL_THREADS)
                table.add(label, size, per_thread, nbytes, native_name)
    text = table.markdown()
    if floors.rows:
        floor_text = floors.markdown()
        print("\n" + floor_text, flush=True)
        text += "\n" + floor_text
    if calls is not None and not args.no_calls and not args.only:
        text += "\n" + run_calls(f"{title}: per-call overhead, small inputs ({args.device})", calls, args)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text + "\n")
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
