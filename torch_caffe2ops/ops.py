"""Typed wrappers around ``torch.ops.caffe2ops.*``, one per operator.

Each wrapper forwards to the registered operator with the same argument names and Caffe2's
defaults, so it works the same in eager code, under ``torch.jit.script`` (the wrappers are
scriptable and scripted code calls the registered operator directly), ``torch.compile`` and
``torch.export``. In eager mode the wrappers first check the Python types of their arguments
and raise a :class:`TypeError` that names the wrapper and the argument.

Conventions shared by every operator:

* **Errors.** Every violated precondition raises :class:`RuntimeError` whose message starts
  with ``caffe2ops::<op>:`` and names the argument and the offending value. Where Caffe2 read
  or wrote out of bounds (unchecked indices, negative lengths), these operators raise instead.
* **Index and length tensors** accept ``torch.int32`` and ``torch.int64``. Negative indices
  never wrap around.
* **Fresh outputs.** Outputs never alias inputs (a one-piece split or a test-mode dropout is
  a copy); the only exceptions are the in-place ``sparse_normalize_`` variants, which return
  ``param`` itself.
* **Gradients.** Differentiable operators have autograd whose backward calls the matching
  ``*_gradient`` operator, also exposed here. Operators without a gradient raise a
  :class:`RuntimeError` when one is requested through them.
"""
import numbers
from typing import List, Optional, Tuple

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------
# Argument type checks (eager mode only: every call site is guarded by
# `if not torch.jit.is_scripting():`, so scripted code never compiles these helpers).
# ---------------------------------------------------------------------------------------

_FLOAT_TYPES = (numbers.Real, torch.SymInt, torch.SymFloat)


def _is_int(value) -> bool:
    # Python and NumPy integers (anything with __index__), symbolic sizes; never a float.
    return isinstance(value, torch.SymInt) or (
        hasattr(value, "__index__") and not isinstance(value, (float, torch.Tensor))
    )


def _fail(op: str, name: str, expected: str, value) -> None:
    raise TypeError(
        f"torch_caffe2ops.ops.{op}: argument '{name}' must be {expected}, got {type(value).__name__}"
        + (f" ({value!r})" if isinstance(value, (int, float, str, bool)) else "")
    )


def _tensor(op: str, name: str, value, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, torch.Tensor):
        _fail(op, name, "a Tensor or None" if optional else "a Tensor", value)


def _tensor_list(op: str, name: str, value, optional_items: bool = False) -> None:
    what = "a list of Tensors (None allowed)" if optional_items else "a list of Tensors"
    if not isinstance(value, (list, tuple)):
        _fail(op, name, what, value)
    for v in value:
        if not (isinstance(v, torch.Tensor) or (optional_items and v is None)):
            raise TypeError(
                f"torch_caffe2ops.ops.{op}: argument '{name}' must be {what}, "
                f"but it holds a {type(v).__name__}"
            )


