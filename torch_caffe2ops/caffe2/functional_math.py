"""Caffe2 semantics of the math operators (comparisons, reductions, selections, norms) that
ranking nets use, as TorchScript-compatible tensor functions.

Argument normalisation happens in the converters (:mod:`.converters.math`); these functions
only do what depends on the input's rank or values. No ``from __future__ import annotations``:
TorchScript reads the annotations as objects.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import legacy_broadcast


def _show(values: Tensor) -> str:
    """Integer values for an error message."""
    items: List[int] = values.reshape(-1).to(torch.int64).tolist()
    return str(items)


def _prod(sizes: List[int]) -> int:
    p = 1
    for s in sizes:
        p *= s
    return p


def _canonical(axis: int, ndim: int, op: str) -> int:
    if axis < -ndim or axis >= ndim:
        raise RuntimeError(f"{op}: axis {axis} is out of range for an input of rank {ndim}")
    return axis + ndim if axis < 0 else axis


# --- comparisons and logic with Caffe2's legacy broadcast (broadcast=1) ---------------------------


def eq(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.eq(A, legacy_broadcast(A, B, axis))


def ne(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.ne(A, legacy_broadcast(A, B, axis))


def lt(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.lt(A, legacy_broadcast(A, B, axis))


def le(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.le(A, legacy_broadcast(A, B, axis))


def gt(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.gt(A, legacy_broadcast(A, B, axis))


def ge(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.ge(A, legacy_broadcast(A, B, axis))


def logical_and(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.logical_and(A, legacy_broadcast(A, B, axis))


def logical_or(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.logical_or(A, legacy_broadcast(A, B, axis))


def logical_xor(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    return torch.logical_xor(A, legacy_broadcast(A, B, axis))


def pow_tensor(A: Tensor, B: Tensor, broadcast: bool = False, axis: int = -1) -> Tensor:
    """Pow with the exponent as a tensor: same shapes, or Caffe2's legacy broadcast."""
    if broadcast:
        B = legacy_broadcast(A, B, axis)
    elif A.shape != B.shape:
        raise RuntimeError(
            f"Pow: exponent of shape {list(B.shape)} does not match base of shape {list(A.shape)} "
            "(set broadcast=1 to broadcast it)"
        )
    return torch.pow(A, B)


def where(C: Tensor, X: Tensor, Y: Tensor, broadcast_on_rows: bool = False) -> Tensor:
    """X where C else Y; C has X's shape, or (broadcast_on_rows) one entry per row of X."""
    if X.shape != Y.shape:
        raise RuntimeError(f"Where: X of shape {list(X.shape)} and Y of shape {list(Y.shape)} differ")
    if broadcast_on_rows:
        if C.dim() != 1 or C.size(0) != X.size(0):
            raise RuntimeError(
                f"Where: with broadcast_on_rows the condition must be 1-D of size {X.size(0)}, got {list(C.shape)}"
            )
        C = C.reshape([C.size(0)] + [1] * (X.dim() - 1))
    elif C.shape != X.shape:
        raise RuntimeError(f"Where: condition of shape {list(C.shape)} does not match X of shape {list(X.shape)}")
    return torch.where(C.to(torch.bool), X, Y)


# --- n-ary elementwise -------------------------------------------------------------------------


def _same_shapes(inputs: List[Tensor], op: str) -> None:
    for i in range(1, len(inputs)):
        if inputs[i].shape != inputs[0].shape:
            raise RuntimeError(
                f"{op}: input {i} has shape {list(inputs[i].shape)}, input 0 has {list(inputs[0].shape)}"
            )


def max_inputs(inputs: List[Tensor]) -> Tensor:
    _same_shapes(inputs, "Max")
    out = inputs[0]
    for i in range(1, len(inputs)):
        out = torch.maximum(out, inputs[i])
    return out.clone() if len(inputs) == 1 else out


def min_inputs(inputs: List[Tensor]) -> Tensor:
    _same_shapes(inputs, "Min")
    out = inputs[0]
    for i in range(1, len(inputs)):
        out = torch.minimum(out, inputs[i])
    return out.clone() if len(inputs) == 1 else out


def mean_inputs(inputs: List[Tensor]) -> Tensor:
    _same_shapes(inputs, "Mean")
    out = inputs[0]
    for i in range(1, len(inputs)):
        out = out + inputs[i]
    if len(inputs) == 1:
        return out.clone()
    return out / float(len(inputs))


# --- unary -------------------------------------------------------------------------------------


def replace_nan(X: Tensor, value: float) -> Tensor:
    return torch.where(torch.isnan(X), torch.full_like(X, value), X)


def cube(X: Tensor) -> Tensor:
    return X * X * X


def sqr(X: Tensor) -> Tensor:
    return X * X


