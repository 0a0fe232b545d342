"""The margin-rank family (csrc/margin_rank/). See docs/operators/margin_rank.md.
"""
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor

from .. import _func
from ._call import C2 as _C2, calls as _calls


def margin_ranking_criterion(X1: Tensor, X2: Tensor, Y: Tensor, margin: float = 1.0) -> Tensor:
    """Pairwise hinge ranking loss, elementwise and **unreduced**:
    ``loss[i] = max(0, -Y[i] * (X1[i] - X2[i]) + margin)``.

    ``Y[i] = 1`` means ``X1[i]`` should score higher, ``-1`` that ``X2[i]`` should. Labels are
    not validated (``Y = 0`` gives ``margin``). Inputs are matched element by element in
    flattened order: only their numbers of elements must agree, not their shapes.

    Args:
        X1: float32 or float64 scores.
        X2: scores with ``X1``'s dtype and number of elements.
        Y: labels with ``X1``'s number of elements: int32, int64, or ``X1``'s floating dtype.
        margin: the margin (may be negative). Default 1.0 (torch's default is 0).

    Returns:
        Tensor shaped like ``X1`` with its dtype (no reduction; take ``.mean()`` yourself or
        use :class:`torch_caffe2ops.nn.MarginRankingCriterion`).

    Raises:
        RuntimeError: different numbers of elements (``should have the same size``),
            ``X1``/``X2`` dtypes differ or are not floating, or an unsupported label dtype.

    Differentiable in ``X1`` and ``X2`` (backward: :func:`margin_ranking_criterion_gradient`;
    the hinge point counts as active). Caffe2: ``MarginRankingCriterion`` (argument
    ``margin`` = 1.0).
    """
    if not torch.jit.is_scripting():
        return _calls.margin_ranking_criterion(X1, X2, Y, margin)
    return torch.ops.caffe2ops.margin_ranking_criterion(X1, X2, Y, margin)


def margin_ranking_criterion_gradient(
    X1: Tensor, X2: Tensor, Y: Tensor, dLoss: Tensor, margin: float = 1.0
) -> Tuple[Tensor, Tensor]:
    """Gradient of :func:`margin_ranking_criterion`: where
    ``-Y * (X1 - X2) + margin >= 0``, ``dX1 = -Y * dLoss`` and ``dX2 = Y * dLoss``; elsewhere 0.

    Args:
        X1: the forward ``X1``.
        X2: the forward ``X2``.
        Y: the forward labels.
        dLoss: gradient of the loss, ``X1``'s number of elements.
        margin: as in the forward. Default 1.0.

    Returns:
        Tuple ``(dX1, dX2)`` shaped like ``X1`` and ``X2``.

    Raises:
        RuntimeError: the forward's checks, or ``dLoss`` with a different number of elements.

    Caffe2: ``MarginRankingCriterionGradient``.
    """
    if not torch.jit.is_scripting():
        return _calls.margin_ranking_criterion_gradient(X1, X2, Y, dLoss, margin)
    return torch.ops.caffe2ops.margin_ranking_criterion_gradient(X1, X2, Y, dLoss, margin)


# ---------------------------------------------------------------------------------------
# torch.func: one Function per differentiable op and per non-composite gradient op (the
# formulas of the C++ autograd of this family, over the wrappers above so that nested
# transforms route again). See torch_caffe2ops/_func.py for the fields of a Formula.
# ---------------------------------------------------------------------------------------

_z = _func.zero_if_none


def _mrc_tangent(a: List[Any], t1: Tensor, t2: Tensor) -> Tensor:
    X1, X2, Y, margin = a
    d1 = margin_ranking_criterion_gradient(X1, X2, Y, t1.reshape(X1.shape), margin)[0]
    d2 = margin_ranking_criterion_gradient(X1, X2, Y, t2.reshape(X1.shape), margin)[1]
    return d1 + d2.reshape(X1.shape)


_func.register({
    "margin_ranking_criterion": _func.Formula(
        _C2.margin_ranking_criterion,
        lambda a, g: (*margin_ranking_criterion_gradient(a[0], a[1], a[2], g, a[3]), None, None),
        lambda a, t: _mrc_tangent(a, _z(t[0], a[0]), _z(t[1], a[1]))),
    # dX1 = -y dLoss [active], dX2 = y dLoss [active]: linear in dLoss, piecewise constant in
    # X1, X2 (zero derivative almost everywhere, as torch's clamp).
    "margin_ranking_criterion_gradient": _func.Formula(
        _C2.margin_ranking_criterion_gradient,
        lambda a, g1, g2: (None, None, None,
                           (margin_ranking_criterion_gradient(a[0], a[1], a[2], g1, a[4])[0].reshape(a[3].shape)
                            + margin_ranking_criterion_gradient(a[0], a[1], a[2], g2, a[4])[1].reshape(a[3].shape)),
                           None),
        lambda a, t: margin_ranking_criterion_gradient(a[0], a[1], a[2], _z(t[3], a[3]), a[4])),
})