def _int(op: str, name: str, value, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not _is_int(value):
        _fail(op, name, "an int or None" if optional else "an int", value)


def _int_list(op: str, name: str, value, optional: bool = False) -> None:
    if optional and value is None:
        return
    what = "a list of ints or None" if optional else "a list of ints"
    if not isinstance(value, (list, tuple)):
        _fail(op, name, what, value)
    for v in value:
        if not _is_int(v):
            raise TypeError(
                f"torch_caffe2ops.ops.{op}: argument '{name}' must be {what}, "
                f"but it holds a {type(v).__name__}"
            )


def _float(op: str, name: str, value) -> None:
    if not isinstance(value, _FLOAT_TYPES):
        _fail(op, name, "a float", value)


def _bool(op: str, name: str, value) -> None:
    # bool, Caffe2-style 0/1 ints, NumPy bools, symbolic bools
    if not (isinstance(value, (bool, int, torch.SymBool)) or type(value).__name__ == "bool_"):
        _fail(op, name, "a bool", value)


def _str(op: str, name: str, value, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str):
        _fail(op, name, "a str or None" if optional else "a str", value)


def _generator(op: str, name: str, value) -> None:
    if value is not None and not isinstance(value, torch.Generator):
        _fail(op, name, "a torch.Generator or None", value)


# ---------------------------------------------------------------------------------------
# batch family
# ---------------------------------------------------------------------------------------


def batch_permutation(X: Tensor, indices: Tensor) -> Tensor:
    """Reorders the rows (first-dimension slices) of ``X``: ``Y[n] = X[indices[n]]``.

    A gather along dimension 0; ``indices`` need not be a permutation (repeats are allowed).

    Args:
        X: Tensor of shape ``[N, ...]``, rank >= 1, any dtype (floating for gradients).
        indices: 1-D int32 or int64 tensor of length ``N`` with values in ``[0, N)``.

    Returns:
        Tensor shaped and typed like ``X``.

    Raises:
        RuntimeError: ``X`` is 0-d, ``indices`` is not 1-D, ``len(indices) != X.shape[0]``,
            or an index is negative or ``>= N`` (the message names the position and value).

    Differentiable in ``X``; the backward is :func:`batch_permutation_gradient`.
    Caffe2: ``BatchPermutation`` (inputs ``X, indices``; no arguments).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_permutation", "X", X)
        _tensor("batch_permutation", "indices", indices)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_permutation", X, indices)
    return torch.ops.caffe2ops.batch_permutation(X, indices)


def batch_permutation_gradient(indices: Tensor, dY: Tensor) -> Tensor:
    """Adjoint of :func:`batch_permutation`: ``dX = 0``, then ``dX[indices[n]] += dY[n]``.

    For a true permutation this is Caffe2's ``dX[indices[n]] = dY[n]``; with repeated indices
    the contributions are summed (Caffe2 produced undefined rows there).

    Args:
        indices: 1-D int32 or int64 tensor, ``len(indices) == dY.shape[0]``, values in
            ``[0, dY.shape[0])``.
        dY: gradient of the permuted tensor, shape ``[N, ...]``.

    Returns:
        Tensor shaped and typed like ``dY``.

    Raises:
        RuntimeError: ``indices`` is not 1-D, its length differs from ``dY.shape[0]``, or an
            index is out of range.

    Caffe2: ``BatchPermutationGradient`` (inputs ``indices, dY``).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_permutation_gradient", "indices", indices)
        _tensor("batch_permutation_gradient", "dY", dY)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_permutation_gradient", indices, dY)
    return torch.ops.caffe2ops.batch_permutation_gradient(indices, dY)


def batch_gather(data: Tensor, indices: Tensor, match_outer: bool = False) -> Tensor:
    """Gathers along dimension 1 of ``data`` for every batch row.

    With ``data`` of shape ``[B, M, t...]``:

    * ``match_outer=False``: ``out[b, i..., t...] = data[b, indices[i...], t...]`` and
      ``out.shape == [B] + indices.shape + data.shape[2:]`` (the same index tensor, of any
      rank, for every row; a 0-d index drops the dimension).
    * ``match_outer=True``: each batch row uses its own index row,
      ``out[b, j..., t...] = data[b, indices[b, j...], t...]``, with
      ``indices.shape[0] == B`` and ``out.shape == [B] + indices.shape[1:] + data.shape[2:]``.

    When ``M == 0`` the output has ``data``'s shape and nothing is read; when the output is
    empty, no index is checked (both as in Caffe2).

    Args:
        data: tensor of rank >= 2, any dtype (float32 or float64 for gradients).
        indices: int32 or int64 tensor with values in ``[0, M)``.
        match_outer: use one index row per batch row. Default ``False``.

    Returns:
        Tensor with ``data``'s dtype and the shape above.

    Raises:
        RuntimeError: ``data`` has rank < 2; an index is negative or ``>= M`` (message
            ``INDICES element is out of DATA bounds``); with ``match_outer`` ``indices`` is 0-d
            or ``indices.shape[0] != B``.

    Differentiable in ``data``; the backward is :func:`batch_gather_gradient`.
    Caffe2: ``BatchGather`` (inputs ``DATA, INDICES``; argument ``match_outer``, default 0).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_gather", "data", data)
        _tensor("batch_gather", "indices", indices)
        _bool("batch_gather", "match_outer", match_outer)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_gather", data, indices, match_outer)
    return torch.ops.caffe2ops.batch_gather(data, indices, match_outer)


def batch_gather_gradient(
    data: Tensor, indices: Tensor, grad: Tensor, axis: int = 1, match_outer: bool = False
) -> Tensor:
    """Gradient of :func:`batch_gather`: ``grad`` scatter-added into zeros shaped like ``data``.

    For every outer position ``p`` (the dimensions before ``axis``) and index position ``i``:
    ``ddata[p, indices[i], ...] += grad[p, i, ...]``. Repeated indices accumulate. Only the
    shape and dtype of ``data`` are used, never its values.

    Args:
        data: the forward input (rank >= 2, float32 or float64).
        indices: the forward indices (int32 or int64, values in ``[0, data.shape[axis])``).
        grad: gradient of the gathered output.
        axis: the gathered dimension; negative values count from the end. Default 1.
        match_outer: as in the forward. Default ``False``.

    Returns:
        Tensor shaped and typed like ``data``.

    Raises:
        RuntimeError: ``data`` has rank < 2 or a non-floating dtype, ``grad``'s outer
            dimensions differ from ``data``'s, an index is out of range, or (``match_outer``)
            ``axis < 1`` or the outer dimensions of ``indices`` do not match ``data``.

    Caffe2: ``BatchGatherGradient`` (arguments ``axis`` = 1, ``match_outer`` = 0).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_gather_gradient", "data", data)
        _tensor("batch_gather_gradient", "indices", indices)
        _tensor("batch_gather_gradient", "grad", grad)
        _int("batch_gather_gradient", "axis", axis)
        _bool("batch_gather_gradient", "match_outer", match_outer)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_gather_gradient", data, indices, grad, axis, match_outer)
    return torch.ops.caffe2ops.batch_gather_gradient(data, indices, grad, axis, match_outer)


def batch_sparse_to_dense(
    lengths: Tensor,
    indices: Tensor,
    values: Tensor,
    output_shape_inference: Optional[Tensor] = None,
    dense_last_dim: int = -1,
    default_value: float = 0.0,
) -> Tensor:
    """Scatters a ragged batch of (column, value) pairs into a dense ``[B, D]`` matrix.

    Row ``i`` owns the ``lengths[i]`` consecutive entries starting at
    ``offset_i = sum(lengths[:i])``. The output is filled with ``default_value`` and then, for
    each entry ``k`` of row ``i``, ``dense[i, indices[k]] = values[k]`` (in order of ``k``, so
    a repeated (row, column) pair keeps the last value).

    ``D`` is ``output_shape_inference.shape[1]`` when that tensor is given (its values and its
    first dimension are ignored), otherwise ``dense_last_dim``, which is then required.

    Args:
        lengths: 1-D int32 or int64 tensor ``[B]``, every entry >= 0.
        indices: 1-D int32 or int64 tensor ``[L]``, ``L == sum(lengths)``, values in ``[0, D)``.
        values: float16, bfloat16, float32 or float64 tensor with ``L`` elements (flattened).
        output_shape_inference: optional 2-D tensor whose second dimension gives ``D``.
        dense_last_dim: ``D`` when there is no shape tensor (must be >= 1); with a shape tensor
            it must be -1 (the default) or equal to its second dimension.
        default_value: the fill value. Default 0.0.

    Returns:
        Tensor ``[B, D]`` with ``values``' dtype.

    Raises:
        RuntimeError: ``lengths`` or ``indices`` not 1-D; a negative length;
            ``sum(lengths) != len(indices)``; ``values.numel() != len(indices)``; an index
            outside ``[0, D)``; no shape tensor and ``dense_last_dim < 1``; a shape tensor that
            is not 2-D or disagrees with ``dense_last_dim``.

    Differentiable in ``values`` (backward: :func:`batch_sparse_to_dense_gradient`).
    Caffe2: ``BatchSparseToDense`` (inputs ``lengths, indices, values[, output_shape_inference]``;
    arguments ``dense_last_dim`` = -1, ``default_value`` = 0.0).
    """
    if not torch.jit.is_scripting():
        op = "batch_sparse_to_dense"
        _tensor(op, "lengths", lengths)
        _tensor(op, "indices", indices)
        _tensor(op, "values", values)
        _tensor(op, "output_shape_inference", output_shape_inference, optional=True)
        _int(op, "dense_last_dim", dense_last_dim)
        _float(op, "default_value", default_value)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_sparse_to_dense", lengths, indices, values, output_shape_inference,
                              dense_last_dim, default_value)
    return torch.ops.caffe2ops.batch_sparse_to_dense(
        lengths, indices, values, output_shape_inference, dense_last_dim, default_value
    )