# --- products and norms ------------------------------------------------------------------------


def dot_product(X: Tensor, Y: Tensor) -> Tensor:
    """Row-wise dot product: [N] from two same-shaped tensors whose dim 0 is N (a 1-D pair
    gives the elementwise product)."""
    if X.shape != Y.shape:
        raise RuntimeError(f"DotProduct: X of shape {list(X.shape)} and Y of shape {list(Y.shape)} differ")
    if X.dim() == 0:
        return (X * Y).reshape([1])
    if X.dim() == 1:
        return X * Y
    return (X * Y).flatten(1).sum(1)


def matmul(A: Tensor, B: Tensor, axis_a: int = 1, axis_b: int = 1, trans_a: bool = False, trans_b: bool = False) -> Tensor:
    """2-D product of A and B flattened at axis_a / axis_b (each optionally transposed)."""
    ax_a = _canonical(axis_a, A.dim(), "MatMul")
    ax_b = _canonical(axis_b, B.dim(), "MatMul")
    A2 = A.reshape(_prod(A.shape[:ax_a]), _prod(A.shape[ax_a:]))
    B2 = B.reshape(_prod(B.shape[:ax_b]), _prod(B.shape[ax_b:]))
    if trans_a:
        A2 = A2.t()
    if trans_b:
        B2 = B2.t()
    if A2.size(1) != B2.size(0):
        raise RuntimeError(
            f"MatMul: inner dimensions differ: A is {list(A2.shape)} and B is {list(B2.shape)} after flattening"
            + (" and transposing" if trans_a or trans_b else "")
        )
    return torch.mm(A2, B2)


def lp_norm(X: Tensor, p: int, average: bool) -> Tensor:
    """[1]: sum |x| (p=1) or sum x^2 (p=2, no square root), divided by the size if average."""
    if p == 1:
        total = X.abs().sum()
    else:
        total = (X * X).sum()
    if average:
        total = total / X.numel()
    return total.reshape([1])


def rms_norm(X: Tensor, gamma: Tensor, beta: Tensor, axis: int = 1, eps: float = 0.0) -> Tuple[Tensor, Tensor]:
    """(Y, rrms): rrms = 1 / sqrt(mean(x^2 over dims from axis) + eps), shaped X.shape[:axis];
    Y = x * rrms * gamma + beta."""
    if X.dim() < 2:
        raise RuntimeError(f"RMSNorm requires input dim >= 2, got {X.dim()}")
    ax = _canonical(axis, X.dim(), "RMSNorm")
    n = _prod(X.shape[ax:])
    if gamma.numel() != n or beta.numel() != n:
        raise RuntimeError(
            f"RMSNorm: gamma ({gamma.numel()}) and beta ({beta.numel()}) must have {n} elements"
        )
    X2 = X.reshape(_prod(X.shape[:ax]), n)
    rrms = torch.rsqrt((X2 * X2).mean(1) + eps)
    Y = X2 * rrms.unsqueeze(1) * gamma.reshape(1, n) + beta.reshape(1, n)
    return Y.reshape(X.shape), rrms.reshape(X.shape[:ax])


# --- reductions --------------------------------------------------------------------------------


def _axes(X: Tensor, axes: List[int], op: str) -> List[int]:
    if len(axes) == 0:
        return list(range(X.dim()))
    out: List[int] = []
    for a in axes:
        c = _canonical(a, X.dim(), op)
        if c in out:
            raise RuntimeError(f"{op}: axis {a} is listed twice in axes {axes}")
        out.append(c)
    return out


