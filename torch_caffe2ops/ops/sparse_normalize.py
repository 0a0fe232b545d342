"""The sparse-normalize family (csrc/sparse_normalize/). See docs/operators/sparse_normalize.md.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ._call import C2 as _C2, calls as _calls


def sparse_normalize(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """Rescales the listed rows of an embedding table to L2 norm ``norm`` (returns a copy).

    Rows are the first-dimension slices of ``param``; only rows named in ``indices`` change,
    each once however often it is listed (``norm_r`` is its L2 norm, computed in float32 for
    float16 tables):

    * ``use_max_norm=True`` (default, "max-norm"): a row with ``norm_r > norm`` becomes
      ``row * norm / (norm_r + 1e-12)``; other rows stay as they are.
    * ``use_max_norm=False``: every listed row becomes ``row * norm / (norm_r + 1e-12)``
      (an all-zero row stays zero).

    A NaN row stays NaN. Empty ``indices`` change nothing. For training, call the in-place
    :func:`sparse_normalize_` under ``torch.no_grad()`` after the optimizer step, with the
    ids the batch touched.

    Args:
        param: float32, float64 or float16 tensor ``[R, ...]``, rank >= 1.
        indices: int32 or int64 tensor of any shape (flattened), values in ``[0, R)``.
        grad: ignored; accepted because Caffe2's operator had this input.
        use_max_norm: only shrink rows above ``norm``. Default ``True``.
        norm: the target norm, >= 0. Default 1.0.

    Returns:
        A new tensor: ``param`` with the listed rows rescaled.

    Raises:
        RuntimeError: ``param`` is 0-d or not floating; ``norm < 0`` or not finite in
            ``param``'s compute type; an index outside ``[0, R)``.

    Not differentiable. Caffe2: ``SparseNormalize`` (inputs ``param, indices[, grad]``;
    arguments ``use_max_norm`` = 1, ``norm`` = 1.0), the operator behind the MaxNorm
    regularizer.
    """
    if not torch.jit.is_scripting():
        return _calls.sparse_normalize(param, indices, grad, use_max_norm, norm)
    return torch.ops.caffe2ops.sparse_normalize(param, indices, grad, use_max_norm, norm)


def sparse_normalize_(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """In-place :func:`sparse_normalize`: rescales the listed rows of ``param`` and returns
    ``param`` itself (Caffe2's operator always ran in place).

    Args:
        param: the table to modify (float32, float64 or float16, rank >= 1). For a parameter
            that requires grad, call it under ``torch.no_grad()``.
        indices: int32 or int64, values in ``[0, R)``.
        grad: ignored.
        use_max_norm: only shrink rows above ``norm``. Default ``True``.
        norm: the target norm, >= 0. Default 1.0.

    Returns:
        ``param``.

    Raises:
        RuntimeError: as :func:`sparse_normalize`, or ``param`` has elements that share memory
            (an expanded or stride-0 tensor), which cannot be normalised in place.

    Not differentiable. Caffe2: ``SparseNormalize``.
    """
    if not torch.jit.is_scripting():
        return _calls.sparse_normalize_(param, indices, grad, use_max_norm, norm)
    return torch.ops.caffe2ops.sparse_normalize_(param, indices, grad, use_max_norm, norm)


def float16_sparse_normalize(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """:func:`sparse_normalize` that requires a float16 ``param`` (norms computed in float32,
    results rounded to float16).

    Args:
        param: float16 tensor ``[R, ...]``.
        indices: int32 or int64, values in ``[0, R)``.
        grad: ignored.
        use_max_norm: only shrink rows above ``norm``. Default ``True``.
        norm: the target norm, >= 0. Default 1.0.

    Returns:
        A new float16 tensor.

    Raises:
        RuntimeError: ``param`` not float16, or the checks of :func:`sparse_normalize`.

    Not differentiable. Caffe2: ``Float16SparseNormalize``.
    """
    if not torch.jit.is_scripting():
        return _calls.float16_sparse_normalize(param, indices, grad, use_max_norm, norm)
    return torch.ops.caffe2ops.float16_sparse_normalize(param, indices, grad, use_max_norm, norm)


def float16_sparse_normalize_(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """In-place :func:`float16_sparse_normalize`; returns ``param``.

    Args:
        param: float16 tensor ``[R, ...]``, modified in place.
        indices: int32 or int64, values in ``[0, R)``.
        grad: ignored.
        use_max_norm: only shrink rows above ``norm``. Default ``True``.
        norm: the target norm, >= 0. Default 1.0.

    Returns:
        ``param``.

    Raises:
        RuntimeError: as :func:`float16_sparse_normalize`.

    Not differentiable. Caffe2: ``Float16SparseNormalize``.
    """
    if not torch.jit.is_scripting():
        return _calls.float16_sparse_normalize_(param, indices, grad, use_max_norm, norm)
    return torch.ops.caffe2ops.float16_sparse_normalize_(param, indices, grad, use_max_norm, norm)