def batch_sparse_to_dense_gradient(lengths: Tensor, indices: Tensor, grad_dense: Tensor) -> Tensor:
    """Gradient of :func:`batch_sparse_to_dense` for ``values``:
    ``dvalues[k] = grad_dense[row(k), indices[k]]`` (the same computation as
    :func:`batch_dense_to_sparse`).

    Args:
        lengths: 1-D int32 or int64 ``[B]``, entries >= 0.
        indices: 1-D int32 or int64 ``[sum(lengths)]``, values in ``[0, D)``.
        grad_dense: gradient of the dense output, ``[B, D]``.

    Returns:
        1-D tensor ``[sum(lengths)]`` with ``grad_dense``'s dtype.

    Raises:
        RuntimeError: the same checks as :func:`batch_dense_to_sparse`.

    Caffe2 computed it with ``BatchDenseToSparse``; there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        _tensor("batch_sparse_to_dense_gradient", "lengths", lengths)
        _tensor("batch_sparse_to_dense_gradient", "indices", indices)
        _tensor("batch_sparse_to_dense_gradient", "grad_dense", grad_dense)
        if _func.active():  # under a torch.func transform: the composition, routed
            return _func.COMPOSITES["batch_sparse_to_dense_gradient"](lengths, indices, grad_dense)
    return torch.ops.caffe2ops.batch_sparse_to_dense_gradient(lengths, indices, grad_dense)


def batch_dense_to_sparse(lengths: Tensor, indices: Tensor, dense: Tensor) -> Tensor:
    """Reads a ragged batch of columns out of a dense matrix:
    ``values[k] = dense[row(k), indices[k]]``, where entry ``k`` belongs to row ``i`` when
    ``sum(lengths[:i]) <= k < sum(lengths[:i+1])``.

    Args:
        lengths: 1-D int32 or int64 ``[B]``, entries >= 0, ``B == dense.shape[0]``.
        indices: 1-D int32 or int64 ``[L]``, ``L == sum(lengths)``, values in ``[0, D)``.
        dense: 2-D float16, bfloat16, float32 or float64 tensor ``[B, D]``.

    Returns:
        1-D tensor ``[L]`` with ``dense``'s dtype.

    Raises:
        RuntimeError: ``lengths`` or ``indices`` not 1-D, ``dense`` not 2-D,
            ``len(lengths) != dense.shape[0]``, a negative length, ``sum(lengths) != L`` or an
            index outside ``[0, D)``.

    Differentiable in ``dense`` (backward: :func:`batch_dense_to_sparse_gradient`).
    Caffe2: ``BatchDenseToSparse`` (inputs ``lengths, indices, dense``; no arguments).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_dense_to_sparse", "lengths", lengths)
        _tensor("batch_dense_to_sparse", "indices", indices)
        _tensor("batch_dense_to_sparse", "dense", dense)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_dense_to_sparse", lengths, indices, dense)
    return torch.ops.caffe2ops.batch_dense_to_sparse(lengths, indices, dense)


def batch_dense_to_sparse_gradient(
    lengths: Tensor, indices: Tensor, grad_values: Tensor, dense: Tensor
) -> Tensor:
    """Gradient of :func:`batch_dense_to_sparse` for ``dense``: zeros shaped like ``dense``
    with ``ddense[row(k), indices[k]] = grad_values[k]``.

    This is an assignment, as in Caffe2: if a (row, column) pair repeats, the last entry
    wins instead of being summed (repeated pairs are outside the operator's contract).

    Args:
        lengths: 1-D int32 or int64 ``[B]``.
        indices: 1-D int32 or int64 ``[sum(lengths)]``.
        grad_values: gradient of the values, ``sum(lengths)`` elements.
        dense: the forward input; only its shape and dtype are used.

    Returns:
        Tensor shaped and typed like ``dense``.

    Raises:
        RuntimeError: the checks of :func:`batch_sparse_to_dense`.

    Caffe2 computed it with ``BatchSparseToDense``; there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        op = "batch_dense_to_sparse_gradient"
        _tensor(op, "lengths", lengths)
        _tensor(op, "indices", indices)
        _tensor(op, "grad_values", grad_values)
        _tensor(op, "dense", dense)
        if _func.active():  # under a torch.func transform: the composition, routed
            return _func.COMPOSITES["batch_dense_to_sparse_gradient"](lengths, indices, grad_values, dense)
    return torch.ops.caffe2ops.batch_dense_to_sparse_gradient(lengths, indices, grad_values, dense)


def batch_mat_mul(
    A: Tensor, B: Tensor, trans_a: bool = False, trans_b: bool = False, broadcast: bool = False
) -> Tensor:
    """Batched matrix product with Caffe2's shape rules.

    ``op(A) = A^T if trans_a else A`` and ``op(B) = B^T if trans_b else B`` (transposing the
    last two dimensions); then ``Y[b] = op(A)[b] @ op(B)[b]``.

    * Both at least 2-D: the trailing ``[M, K] @ [K, N]`` give ``[..., M, N]``. The batch
      dimensions are left-padded with 1s to a common length; without ``broadcast`` the padded
      batch shapes must be identical (so ``[1, M, K] @ [K, N]`` works but ``[5, M, K] @ [K, N]``
      needs ``broadcast=True``). With ``broadcast`` sizes broadcast as in NumPy, and a size 0
      broadcasts against any size (giving 0).
    * One operand 1-D: it is a vector and its ``trans_*`` flag is ignored; the result drops
      that dimension (``[K] @ [..., K, N] -> [..., N]``).
    * Both 1-D (equal length): the dot product, with shape ``[1]`` (not 0-d).

    Args:
        A: float32, float64, float16 or bfloat16 tensor.
        B: tensor with ``A``'s dtype.
        trans_a: transpose the last two dimensions of ``A``. Default ``False``.
        trans_b: transpose the last two dimensions of ``B``. Default ``False``.
        broadcast: allow differing batch dimensions. Default ``False``.

    Returns:
        Tensor with ``A``'s dtype and the shape above.

    Raises:
        RuntimeError: dtypes differ; a 0-d operand; the contracted sizes differ; batch
            dimensions differ without ``broadcast`` or cannot broadcast.

    Differentiable in ``A`` and ``B``, also with ``broadcast=True`` (backward:
    :func:`batch_mat_mul_gradient`). Caffe2: ``BatchMatMul`` (arguments ``trans_a``,
    ``trans_b``, ``broadcast``, all 0).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_mat_mul", "A", A)
        _tensor("batch_mat_mul", "B", B)
        _bool("batch_mat_mul", "trans_a", trans_a)
        _bool("batch_mat_mul", "trans_b", trans_b)
        _bool("batch_mat_mul", "broadcast", broadcast)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_mat_mul", A, B, trans_a, trans_b, broadcast)
    return torch.ops.caffe2ops.batch_mat_mul(A, B, trans_a, trans_b, broadcast)


