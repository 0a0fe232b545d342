"""Samples of the margin-rank family (see tests/samples/__init__.py). Differentiable samples
keep every pair away from the hinge, where the loss has a kink."""
import torch

from samples import DIFF, sample

gr = dict(dtype=torch.float64, requires_grad=True)


def _away_from_kink(shape1=(6,), margin=0.2):
    y = torch.tensor([1, -1] * 3)
    x1, x2 = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    x1 = x1 + 0.3 * torch.sign(x1 - x2 + y * (1.0 - margin))
    near = (margin - y * (x1 - x2)).abs() < 0.1
    x1 = x1 + 0.25 * near
    return x1.reshape(shape1).requires_grad_(), x2.requires_grad_(), y


def _large():
    x1, x2 = torch.randn(20000, requires_grad=True), torch.randn(20000, requires_grad=True)
    return x1, x2, torch.where(torch.rand(20000) < 0.5, -1, 1).to(torch.int32)


SAMPLES = [
    sample("margin_ranking_criterion", lambda: (*_away_from_kink(), 0.2), DIFF),
    sample("margin_ranking_criterion", lambda: (*_away_from_kink((2, 3), 1.0)[:2], torch.ones(6, dtype=torch.float64)),
           DIFF, label="float labels"),
    sample("margin_ranking_criterion", lambda: (*_away_from_kink(margin=0.3)[:2], torch.tensor([1, -1] * 3, dtype=torch.int32),
                                                0.3), DIFF, label="int32 labels"),
    sample("margin_ranking_criterion_gradient", lambda: (torch.randn(6), torch.randn(6),
                                                         torch.tensor([1, -1] * 3, dtype=torch.int32), torch.randn(6)),
           label="no grad"),
    sample("margin_ranking_criterion_gradient",
           lambda: (*_away_from_kink((2, 3), 0.3), torch.randn(2, 3, **gr), 0.3), DIFF),

    # "large" samples (see tests/samples/__init__.py)
    sample("margin_ranking_criterion", lambda: (*_large(), 0.2), label="large"),
    sample("margin_ranking_criterion_gradient", lambda: (*_large(), torch.randn(20000, requires_grad=True), 0.2),
           label="large"),
]
