"""The batch family (csrc/batch/): permutation, gather, sparse <-> dense, matmul, moments,
Box-Cox, bucketize, the fused DLRM interaction. See docs/operators/batch.md.
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _func
from ._call import C2 as _C2, calls as _calls


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
        return _calls.batch_permutation(X, indices)
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
        return _calls.batch_permutation_gradient(indices, dY)
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
        return _calls.batch_gather(data, indices, match_outer)
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
        return _calls.batch_gather_gradient(data, indices, grad, axis, match_outer)
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
        return _calls.batch_sparse_to_dense(lengths, indices, values, output_shape_inference, dense_last_dim, default_value)
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
        return _calls.batch_sparse_to_dense_gradient(lengths, indices, grad_dense)
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
        return _calls.batch_dense_to_sparse(lengths, indices, dense)
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
        return _calls.batch_dense_to_sparse_gradient(lengths, indices, grad_values, dense)
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
        return _calls.batch_mat_mul(A, B, trans_a, trans_b, broadcast)
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
        return _calls.batch_mat_mul_gradient(grad_Y, A, B, trans_a, trans_b, broadcast)
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
        return _calls.batch_moments(X, order)
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
        return _calls.batch_moments_gradient(dmu, dvar, X, order)
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
        return _calls.batch_box_cox(data, lambda1, lambda2, min_block_size)
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
        return _calls.batch_bucketize(float_features, indices, boundaries, lengths)
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
        return _calls.concat_batch_mat_mul_batch_gather(indices, inputs)
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
        return _calls.concat_batch_mat_mul_batch_gather_gradient(indices, inputs, grad)
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
        return _calls.batch_bucket_one_hot(data, lengths, boundaries)
    return torch.ops.caffe2ops.batch_bucket_one_hot(data, lengths, boundaries)


# ---------------------------------------------------------------------------------------
# torch.func: one Function per differentiable op and per non-composite gradient op (the
# formulas of the C++ autograd of this family, over the wrappers above so that nested
# transforms route again). See torch_caffe2ops/_func.py for the fields of a Formula.
# ---------------------------------------------------------------------------------------

_z = _func.zero_if_none


def _pair_products(indices: Tensor, xs: Sequence[Tensor], ts: Sequence[Tensor]) -> Tensor:
    """d/dt of Y[b, j] = <X_p[b], X_q[b]> along ts: <T_p, X_q> + <X_p, T_q>, (p, q) =
    divmod(indices[j], n). The same ATen formula as the C++ double backward of
    concat_batch_mat_mul_batch_gather_gradient with respect to grad."""
    B, n = xs[0].shape[0], len(xs)
    E = int(torch.Size(xs[0].shape[1:]).numel())
    C = torch.stack([x.reshape(B, E) for x in xs], 1)
    T = torch.stack([t.reshape(B, E) for t in ts], 1)
    S = torch.bmm(T, C.transpose(1, 2))
    return (S + S.transpose(1, 2)).reshape(B, n * n).index_select(1, indices.long())


def _gather_back(gg: Tensor, indices: Tensor, grad_shape: List[int], axis: int, match_outer: bool,
                 data_dim: int) -> Tensor:
    """Derivative of batch_gather_gradient along ggData: batch_gather of ggData viewed as
    [P, M, inner] at `axis` (the C++ BatchGatherGradientFn formula)."""
    axis = axis + data_dim if axis < 0 else axis
    if gg.numel() == 0:
        return gg.new_zeros(grad_shape)
    P = int(torch.Size(gg.shape[:axis]).numel())
    inner = int(torch.Size(gg.shape[axis + 1:]).numel())
    view = gg.reshape(P, gg.shape[axis], inner)
    idx = indices.reshape(P, -1) if match_outer else indices.reshape(-1)
    return batch_gather(view, idx, match_outer).reshape(grad_shape)


def _mm_grad_backward(a: List[Any], ggA: Tensor, ggB: Tensor) -> Tuple[Any, ...]:
    # batch_mat_mul_gradient(g, A, B) is the VJP of the bilinear f(A, B): along (ggA, ggB)
    #   d g = f(ggA, B) + f(A, ggB);  dA = grad_A of f(., ggB) at g;  dB = grad_B of f(ggA, .) at g,
    # and grad_A depends only on the second operand, grad_B only on the first: one call.
    g, A, B, ta, tb, bc = a
    d_g = batch_mat_mul(ggA, B, ta, tb, bc) + batch_mat_mul(A, ggB, ta, tb, bc)
    dA, dB = batch_mat_mul_gradient(g, ggA, ggB, ta, tb, bc)
    return (d_g, dA, dB, None, None, None)


def _mm_grad_jvp(a: List[Any], t: List[Any]) -> Tuple[Tensor, Tensor]:
    g, A, B, ta, tb, bc = a
    x = batch_mat_mul_gradient(_z(t[0], g), A, B, ta, tb, bc)
    y = batch_mat_mul_gradient(g, _z(t[1], A), _z(t[2], B), ta, tb, bc)
    return (x[0] + y[0], x[1] + y[1])


def _moments_grad_backward(a: List[Any], gg: Tensor) -> Tuple[Any, ...]:
    # dX = (dmu[c] + 2 dvar[c] X) / N per channel: along ggX, d dmu = mean_c(ggX),
    # d dvar = 2 mean_c(X ggX), d X = 2 dvar[c] ggX / N.
    dmu, dvar, X, order = a
    return (batch_moments(gg, order)[0], 2 * batch_moments(X * gg, order)[0],
            batch_moments_gradient(torch.zeros_like(dmu), dvar, gg, order), None)


def _moments_grad_jvp(a: List[Any], t: List[Any]) -> Tensor:
    dmu, dvar, X, order = a
    return (batch_moments_gradient(_z(t[0], dmu), _z(t[1], dvar), X, order)
            + batch_moments_gradient(torch.zeros_like(dmu), dvar, _z(t[2], X), order))

_func.register({
    "batch_permutation": _func.Formula(
        _C2.batch_permutation,
        lambda a, g: (batch_permutation_gradient(a[1], g), None),
        lambda a, t: batch_permutation(t[0], a[1])),
    "batch_permutation_gradient": _func.Formula(  # linear in dY; its derivative is the forward op
        _C2.batch_permutation_gradient,
        lambda a, g: (None, batch_permutation(g, a[0])),
        lambda a, t: batch_permutation_gradient(a[0], t[1])),
    "batch_gather": _func.Formula(
        _C2.batch_gather,
        lambda a, g: (batch_gather_gradient(a[0], a[1], g, 1, a[2]), None, None),
        lambda a, t: batch_gather(t[0], a[1], a[2])),
    "batch_gather_gradient": _func.Formula(  # linear in grad; reads only data's shape
        _C2.batch_gather_gradient,
        lambda a, g: (None, None, _gather_back(g, a[1], list(a[2].shape), a[3], a[4], a[0].dim()),
                      None, None),
        lambda a, t: batch_gather_gradient(a[0], a[1], t[2], a[3], a[4])),
    "batch_sparse_to_dense": _func.Formula(  # linear in values; the tangent has default 0
        _C2.batch_sparse_to_dense,
        lambda a, g: (None, None, batch_sparse_to_dense_gradient(a[0], a[1], g).reshape(a[2].shape),
                      None, None, None),
        lambda a, t: batch_sparse_to_dense(a[0], a[1], t[2], a[3], a[4], 0.0)),
    "batch_dense_to_sparse": _func.Formula(
        _C2.batch_dense_to_sparse,
        lambda a, g: (None, None, batch_dense_to_sparse_gradient(a[0], a[1], g, a[2])),
        lambda a, t: batch_dense_to_sparse(a[0], a[1], t[2])),
    "batch_mat_mul": _func.Formula(  # bilinear
        _C2.batch_mat_mul,
        lambda a, g: (*batch_mat_mul_gradient(g, *a), None, None, None),
        lambda a, t: (batch_mat_mul(_z(t[0], a[0]), a[1], *a[2:])
                      + batch_mat_mul(a[0], _z(t[1], a[1]), *a[2:]))),
    "batch_mat_mul_gradient": _func.Formula(_C2.batch_mat_mul_gradient, _mm_grad_backward, _mm_grad_jvp),
    "batch_moments": _func.Formula(  # mu = E[x], var = E[x^2] (Caffe2's raw second moment)
        _C2.batch_moments,
        lambda a, dmu, dvar: (batch_moments_gradient(dmu, dvar, a[0], a[1]), None),
        lambda a, t: (batch_moments(t[0], a[1])[0], 2 * batch_moments(a[0] * t[0], a[1])[0])),
    "batch_moments_gradient": _func.Formula(_C2.batch_moments_gradient, _moments_grad_backward, _moments_grad_jvp),
    "concat_batch_mat_mul_batch_gather": _func.Formula(  # Function args: (indices, *inputs)
        lambda indices, *xs: _C2.concat_batch_mat_mul_batch_gather(indices, list(xs)),
        lambda a, g: (None, *concat_batch_mat_mul_batch_gather_gradient(a[0], list(a[1:]), g)),
        lambda a, t: _pair_products(a[0], a[1:], [_z(ti, x) for ti, x in zip(t[1:], a[1:])]),
        pack=lambda indices, inputs: (indices, *inputs)),
    # Function args: (indices, grad, *inputs). Linear in the inputs for a fixed grad (dC =
    # (dS + dS^T) C), and linear in grad.
    "concat_batch_mat_mul_batch_gather_gradient": _func.Formula(
        lambda indices, grad, *xs: tuple(_C2.concat_batch_mat_mul_batch_gather_gradient(indices, list(xs), grad)),
        lambda a, *gg: (None, _pair_products(a[0], a[2:], gg),
                        *concat_batch_mat_mul_batch_gather_gradient(a[0], list(gg), a[1])),
        lambda a, t: tuple(
            u + v for u, v in zip(
                concat_batch_mat_mul_batch_gather_gradient(
                    a[0], [_z(ti, x) for ti, x in zip(t[2:], a[2:])], a[1]),
                concat_batch_mat_mul_batch_gather_gradient(a[0], list(a[2:]), _z(t[1], a[1])))),
        pack=lambda indices, inputs, grad: (indices, grad, *inputs), unpack=list),
})

# The composite gradient ops: the C++ compositions, over the routed wrappers.
_func.register_composites({
    "batch_sparse_to_dense_gradient": lambda lengths, indices, grad_dense: batch_dense_to_sparse(
        lengths, indices, grad_dense),
    "batch_dense_to_sparse_gradient": lambda lengths, indices, grad_values, dense: batch_sparse_to_dense(
        lengths, indices, grad_values, dense, -1, 0.0),
})