def batch_mat_mul_gradient(
    grad_Y: Tensor,
    A: Tensor,
    B: Tensor,
    trans_a: bool = False,
    trans_b: bool = False,
    broadcast: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Gradient of :func:`batch_mat_mul`: ``(dA, dB)`` shaped like ``A`` and ``B``.

    The products Caffe2's gradient uses (for example ``dA = dY @ B^T``, ``dB = A^T @ dY``
    without transposes), summed over broadcast batch dimensions and reshaped back for 1-D
    operands, so the result is the true gradient in every case.

    Args:
        grad_Y: gradient of the product.
        A: the forward ``A``.
        B: the forward ``B``.
        trans_a: as in the forward. Default ``False``.
        trans_b: as in the forward. Default ``False``.
        broadcast: as in the forward. Default ``False``.

    Returns:
        Tuple ``(dA, dB)``.

    Raises:
        RuntimeError: the forward's shape checks, or ``grad_Y`` not shaped like the product.

    Caffe2 expressed this as two ``BatchMatMul`` ops; there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        op = "batch_mat_mul_gradient"
        _tensor(op, "grad_Y", grad_Y)
        _tensor(op, "A", A)
        _tensor(op, "B", B)
        _bool(op, "trans_a", trans_a)
        _bool(op, "trans_b", trans_b)
        _bool(op, "broadcast", broadcast)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_mat_mul_gradient", grad_Y, A, B, trans_a, trans_b, broadcast)
    return torch.ops.caffe2ops.batch_mat_mul_gradient(grad_Y, A, B, trans_a, trans_b, broadcast)


def batch_moments(X: Tensor, order: str = "NCHW") -> Tuple[Tensor, Tensor]:
    """Per-channel mean and **raw second moment** ``(E[x], E[x^2])``.

    With ``N = X.shape[0]``, ``C`` the channel dimension (``X.shape[1]`` for ``"NCHW"``,
    ``X.shape[-1]`` for ``"NHWC"``) and ``S`` the product of the remaining dimensions:
    ``mean[c] = sum(x[n, c, s]) / (N*S)`` and ``var[c] = sum(x[n, c, s]**2) / (N*S)``.
    The second output is *not* the variance (Caffe2's name "var" notwithstanding); the biased
    variance is ``var - mean**2``.

    Args:
        X: float16, bfloat16, float32 or float64 tensor of rank >= 2.
        order: ``"NCHW"``/``"nchw"`` (channels in dimension 1, the default) or
            ``"NHWC"``/``"nhwc"`` (channels last).

    Returns:
        Tuple ``(mean, var)`` of 1-D tensors ``[C]`` with ``X``'s dtype. ``C == 0`` gives empty
        outputs; no elements per channel (``N*S == 0``) gives NaN.

    Raises:
        RuntimeError: ``X`` has rank < 2, or ``order`` is not one of the four strings
            (``Unsupported storage order``).

    Differentiable in ``X`` (backward: :func:`batch_moments_gradient`).
    Caffe2: ``BatchMoments`` (argument ``order`` = ``"NCHW"``; outputs ``mu, var``).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_moments", "X", X)
        _str("batch_moments", "order", order)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_moments", X, order)
    return torch.ops.caffe2ops.batch_moments(X, order)


def batch_moments_gradient(dmu: Tensor, dvar: Tensor, X: Tensor, order: str = "NCHW") -> Tensor:
    """Gradient of :func:`batch_moments`: ``dX[n, c, s] = (dmu[c] + 2 * dvar[c] * x[n, c, s]) / (N*S)``.

    Args:
        dmu: gradient of the mean, ``[C]``.
        dvar: gradient of the second moment, ``[C]``.
        X: the forward input.
        order: as in the forward. Default ``"NCHW"``.

    Returns:
        Tensor shaped and typed like ``X``.

    Raises:
        RuntimeError: the forward's checks, or ``dmu``/``dvar`` not of shape ``[C]``.

    Caffe2: ``BatchMomentsGradient`` (inputs ``dmu, dvar, X``).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_moments_gradient", "dmu", dmu)
        _tensor("batch_moments_gradient", "dvar", dvar)
        _tensor("batch_moments_gradient", "X", X)
        _str("batch_moments_gradient", "order", order)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("batch_moments_gradient", dmu, dvar, X, order)
    return torch.ops.caffe2ops.batch_moments_gradient(dmu, dvar, X, order)


