"""MarginRankingCriterion against F.margin_ranking_loss(reduction="none"), eager and
torch.compile'd, forward and forward+backward.

    .venv/bin/python benchmarks/bench_margin_rank.py [--size small|large|both]
"""
import torch
import torch.nn.functional as F

from common import fwd_bwd, parse_args, run
from torch_caffe2ops import ops

C2 = torch.ops.caffe2ops


def margin_rank(size, device):
    n = (1 << 16) if size == "small" else (1 << 24)
    x1, x2 = torch.randn(n, device=device), torch.randn(n, device=device)
    y = (torch.randint(0, 2, (n,), device=device) * 2 - 1).int()
    yf = y.float()
    a, b = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    native = lambda p, q: F.margin_ranking_loss(p, q, yf, margin=0.1, reduction="none")  # noqa: E731
    compiled = torch.compile(native)
    yield ("margin_ranking_criterion fwd", lambda: C2.margin_ranking_criterion(x1, x2, y, 0.1),
           lambda: native(x1, x2), n * 16, "F.margin_ranking_loss(reduction='none')")
    yield ("margin_ranking_criterion fwd+bwd", fwd_bwd(lambda p, q: C2.margin_ranking_criterion(p, q, y, 0.1), a, b),
           fwd_bwd(native, a, b), n * 40, "F.margin_ranking_loss + autograd (eager)")
    yield ("margin_ranking_criterion fwd+bwd vs compiled", fwd_bwd(lambda p, q: C2.margin_ranking_criterion(p, q, y, 0.1), a, b),
           fwd_bwd(compiled, a, b), n * 40, "torch.compile(F.margin_ranking_loss) + autograd")


def calls(device):
    """Small calls: (label, wrapper, torch.ops, nearest ATen call, its name, the same ATen op
    through torch.ops.aten)."""
    x1, x2 = torch.randn(64, device=device), torch.randn(64, device=device)
    y = (torch.randint(0, 2, (64,), device=device) * 2 - 1).int()
    yf = y.float()
    yield ("margin_ranking_criterion (64,)", lambda: ops.margin_ranking_criterion(x1, x2, y, 0.1),
           lambda: C2.margin_ranking_criterion.default(x1, x2, y, 0.1),
           lambda: F.margin_ranking_loss(x1, x2, yf, margin=0.1, reduction="none"), "F.margin_ranking_loss",
           lambda: torch.ops.aten.margin_ranking_loss.default(x1, x2, yf, 0.1, 0))


SCENARIOS = {"margin_rank": margin_rank}

if __name__ == "__main__":
    run("margin rank", SCENARIOS, parse_args(__doc__, SCENARIOS), calls)
