"""Dropout: ours against torch.native_dropout (forward, train), and forward+backward.

    .venv/bin/python benchmarks/bench_dropout.py [--size small|large|both]

Large = 16M float32 (the issue's target size). Both sides allocate fresh outputs each call;
for 80 MB of outputs the first-touch page faults are a large share of the time. PyTorch's
THP_MEM_ALLOC_ENABLE=1 (huge pages for large CPU allocations) removes most of them; our kernels
ask for huge pages for their own outputs of 4 MiB or more (TORCH_CAFFE2OPS_HUGE_PAGES=0: not).
"""
import torch

from common import fwd_bwd, parse_args, run
from torch_caffe2ops import ops

C2 = torch.ops.caffe2ops


def dropout(size, device):
    n = (1 << 16) if size == "small" else (1 << 24)
    x = torch.randn(n, device=device)
    nbytes = n * (4 + 4 + 1)  # read X, write Y and the bool mask
    yield ("dropout train", lambda: C2.dropout(x, 0.5), lambda: torch.native_dropout(x, 0.5, True), nbytes,
           "torch.native_dropout(x, 0.5, train=True)")
    yield ("dropout_gradient", lambda: C2.dropout_gradient(x, mask, 0.5),
           lambda: torch.ops.aten.native_dropout_backward(x, mask, 2.0), n * 9, "aten.native_dropout_backward")
    if device == "cuda" and torch.backends.cudnn.is_available():
        yield ("cudnn_dropout train", lambda: C2.cudnn_dropout(x, 0.5), lambda: torch.native_dropout(x, 0.5, True),
               n * 8, "torch.native_dropout (cudnn_dropout's mask is an opaque reserve space)")
    xg = x.clone().requires_grad_(True)
    yield ("dropout fwd+bwd", fwd_bwd(lambda a: C2.dropout(a, 0.5)[0], xg),
           fwd_bwd(lambda a: torch.nn.functional.dropout(a, 0.5, True), xg), n * 22, "F.dropout + autograd")


mask = None


def with_mask(size, device):
    global mask
    n = (1 << 16) if size == "small" else (1 << 24)
    mask = torch.rand(n, device=device) > 0.5
    yield from dropout(size, device)


def floor(size, device):
    # The floor: what any dropout must at least do, a fresh output written from X and a fresh
    # bool mask written (no random numbers).
    n = (1 << 16) if size == "small" else (1 << 22)
    x = torch.randn(n, device=device)

    def fresh_output_and_mask():
        y = torch.empty_like(x).copy_(x)
        return y, torch.empty(n, dtype=torch.bool, device=device).fill_(True)
    yield (f"dropout train {n} vs the floor", lambda: C2.dropout(x, 0.5), fresh_output_and_mask, n * 9,
           "empty_like(x).copy_(x) + empty(bool).fill_ (native/ours = our share of the floor)")


def calls(device):
    """Small calls: (label, wrapper, torch.ops, nearest ATen call, its name, the same ATen op
    through torch.ops.aten)."""
    x = torch.randn(64, device=device)
    yield ("dropout (64,)", lambda: ops.dropout(x, 0.5), lambda: C2.dropout.default(x, 0.5),
           lambda: torch.native_dropout(x, 0.5, True), "torch.native_dropout",
           lambda: torch.ops.aten.native_dropout.default(x, 0.5, True))


SCENARIOS = {"dropout": with_mask, "floor": floor}

if __name__ == "__main__":
    run("dropout", SCENARIOS, parse_args(__doc__, SCENARIOS), calls)