def batch_box_cox(data: Tensor, lambda1: Tensor, lambda2: Tensor, min_block_size: int = 256) -> Tensor:
    """Box-Cox transform of every column with its own parameters.

    Columns are the flattened trailing dimensions (``D = data[0].numel()``). For row ``i`` and
    column ``j``: ``t = max(x[i, j] + lambda2[j], 1e-6)``, then ``y = ln(t)`` if
    ``lambda1[j] == 0`` (exact comparison) else ``y = (t**lambda1[j] - 1) / lambda1[j]``.
    NaN inputs give NaN.

    Args:
        data: float32 or float64 tensor ``[N, ...]``, rank >= 1.
        lambda1: tensor with ``D`` elements and ``data``'s dtype (the exponents).
        lambda2: tensor with ``D`` elements and ``data``'s dtype (the shifts).
        min_block_size: only chooses Caffe2's implementation strategy; it does not change
            results. Default 256.

    Returns:
        Tensor shaped and typed like ``data``. An empty ``data`` returns an empty tensor
        without checking the lambdas (as Caffe2 does).

    Raises:
        RuntimeError: ``data`` is 0-d or not float32/float64, a lambda has the wrong number of
            elements or a different dtype.

    Not differentiable: requesting a gradient through it raises.
    Caffe2: ``BatchBoxCox`` (argument ``min_block_size`` = 256).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_box_cox", "data", data)
        _tensor("batch_box_cox", "lambda1", lambda1)
        _tensor("batch_box_cox", "lambda2", lambda2)
        _int("batch_box_cox", "min_block_size", min_block_size)
    return torch.ops.caffe2ops.batch_box_cox(data, lambda1, lambda2, min_block_size)


def batch_bucketize(float_features: Tensor, indices: Tensor, boundaries: Tensor, lengths: Tensor) -> Tensor:
    """Bucket index of selected feature columns, each against its own border list.

    ``boundaries`` is the concatenation of ``K`` border lists; list ``j`` has ``lengths[j]``
    values and applies to column ``indices[j]`` of ``float_features``. The output is
    ``out[i, j] = the smallest k with x <= border_k`` (``x = float_features[i, indices[j]]``),
    or ``lengths[j]`` when no border is >= x (also for NaN). Buckets are right-inclusive:
    a value equal to a border goes to the lower bucket. Borders are scanned in order, so they
    need not be sorted (for sorted borders this is ``torch.bucketize(x, b, right=False)``).
    Comparisons happen in ``torch.result_type(float_features, boundaries)``.

    Args:
        float_features: 2-D float32 or float64 tensor ``[N, D]``.
        indices: 1-D int32 or int64 ``[K]``, the columns to bucketize, in ``[0, D)``
            (repeats allowed).
        boundaries: 1-D floating tensor of ``sum(lengths)`` borders.
        lengths: 1-D int32 or int64 ``[K]``, number of borders per selected column, >= 0.

    Returns:
        int32 tensor ``[N, K]``.

    Raises:
        RuntimeError: ``float_features`` not 2-D; ``indices``, ``boundaries`` or ``lengths``
            not 1-D; ``len(indices) != len(lengths)``; a column index outside ``[0, D)``;
            a negative length; ``sum(lengths) != len(boundaries)``.

    Not differentiable (integer output). Caffe2: ``BatchBucketize`` (inputs in the
    order ``float_features, indices, boundaries, lengths``).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_bucketize", "float_features", float_features)
        _tensor("batch_bucketize", "indices", indices)
        _tensor("batch_bucketize", "boundaries", boundaries)
        _tensor("batch_bucketize", "lengths", lengths)
    return torch.ops.caffe2ops.batch_bucketize(float_features, indices, boundaries, lengths)


def concat_batch_mat_mul_batch_gather(indices: Tensor, inputs: List[Tensor]) -> Tensor:
    """Selected pairwise dot products of ``n`` feature tensors (DLRM-style interactions).

    For each batch row ``b`` let ``S_b[p, q] = <X_p[b], X_q[b]>`` (rows flattened). Then
    ``Y[b, j] = S_b.flatten()[indices[j]]``, that is the dot product of inputs
    ``p, q = divmod(indices[j], n)``. Equal to ``concat(inputs, axis=1, add_axis=True)``,
    then ``batch_mat_mul(C, C, trans_b=True)``, flattened, then ``batch_gather``.

    Args:
        indices: 1-D int32 or int64 ``[J]`` with values in ``[0, n*n)``.
        inputs: ``n >= 1`` float32 or float64 tensors of identical shape ``[B, ...]`` and dtype.

    Returns:
        Tensor ``[B, J]`` with the inputs' dtype.

    Raises:
        RuntimeError: no input; inputs of different shapes or dtypes; a 0-d input;
            ``indices`` not 1-D; an index outside ``[0, n*n)``.

    Differentiable (twice) with respect to the inputs, through
    :func:`concat_batch_mat_mul_batch_gather_gradient`; Caffe2 had no gradient for it, so a
    Caffe2 model could only use it for inference. Caffe2: ``ConcatBatchMatMulBatchGatherOp``
    (inputs ``indices, X_1, ..., X_n``), which Caffe2's graph optimizer produced by fusing
    that Concat, BatchMatMul, Flatten, BatchGather chain.
    """
    if not torch.jit.is_scripting():
        _tensor("concat_batch_mat_mul_batch_gather", "indices", indices)
        _tensor_list("concat_batch_mat_mul_batch_gather", "inputs", inputs)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("concat_batch_mat_mul_batch_gather", indices, inputs)
    return torch.ops.caffe2ops.concat_batch_mat_mul_batch_gather(indices, inputs)


