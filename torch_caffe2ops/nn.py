"""Modules for the operators whose natural form is a layer.

All modules are TorchScript-compatible (``torch.jit.script``), trace under ``torch.compile``
and export with ``torch.export``.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import ops


class Dropout(torch.nn.Module):
    """Caffe2's dropout as a layer: inverted dropout that follows ``self.training``.

    In training mode every element is kept with probability ``1 - ratio`` and kept elements
    are multiplied by ``1 / (1 - ratio)``; in evaluation mode (``module.eval()``) the output is
    a copy of the input. The mask is drawn from PyTorch's default generator of the input's
    device, so ``torch.manual_seed`` reproduces it. See :func:`torch_caffe2ops.ops.dropout`.

    Args:
        ratio: drop probability, ``0 <= ratio < 1`` (Caffe2's argument name). Default 0.5.
        engine: ``"default"`` (every device) or ``"cudnn"`` (Caffe2's ``engine="CUDNN"``;
            needs CUDA tensors and a build with cuDNN).
        p: the same as ``ratio``, under ``torch.nn.Dropout``'s name. Give one or the other.

    Raises:
        ValueError: ``ratio`` outside ``[0, 1)`` (unlike torch, 1 is rejected), both ``ratio``
            and ``p`` given with different values, or an unknown ``engine``.
        TypeError: ``ratio``/``p`` is not a number.

    Caffe2: ``Dropout`` / ``DropoutGrad`` with ``is_test = not module.training``.
    """

    __jit_unused_properties__ = ["p"]  # a scripted module keeps ``ratio`` only

    def __init__(self, ratio: Optional[float] = None, engine: str = "default", *, p: Optional[float] = None):
        super().__init__()
        if ratio is not None and p is not None and float(ratio) != float(p):
            raise ValueError(f"Dropout: give ratio or p, not both (got ratio={ratio}, p={p})")
        value = ratio if ratio is not None else (p if p is not None else 0.5)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Dropout: ratio (p) must be a float, got {type(value).__name__}")
        value = float(value)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"Dropout: ratio (p) must be in [0, 1), got {value}")
        if engine not in ("default", "cudnn"):
            raise ValueError(f"Dropout: engine must be 'default' or 'cudnn', got {engine!r}")
        self.ratio = value
        self.engine = engine

    @property
    def p(self) -> float:
        """The drop probability under ``torch.nn.Dropout``'s name (same as ``ratio``; eager only)."""
        return self.ratio

    @p.setter
    def p(self, value: float) -> None:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"Dropout: ratio (p) must be in [0, 1), got {value}")
        self.ratio = float(value)

    def forward(self, x: Tensor) -> Tensor:
        """Applies dropout to ``x`` (a copy of ``x`` in evaluation mode).

        Args:
            x: floating tensor of any shape.

        Returns:
            Tensor shaped and typed like ``x``.
        """
        if self.engine == "cudnn":
            return ops.cudnn_dropout(x, self.ratio, not self.training)[0]
        return ops.dropout(x, self.ratio, not self.training)[0]

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, engine={self.engine!r}"


class MarginRankingCriterion(torch.nn.Module):
    """Caffe2's pairwise hinge ranking loss ``max(0, -y * (x1 - x2) + margin)``.

    ``y = 1`` means ``x1`` should score higher than ``x2``, ``y = -1`` the opposite. Inputs are
    matched elementwise in flattened order. See :func:`torch_caffe2ops.ops.margin_ranking_criterion`.

    Args:
        margin: the margin. Default 1.0 (``torch.nn.MarginRankingLoss`` defaults to 0).
        reduction: ``"none"`` (Caffe2's elementwise output, the default; torch's default is
            ``"mean"``), ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: an unknown ``reduction``.

    Caffe2: ``MarginRankingCriterion`` (``reduction="none"``).
    """

    def __init__(self, margin: float = 1.0, reduction: str = "none"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"MarginRankingCriterion: reduction must be none, mean or sum, got {reduction!r}")
        self.margin = margin
        self.reduction = reduction

    def forward(self, x1: Tensor, x2: Tensor, y: Tensor) -> Tensor:
        """Computes the loss.

        Args:
            x1: float32 or float64 scores.
            x2: scores with ``x1``'s dtype and number of elements.
            y: labels (int32, int64 or ``x1``'s dtype), usually +1 or -1.

        Returns:
            The elementwise loss shaped like ``x1`` (``"none"``), or its mean or sum (0-d).
        """
        loss = ops.margin_ranking_criterion(x1, x2, y, self.margin)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class BatchMoments(torch.nn.Module):
    """Per-channel mean and raw second moment ``(E[x], E[x^2])`` (not the variance).

    See :func:`torch_caffe2ops.ops.batch_moments`.

    Args:
        order: ``"NCHW"`` (channels in dimension 1, the default) or ``"NHWC"`` (channels last).

    Caffe2: ``BatchMoments``.
    """

    def __init__(self, order: str = "NCHW"):
        super().__init__()
        self.order = order

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Returns ``(mean, second_moment)``, each of shape ``[C]``.

        Args:
            x: floating tensor of rank >= 2.

        Returns:
            Tuple of two 1-D tensors with ``x``'s dtype.
        """
        return ops.batch_moments(x, self.order)
