"""The dropout family (csrc/dropout/). See docs/operators/dropout.md.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .. import _func
from ._call import C2 as _C2, calls as _calls


def dropout(
    X: Tensor, ratio: float = 0.5, is_test: bool = False, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """Inverted dropout that also returns its mask. **Returns a tuple** ``(Y, mask)``.

    Training (``is_test=False``): every element is kept independently with probability
    ``1 - ratio``; ``Y = X * mask * scale`` with ``scale = 1 / (1 - ratio)`` (computed in double,
    rounded once to the compute type, then multiplied: bit-identical to Caffe2 and to
    ``torch.native_dropout`` given the same mask). Dropped elements are ``X * 0``, so NaN and
    inf stay NaN. ``ratio=0`` keeps everything exactly.

    Test mode (``is_test=True``): ``Y`` is a copy of ``X`` and ``mask`` is all ``True``.

    Random numbers come from ``generator`` or PyTorch's default generator of ``X``'s device,
    so ``torch.manual_seed`` reproduces the mask (the stream differs from torch's own dropout).

    Args:
        X: floating tensor (float32, float64, float16, bfloat16), any shape.
        ratio: drop probability, ``0 <= ratio < 1``. Default 0.5.
        is_test: inference mode. Default ``False`` (note: the inverse of torch's ``training``).
        generator: optional ``torch.Generator``.

    Returns:
        Tuple ``(Y, mask)``: ``Y`` shaped and typed like ``X``, ``mask`` a bool tensor of ``X``'s
        shape (``True`` = kept).

    Raises:
        RuntimeError: ``ratio`` outside ``[0, 1)`` (checked in test mode too) or a
            non-floating ``X``.

    Differentiable in ``X`` (backward: :func:`dropout_gradient`). Caffe2: ``Dropout``
    (arguments ``ratio`` = 0.5, ``is_test`` = 0; outputs ``Y, mask``).
    """
    if not torch.jit.is_scripting():
        return _calls.dropout(X, ratio, is_test, generator)
    return torch.ops.caffe2ops.dropout(X, ratio, is_test, generator)


def dropout_gradient(dY: Tensor, mask: Optional[Tensor] = None, ratio: float = 0.5, is_test: bool = False) -> Tensor:
    """Gradient of :func:`dropout`: ``dX = dY * mask * scale`` (``scale = 1 / (1 - ratio)``,
    rounded as in the forward), or a copy of ``dY`` in test mode (the mask is then ignored).

    Args:
        dY: gradient of ``Y``.
        mask: the forward's bool mask; required unless ``is_test``.
        ratio: as in the forward. Default 0.5.
        is_test: as in the forward. Default ``False``.

    Returns:
        Tensor shaped and typed like ``dY``.

    Raises:
        RuntimeError: ``ratio`` outside ``[0, 1)``; in training mode a missing mask, a mask
            that is not bool, or a mask with a different number of elements.

    Caffe2: ``DropoutGrad`` (inputs ``dY[, mask]``).
    """
    if not torch.jit.is_scripting():
        return _calls.dropout_gradient(dY, mask, ratio, is_test)
    return torch.ops.caffe2ops.dropout_gradient(dY, mask, ratio, is_test)


def cudnn_dropout(
    X: Tensor, ratio: float = 0.5, is_test: bool = False, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """Dropout computed by cuDNN, as Caffe2's ``Dropout`` with ``engine="CUDNN"``.

    Same ``Y`` semantics as :func:`dropout` (inverted scaling by ``1 / (1 - ratio)``, a copy in
    test mode), but the second output is cuDNN's **opaque** reserve space, a 1-D uint8 tensor
    that encodes the mask in cuDNN's private format; it is not a per-element mask. The random
    state is seeded from ``generator`` or the CUDA default generator.

    Args:
        X: float32 or float16 CUDA tensor.
        ratio: drop probability, ``0 <= ratio < 1``. Default 0.5.
        is_test: inference mode. Default ``False``.
        generator: optional CUDA ``torch.Generator``.

    Returns:
        Tuple ``(Y, reserve_space)``.

    Raises:
        RuntimeError: on a CPU tensor or a build without CUDA and cuDNN; ``ratio`` outside
            ``[0, 1)``; an unsupported dtype.

    Differentiable in ``X`` (backward: :func:`cudnn_dropout_gradient`).
    """
    if not torch.jit.is_scripting():
        return _calls.cudnn_dropout(X, ratio, is_test, generator)
    return torch.ops.caffe2ops.cudnn_dropout(X, ratio, is_test, generator)


def cudnn_dropout_gradient(dY: Tensor, reserve_space: Tensor, ratio: float = 0.5, is_test: bool = False) -> Tensor:
    """Gradient of :func:`cudnn_dropout` from its reserve space (``dY`` in test mode).

    Args:
        dY: gradient of ``Y`` (CUDA).
        reserve_space: the forward's second output.
        ratio: as in the forward. Default 0.5.
        is_test: as in the forward. Default ``False``.

    Returns:
        Tensor shaped and typed like ``dY``.

    Raises:
        RuntimeError: as :func:`cudnn_dropout`, or a reserve space of the wrong size.

    Caffe2: ``DropoutGrad`` with ``engine="CUDNN"``.
    """
    if not torch.jit.is_scripting():
        return _calls.cudnn_dropout_gradient(dY, reserve_space, ratio, is_test)
    return torch.ops.caffe2ops.cudnn_dropout_gradient(dY, reserve_space, ratio, is_test)


# ---------------------------------------------------------------------------------------
# torch.func: one Function per differentiable op and per non-composite gradient op (the
# formulas of the C++ autograd of this family, over the wrappers above so that nested
# transforms route again). See torch_caffe2ops/_func.py for the fields of a Formula.
# ---------------------------------------------------------------------------------------

_func.register({
    "dropout": _func.Formula(  # Y = X * mask * scale: linear in X; the mask gets no gradient
        _C2.dropout,
        lambda a, g, _, Y, mask: (dropout_gradient(g, None if a[2] else mask, a[1], a[2]), None, None, None),
        lambda a, t, Y, mask: (dropout_gradient(t[0], None if a[2] else mask, a[1], a[2]), None),
        nondiff=(1,), save_out=True),
    "dropout_gradient": _func.Formula(  # linear in dY
        _C2.dropout_gradient,
        lambda a, g: (dropout_gradient(g, *a[1:]), None, None, None),
        lambda a, t: dropout_gradient(t[0], *a[1:])),
    "cudnn_dropout": _func.Formula(  # as dropout, with the mask inside the opaque reserve space
        _C2.cudnn_dropout,
        lambda a, g, _, Y, reserve: (cudnn_dropout_gradient(g, reserve, a[1], a[2]), None, None, None),
        lambda a, t, Y, reserve: (cudnn_dropout_gradient(t[0], reserve, a[1], a[2]), None),
        nondiff=(1,), save_out=True),
    "cudnn_dropout_gradient": _func.Formula(  # linear in dY
        _C2.cudnn_dropout_gradient,
        lambda a, g: (cudnn_dropout_gradient(g, *a[1:]), None, None, None),
        lambda a, t: cudnn_dropout_gradient(t[0], *a[1:])),
})