def concat_batch_mat_mul_batch_gather_gradient(
    indices: Tensor, inputs: List[Tensor], grad: Tensor
) -> List[Tensor]:
    """Gradient of :func:`concat_batch_mat_mul_batch_gather` with respect to every input.

    With ``p, q = divmod(indices[j], n)``: ``dX_p[b] += grad[b, j] * X_q[b]`` and
    ``dX_q[b] += grad[b, j] * X_p[b]`` (both terms when ``p == q``). Equivalently
    ``dC_b = (dS_b + dS_b^T) C_b`` where ``dS_b`` scatters ``grad[b]`` into an ``n x n`` matrix.
    The CPU kernel sums each batch row in a fixed order, so results do not depend on the
    number of threads.

    Args:
        indices: 1-D int32 or int64 ``[J]`` with values in ``[0, n*n)``.
        inputs: the forward's ``n`` inputs, identical shape ``[B, ...]`` and dtype.
        grad: ``[B, J]``, the inputs' dtype and device.

    Returns:
        ``n`` tensors, each with the shape of its input.

    Raises:
        RuntimeError: the forward's errors, or ``grad`` of another shape, dtype or device.
    """
    if not torch.jit.is_scripting():
        _tensor("concat_batch_mat_mul_batch_gather_gradient", "indices", indices)
        _tensor_list("concat_batch_mat_mul_batch_gather_gradient", "inputs", inputs)
        _tensor("concat_batch_mat_mul_batch_gather_gradient", "grad", grad)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("concat_batch_mat_mul_batch_gather_gradient", indices, inputs, grad)
    return torch.ops.caffe2ops.concat_batch_mat_mul_batch_gather_gradient(indices, inputs, grad)


def batch_bucket_one_hot(data: Tensor, lengths: Tensor, boundaries: Tensor) -> Tensor:
    """One-hot bucket encoding of every column, each against its own sorted border list.

    Column ``j`` (of ``D = data[0].numel()`` flattened columns) has ``lengths[j]`` borders
    (consecutive in ``boundaries``) and an output slot of ``lengths[j] + 1`` buckets. The
    bucket is ``(lo + up) // 2`` with ``lo`` the number of borders ``< x`` and ``up`` the
    number ``<= x``: right-inclusive buckets like :func:`batch_bucketize` without ties, the
    middle bucket when ``x`` equals a run of repeated borders.

    Args:
        data: float32 or float64 tensor ``[N, ...]``, rank >= 1.
        lengths: 1-D int32 or int64 ``[D]``, every entry > 0.
        boundaries: 1-D floating tensor of ``sum(lengths)`` sorted borders per column.

    Returns:
        Tensor ``[N, sum(lengths) + D]`` of 0.0 / 1.0 with ``data``'s dtype.

    Raises:
        RuntimeError: ``data`` is 0-d; ``lengths.numel() != D``; a length <= 0;
            ``sum(lengths) != boundaries.numel()``.

    Not differentiable. Caffe2: ``BatchBucketOneHot`` (inputs ``data, lengths,
    boundaries``).
    """
    if not torch.jit.is_scripting():
        _tensor("batch_bucket_one_hot", "data", data)
        _tensor("batch_bucket_one_hot", "lengths", lengths)
        _tensor("batch_bucket_one_hot", "boundaries", boundaries)
    return torch.ops.caffe2ops.batch_bucket_one_hot(data, lengths, boundaries)


# ---------------------------------------------------------------------------------------
# concat / split family
# ---------------------------------------------------------------------------------------
#
# Axis rules shared by concat, split and split_by_lengths: give at most one of `axis` and
# `order`. Without `axis` the axis comes from `order` ("NCHW"/"nchw" -> 1, "NHWC"/"nhwc" -> 3),
# and `order` defaults to "NCHW", so the default axis is 1 (not 0 as in torch.cat).


def concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """Concatenates (or, with ``add_axis``, stacks) tensors and reports the piece sizes.

    **Returns a tuple** ``(output, split_info)``; unpack it.

    Without ``add_axis`` all inputs must match in every dimension except ``axis``; the output
    has the sum of their sizes there and ``split_info[i] = inputs[i].shape[axis]``. With
    ``add_axis`` all inputs must have identical shapes; a new dimension of size ``n`` is
    inserted at ``axis`` (which may then equal the input rank) and ``split_info`` is all ones.

    Args:
        inputs: ``n >= 1`` tensors of the same dtype and rank (any dtype).
        axis: the dimension, negative counts from the end. Default: from ``order``, i.e. 1.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        add_axis: stack instead of concatenating; needs an explicit ``axis``. Default ``False``.

    Returns:
        Tuple ``(output, split_info)``; ``split_info`` is an int32 tensor ``[n]`` on the CPU.

    Raises:
        RuntimeError: both ``axis`` and ``order`` given; ``add_axis`` without ``axis``; an
            unknown order; the axis out of range (``Axis not in input ndim range``, e.g. 1-D
            inputs with the default axis 1: pass ``axis=0``); inputs of different dtypes,
            ranks or sizes.

    Differentiable in every input (backward: :func:`concat_gradient`).
    Caffe2: ``Concat`` (arguments ``axis``, ``order`` = ``"NCHW"``, ``add_axis`` = 0; outputs
    ``concat_result, split_info``).
    """
    if not torch.jit.is_scripting():
        _tensor_list("concat", "inputs", inputs)
        _int("concat", "axis", axis, optional=True)
        _str("concat", "order", order, optional=True)
        _bool("concat", "add_axis", add_axis)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("concat", inputs, axis, order, add_axis)
    return torch.ops.caffe2ops.concat(inputs, axis, order, add_axis)