def reduce_sum(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.sum(X, _axes(X, axes, "ReduceSum"), keepdims).to(X.dtype)


def reduce_mean(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.mean(X, _axes(X, axes, "ReduceMean"), keepdims)


def reduce_max(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.amax(X, _axes(X, axes, "ReduceMax"), keepdims)


def reduce_min(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.amin(X, _axes(X, axes, "ReduceMin"), keepdims)


def reduce_l1(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.sum(X.abs(), _axes(X, axes, "ReduceL1"), keepdims).to(X.dtype)


def reduce_l2(X: Tensor, axes: List[int], keepdims: bool) -> Tensor:
    return torch.sqrt(torch.sum(X * X, _axes(X, axes, "ReduceL2"), keepdims))


def _front_back(X: Tensor, num_reduce_dim: int, front: bool, op: str) -> Tuple[Tensor, List[int]]:
    """X as [reduced, kept] (front) or [kept, reduced] (back), and the output shape."""
    if num_reduce_dim < 0 or num_reduce_dim > X.dim():
        raise RuntimeError(f"{op}: num_reduce_dim {num_reduce_dim} is outside [0, {X.dim()}] for this input")
    if front:
        kept = list(X.shape[num_reduce_dim:])
        return X.reshape(_prod(X.shape[:num_reduce_dim]), _prod(kept)), kept
    kept = list(X.shape[: X.dim() - num_reduce_dim])
    return X.reshape(_prod(kept), _prod(X.shape[X.dim() - num_reduce_dim :])).t(), kept


def _lengths_mask(X2: Tensor, lengths: Tensor, num_reduce_dim: int, op: str) -> Tuple[Tensor, Tensor]:
    """(mask [reduced, kept] of the entries each column keeps, lengths as int64)."""
    if num_reduce_dim != 1:
        raise RuntimeError(f"{op}: given lengths, num_reduce_dim must be 1, got {num_reduce_dim}")
    lens = lengths.reshape(-1).to(torch.int64).to(X2.device)
    if lens.numel() != X2.size(1):
        raise RuntimeError(f"{op}: {lens.numel()} lengths for a batch of {X2.size(1)}")
    if lens.numel() > 0 and bool(((lens < 0) | (lens > X2.size(0))).any()):
        raise RuntimeError(f"{op}: every length must be in [0, {X2.size(0)}], got {_show(lens)}")
    mask = torch.arange(X2.size(0), device=X2.device).unsqueeze(1) < lens.unsqueeze(0)
    return mask, lens


def reduce_front_back_sum(
    X: Tensor, lengths: Optional[Tensor], num_reduce_dim: int, front: bool, mean: bool, op: str
) -> Tensor:
    """ReduceFront/BackSum and Mean: sum (mean) over the first/last num_reduce_dim dims, or with
    lengths over the first lengths[i] entries of each column. As in Caffe2, a column of length 0
    gives its first entry (sum) or that entry divided by 0 (mean), and an empty input zeros."""
    X2, kept = _front_back(X, num_reduce_dim, front, op)
    if X2.numel() == 0:
        return torch.zeros(kept, dtype=X.dtype, device=X.device)
    if lengths is None:
        out = X2.sum(0).to(X.dtype)
        if mean:
            out = _divide(out, X2.size(0))
        return out.reshape(kept)
    mask, lens = _lengths_mask(X2, lengths, num_reduce_dim, op)
    total = torch.where(mask, X2, torch.zeros_like(X2)).sum(0).to(X.dtype)
    total = torch.where(lens == 0, X2[0], total)
    if mean:
        if X.is_floating_point():
            total = total / lens.to(X.dtype)
        else:
            total = torch.div(total, lens, rounding_mode="trunc").to(X.dtype)
    return total.reshape(kept)


def _divide(x: Tensor, n: int) -> Tensor:
    if x.is_floating_point():
        return x / n
    return torch.div(x, n, rounding_mode="trunc")


def reduce_front_back_max(X: Tensor, lengths: Optional[Tensor], num_reduce_dim: int, front: bool, op: str) -> Tensor:
    """ReduceFront/BackMax; with lengths the max of the first lengths[i] entries (a column of
    length 0 gives its first entry, as in Caffe2); an empty input gives zeros."""
    X2, kept = _front_back(X, num_reduce_dim, front, op)
    if X2.numel() == 0:
        return torch.zeros(kept, dtype=X.dtype, device=X.device)
    if lengths is None:
        return X2.amax(0).reshape(kept)
    mask, lens = _lengths_mask(X2, lengths, num_reduce_dim, op)
    low = torch.full_like(X2, float("-inf"))
    out = torch.where(mask, X2, low).amax(0)
    return torch.where(lens == 0, X2[0], out).reshape(kept)


# --- selection ---------------------------------------------------------------------------------


def top_k(X: Tensor, k: int, axis: int = -1) -> Tuple[Tensor, Tensor, Tensor]:
    """(values, indices int64, flattened indices int64) of the k largest entries along ``axis``,
    largest first, a tie going to the lower index. Where k exceeds the axis, the rest is
    value 0 and index -1."""
    ax = X.dim() - 1 if axis == -1 else axis
    if ax < 0 or ax >= X.dim():
        raise RuntimeError(f"TopK: axis {axis} is out of range for an input of rank {X.dim()}")
    n = X.size(ax)
    m = k if k < n else n
    values, indices = torch.sort(X, dim=ax, descending=True, stable=True)
    values = values.narrow(ax, 0, m)
    indices = indices.narrow(ax, 0, m)
    if m < k:
        pad_shape = list(X.shape)
        pad_shape[ax] = k - m
        values = torch.cat([values, torch.zeros(pad_shape, dtype=X.dtype, device=X.device)], ax)
        indices = torch.cat([indices, torch.full(pad_shape, -1, dtype=torch.int64, device=X.device)], ax)
    # flat index = ((outer * n) + index) * inner + inner_position
    inner = _prod(X.shape[ax + 1 :])
    outer = torch.arange(_prod(X.shape[:ax]), device=X.device, dtype=torch.int64)
    outer = outer.reshape(list(X.shape[:ax]) + [1] * (X.dim() - ax))
    inner_pos = torch.arange(inner, device=X.device, dtype=torch.int64).reshape(list(X.shape[ax + 1 :]))
    flat = (outer * n + indices) * inner + inner_pos
    flat = torch.where(indices < 0, torch.full_like(flat, -1), flat)
    return values, indices, flat.reshape(-1)


def arg_max(X: Tensor, axis: int = -1, keepdims: bool = True) -> Tensor:
    ax = X.dim() - 1 if axis == -1 else axis
    if ax < 0 or ax >= X.dim():
        raise RuntimeError(f"ArgMax: axis {axis} is out of range for an input of rank {X.dim()}")
    return torch.argmax(X, ax, keepdims)


def arg_min(X: Tensor, axis: int = -1, keepdims: bool = True) -> Tensor:
    ax = X.dim() - 1 if axis == -1 else axis
    if ax < 0 or ax >= X.dim():
        raise RuntimeError(f"ArgMin: axis {axis} is out of range for an input of rank {X.dim()}")
    return torch.argmin(X, ax, keepdims)


# --- shapes ------------------------------------------------------------------------------------


def slice_dims(X: Tensor, starts: List[int], ends: List[int]) -> Tensor:
    """Caffe2's Slice: dims past len(starts) are kept whole; a negative start/end counts from
    one past the end (-1 is the end); values past the end are clipped; at most one dim may
    actually be cut."""
    if len(starts) != len(ends):
        raise RuntimeError(f"Slice: {len(starts)} starts but {len(ends)} ends")
    if len(starts) > X.dim():
        raise RuntimeError(f"Slice: {len(starts)} starts for an input of rank {X.dim()}")
    out = X
    cut = -1
    for i in range(len(starts)):
        size = X.size(i)
        if size == 0:
            continue
        start = starts[i]
        end = ends[i]
        if start < 0:
            start = size + 1 + start
        if end < 0:
            end = size + 1 + end
        if start > size:
            start = size
        if end > size:
            end = size
        if start < 0 or end < 0 or end < start:
            raise RuntimeError(
                f"Slice: dim {i} of size {size}: start {starts[i]} and end {ends[i]} give an empty or reversed range"
            )
        if start > 0 or end < size:
            if cut != -1:
                raise RuntimeError("Slice: only one dimension can be sliced (Caffe2's limit)")
            cut = i
            out = out.narrow(i, start, end - start)
    return out if cut != -1 else out.clone()


def slice_from_tensors(X: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """Slice with starts/ends in 1-D integer tensors (read on the host, as Caffe2 does)."""
    if starts.dim() != 1 or ends.dim() != 1:
        raise RuntimeError("Slice: starts and ends must be 1-D")
    s: List[int] = starts.tolist()
    e: List[int] = ends.tolist()
    return slice_dims(X, s, e)


def tile(X: Tensor, tiles: int, axis: int) -> Tensor:
    """X repeated ``tiles`` times along ``axis`` (whole blocks, like numpy.tile)."""
    ax = _canonical(axis, X.dim(), "Tile")
    if tiles < 0:
        raise RuntimeError(f"Tile: tiles must be non-negative, got {tiles}")
    reps = [1] * X.dim()
    reps[ax] = tiles
    return X.repeat(reps)


def tile_from_tensors(X: Tensor, tiles: Tensor, axis: Optional[Tensor], default_axis: int) -> Tensor:
    if tiles.dim() != 1 or tiles.numel() != 1:
        raise RuntimeError(f"Tile: input tiles should be a vector of size 1, got shape {list(tiles.shape)}")
    t = int(tiles[0].item())
    a = default_axis
    if axis is not None:
        if axis.dim() != 1 or axis.numel() != 1:
            raise RuntimeError(f"Tile: input axis should be a vector of size 1, got shape {list(axis.shape)}")
        a = int(axis[0].item())
    return tile(X, t, a)


def shape(X: Tensor, axes: List[int]) -> Tensor:
    """X's shape (or the listed dims of it) as a 1-D int64 tensor."""
    if len(axes) == 0:
        return torch.tensor(X.shape, dtype=torch.int64)
    dims: List[int] = []
    for a in axes:
        if a < 0 or a >= X.dim():
            raise RuntimeError(f"Shape: axis {a} is out of range for an input of rank {X.dim()}")
        dims.append(X.size(a))
    return torch.tensor(dims, dtype=torch.int64)


def normalize(X: Tensor, axis: int = -1) -> Tensor:
    """X / max(||X||_2 along axis, 1e-12)."""
    return F.normalize(X, 2.0, _canonical(axis, X.dim(), "Normalize"), 1e-12)
