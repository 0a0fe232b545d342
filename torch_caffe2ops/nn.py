"""Modules for the ops whose natural form is a layer. All are TorchScript-compatible."""
from typing import Tuple

import torch
from torch import Tensor

from . import ops


class Dropout(torch.nn.Module):
    """Caffe2's Dropout: inverted dropout with P(keep) = 1 - ratio, following ``self.training``.

    ``engine="cudnn"`` selects cuDNN's dropout on CUDA builds (spec 4.3); the default engine
    runs on every device. Evaluation mode returns a copy of the input.
    """

    def __init__(self, ratio: float = 0.5, engine: str = "default"):
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"Dropout: ratio must be in [0, 1), got {ratio}")
        if engine not in ("default", "cudnn"):
            raise ValueError(f"Dropout: engine must be 'default' or 'cudnn', got {engine!r}")
        self.ratio = ratio
        self.engine = engine

    def forward(self, x: Tensor) -> Tensor:
        if self.engine == "cudnn":
            return ops.cudnn_dropout(x, self.ratio, not self.training)[0]
        return ops.dropout(x, self.ratio, not self.training)[0]

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, engine={self.engine!r}"


class MarginRankingCriterion(torch.nn.Module):
    """Caffe2's pairwise ranking loss max(0, -y (x1 - x2) + margin) (default margin 1.0).

    ``reduction`` is "none" (Caffe2's elementwise output, the default), "mean" or "sum".
    """

    def __init__(self, margin: float = 1.0, reduction: str = "none"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"MarginRankingCriterion: reduction must be none, mean or sum, got {reduction!r}")
        self.margin = margin
        self.reduction = reduction

    def forward(self, x1: Tensor, x2: Tensor, y: Tensor) -> Tensor:
        loss = ops.margin_ranking_criterion(x1, x2, y, self.margin)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class BatchMoments(torch.nn.Module):
    """Per-channel (E[x], E[x^2]) of Caffe2's BatchMoments (spec 2.6)."""

    def __init__(self, order: str = "NCHW"):
        super().__init__()
        self.order = order

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return ops.batch_moments(x, self.order)