def depth_concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """Identical to :func:`concat` (Caffe2 kept ``DepthConcat`` as a backward-compatible alias).

    Args:
        inputs: as in :func:`concat`.
        axis: as in :func:`concat`.
        order: as in :func:`concat`.
        add_axis: as in :func:`concat`.

    Returns:
        Tuple ``(output, split_info)``.

    Raises:
        RuntimeError: as :func:`concat`.

    Caffe2: ``DepthConcat``.
    """
    if not torch.jit.is_scripting():
        _tensor_list("depth_concat", "inputs", inputs)
        _int("depth_concat", "axis", axis, optional=True)
        _str("depth_concat", "order", order, optional=True)
        _bool("depth_concat", "add_axis", add_axis)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("depth_concat", inputs, axis, order, add_axis)
    return torch.ops.caffe2ops.depth_concat(inputs, axis, order, add_axis)


def concat_gradient(
    grad_output: Tensor, split_info: Tensor, axis: Optional[int] = None, order: Optional[str] = None,
    add_axis: bool = False,
) -> List[Tensor]:
    """Gradient of :func:`concat`: ``grad_output`` cut back into pieces of the sizes in
    ``split_info`` (with ``add_axis``, unstacked along ``axis``).

    Args:
        grad_output: gradient of the concatenation.
        split_info: the ``split_info`` output of the forward (int tensor on the CPU).
        axis: as in the forward.
        order: as in the forward.
        add_axis: as in the forward. Default ``False``.

    Returns:
        List of ``len(split_info)`` tensors, the inputs' gradients.

    Raises:
        RuntimeError: the axis rules of :func:`concat`, or sizes that do not add up.

    Caffe2 used ``Split`` for this; there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        _tensor("concat_gradient", "grad_output", grad_output)
        _tensor("concat_gradient", "split_info", split_info)
        _int("concat_gradient", "axis", axis, optional=True)
        _str("concat_gradient", "order", order, optional=True)
        _bool("concat_gradient", "add_axis", add_axis)
        if _func.active():  # under a torch.func transform: the composition, routed
            return _func.COMPOSITES["concat_gradient"](grad_output, split_info, axis, order, add_axis)
    return torch.ops.caffe2ops.concat_gradient(grad_output, split_info, axis, order, add_axis)


def split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Cuts ``input`` into consecutive pieces along an axis.

    The piece sizes come from exactly one source: the ``split_tensor`` input, the ``split``
    list, or an equal split into ``num_outputs`` pieces (``input.shape[axis]`` must then be
    divisible by it). They must add up to ``input.shape[axis]``. With ``add_axis`` the input is
    unstacked instead: ``input.shape[axis]`` pieces, each with that dimension removed.
    ``num_outputs`` (Caffe2's number of output blobs) is inferred from the sizes when -1.

    Args:
        input: tensor of any dtype.
        split_tensor: optional 1-D int32/int64 tensor of sizes, on the CPU.
        split: optional list of sizes (each >= 0). Give at most one of ``split`` and
            ``split_tensor``.
        axis: the dimension; default from ``order``, i.e. 1.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        add_axis: unstack instead of split; needs an explicit ``axis``. Default ``False``.
        num_outputs: number of pieces; required (> 0) for an equal split. Default -1.

    Returns:
        List of fresh tensors (not views of ``input``).

    Raises:
        RuntimeError: the axis rules of :func:`concat`; both size sources given; a negative
            size; sizes that do not add up (``Sum of split dimensions do not match``); an
            equal split without ``num_outputs`` or not divisible; ``num_outputs`` disagreeing
            with the sizes.

    Differentiable in ``input`` (backward: :func:`split_gradient`, missing piece gradients
    count as zeros). Caffe2: ``Split`` (inputs ``input[, split]``; arguments ``axis``,
    ``order``, ``split``, ``add_axis``).
    """
    if not torch.jit.is_scripting():
        _tensor("split", "input", input)
        _tensor("split", "split_tensor", split_tensor, optional=True)
        _int_list("split", "split", split, optional=True)
        _int("split", "axis", axis, optional=True)
        _str("split", "order", order, optional=True)
        _bool("split", "add_axis", add_axis)
        _int("split", "num_outputs", num_outputs)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("split", input, split_tensor, [] if split is None else split, axis, order,
                              add_axis, num_outputs)
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def depth_split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Identical to :func:`split` (Caffe2's backward-compatible alias ``DepthSplit``).

    Args:
        input: as in :func:`split`.
        split_tensor: as in :func:`split`.
        split: as in :func:`split`.
        axis: as in :func:`split`.
        order: as in :func:`split`.
        add_axis: as in :func:`split`.
        num_outputs: as in :func:`split`.

    Returns:
        List of tensors.

    Raises:
        RuntimeError: as :func:`split`.

    Caffe2: ``DepthSplit``.
    """
    if not torch.jit.is_scripting():
        _tensor("depth_split", "input", input)
        _tensor("depth_split", "split_tensor", split_tensor, optional=True)
        _int_list("depth_split", "split", split, optional=True)
        _int("depth_split", "axis", axis, optional=True)
        _str("depth_split", "order", order, optional=True)
        _bool("depth_split", "add_axis", add_axis)
        _int("depth_split", "num_outputs", num_outputs)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("depth_split", input, split_tensor, [] if split is None else split, axis,
                              order, add_axis, num_outputs)
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.depth_split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def split_by_lengths(
    input: Tensor, lengths: Tensor, num_outputs: int, axis: Optional[int] = None, order: Optional[str] = None,
    use_scaling_lengths: bool = False,
) -> List[Tensor]:
    """Cuts ``input`` into ``num_outputs`` pieces whose sizes are sums of groups of ``lengths``.

    With ``m = len(lengths)`` and ``g = m // num_outputs``, piece ``i`` has size
    ``mult * sum(lengths[i*g:(i+1)*g])`` along the axis. Without ``use_scaling_lengths``
    ``mult = 1`` and ``sum(lengths)`` must equal ``input.shape[axis]``; with it,
    ``mult = input.shape[axis] / sum(lengths)`` (which must divide exactly).

    Args:
        input: tensor of any dtype.
        lengths: 1-D int32/int64 tensor, entries >= 0, length divisible by ``num_outputs``.
        num_outputs: number of pieces (>= 1).
        axis: the dimension; default from ``order``, i.e. **1**.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        use_scaling_lengths: scale the lengths to the axis size. Default ``False``.

    Returns:
        List of ``num_outputs`` fresh tensors. Their sizes depend on the values of
        ``lengths`` (data-dependent shapes under ``torch.compile``/``torch.export``).

    Raises:
        RuntimeError: the axis rules of :func:`concat`; ``len(lengths)`` not divisible by
            ``num_outputs``; a negative length; the sum not equal to (or, when scaling, not
            dividing) the axis size.

    Differentiable in ``input`` (backward: :func:`split_gradient`). Caffe2: ``SplitByLengths``
    (arguments ``axis``, ``order``, ``use_scaling_lengths``; the number of outputs was the
    number of output blobs).
    """
    if not torch.jit.is_scripting():
        op = "split_by_lengths"
        _tensor(op, "input", input)
        _tensor(op, "lengths", lengths)
        _int(op, "num_outputs", num_outputs)
        _int(op, "axis", axis, optional=True)
        _str(op, "order", order, optional=True)
        _bool(op, "use_scaling_lengths", use_scaling_lengths)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("split_by_lengths", input, lengths, num_outputs, axis, order,
                              use_scaling_lengths)
    return torch.ops.caffe2ops.split_by_lengths(input, lengths, num_outputs, axis, order, use_scaling_lengths)


def split_gradient(grad_outputs: List[Optional[Tensor]], split_sizes: List[int], axis: int, add_axis: bool = False) -> Tensor:
    """Gradient of :func:`split`, :func:`depth_split` and :func:`split_by_lengths`.

    Concatenates the pieces' gradients along ``axis`` (stacks them with ``add_axis``); a
    missing gradient (``None``) counts as zeros of its piece's size.

    Args:
        grad_outputs: one gradient or ``None`` per piece; at least one must be a tensor.
        split_sizes: the resolved piece sizes.
        axis: the non-negative split dimension of the forward input.
        add_axis: the pieces were unstacked. Default ``False``.

    Returns:
        The input's gradient.

    Raises:
        RuntimeError: no gradient given, or sizes inconsistent with the gradients.

    Caffe2 used ``Concat`` for this (and skipped missing gradients, giving a wrongly shaped
    result); there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        _tensor_list("split_gradient", "grad_outputs", grad_outputs, optional_items=True)
        _int_list("split_gradient", "split_sizes", split_sizes)
        _int("split_gradient", "axis", axis)
        _bool("split_gradient", "add_axis", add_axis)
    return torch.ops.caffe2ops.split_gradient(grad_outputs, split_sizes, axis, add_axis)


# ---------------------------------------------------------------------------------------
# dropout family
# ---------------------------------------------------------------------------------------


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
        _tensor("dropout", "X", X)
        _float("dropout", "ratio", ratio)
        _bool("dropout", "is_test", is_test)
        _generator("dropout", "generator", generator)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("dropout", X, ratio, is_test, generator)
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
        _tensor("dropout_gradient", "dY", dY)
        _tensor("dropout_gradient", "mask", mask, optional=True)
        _float("dropout_gradient", "ratio", ratio)
        _bool("dropout_gradient", "is_test", is_test)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("dropout_gradient", dY, mask, ratio, is_test)
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
        _tensor("cudnn_dropout", "X", X)
        _float("cudnn_dropout", "ratio", ratio)
        _bool("cudnn_dropout", "is_test", is_test)
        _generator("cudnn_dropout", "generator", generator)
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
        _tensor("cudnn_dropout_gradient", "dY", dY)
        _tensor("cudnn_dropout_gradient", "reserve_space", reserve_space)
        _float("cudnn_dropout_gradient", "ratio", ratio)
        _bool("cudnn_dropout_gradient", "is_test", is_test)
    return torch.ops.caffe2ops.cudnn_dropout_gradient(dY, reserve_space, ratio, is_test)


# ---------------------------------------------------------------------------------------
# sparse normalize family
# ---------------------------------------------------------------------------------------


def _sparse_normalize_checks(op: str, param, indices, grad, use_max_norm, norm) -> None:
    _tensor(op, "param", param)
    _tensor(op, "indices", indices)
    _tensor(op, "grad", grad, optional=True)
    _bool(op, "use_max_norm", use_max_norm)
    _float(op, "norm", norm)


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
        _sparse_normalize_checks("sparse_normalize", param, indices, grad, use_max_norm, norm)
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
        _sparse_normalize_checks("sparse_normalize_", param, indices, grad, use_max_norm, norm)
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
        _sparse_normalize_checks("float16_sparse_normalize", param, indices, grad, use_max_norm, norm)
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
        _sparse_normalize_checks("float16_sparse_normalize_", param, indices, grad, use_max_norm, norm)
    return torch.ops.caffe2ops.float16_sparse_normalize_(param, indices, grad, use_max_norm, norm)


# ---------------------------------------------------------------------------------------
# margin rank family
# ---------------------------------------------------------------------------------------


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
        _tensor("margin_ranking_criterion", "X1", X1)
        _tensor("margin_ranking_criterion", "X2", X2)
        _tensor("margin_ranking_criterion", "Y", Y)
        _float("margin_ranking_criterion", "margin", margin)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("margin_ranking_criterion", X1, X2, Y, margin)
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
        op = "margin_ranking_criterion_gradient"
        _tensor(op, "X1", X1)
        _tensor(op, "X2", X2)
        _tensor(op, "Y", Y)
        _tensor(op, "dLoss", dLoss)
        _float(op, "margin", margin)
        if _func.active():  # under a torch.func transform: the autograd.Function
            return _func.call("margin_ranking_criterion_gradient", X1, X2, Y, dLoss, margin)
    return torch.ops.caffe2ops.margin_ranking_criterion_gradient(X1, X2, Y, dLoss, margin)


# Imported last: _func's formulas call the wrappers above (it imports this module).
from . import _func  # noqa: E402
