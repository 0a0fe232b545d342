"""Caffe2 semantics of the core operators, as plain tensor functions.

The converters emit calls to these functions, so an imported net's generated code reads
``fc(data, fc1_w, fc1_b, 1, 1)`` rather than a page of reshapes. Every function is
TorchScript-compatible (``torch.jit.script`` of an imported module compiles them) and traces
through ``torch.export``/``torch.compile``; none of them reads tensor values unless Caffe2's
operator does (Reshape/ConstantFill with a shape tensor).

This module deliberately has no ``from __future__ import annotations``: TorchScript reads
the annotations as objects.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import functional_quantized as _fq


def canonical_axis(axis: int, ndim: int) -> int:
    """Caffe2's canonical_axis_index: -ndim <= axis < ndim, negative counts from the end."""
    if axis < -ndim or axis >= ndim:
        raise RuntimeError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    if axis < 0:
        return axis + ndim
    return axis


def _prod(sizes: List[int]) -> int:
    p = 1
    for s in sizes:
        p *= s
    return p


# --- FC / FCTransposed --------------------------------------------------------------------


def fc(X: Tensor, W: Tensor, b: Tensor, axis: int = 1, axis_w: int = 1) -> Tensor:
    """Y = X2 @ W2^T + b with X2 = X flattened to [prod(dims[:axis]), prod(dims[axis:])] and
    W2 = W flattened at axis_w to [N, K]; Y has shape X.shape[:axis] + [N]."""
    if b.dim() != 1:
        raise RuntimeError(f"FC: the bias must be 1-D, got shape {list(b.shape)}")
    if X.dim() == 2 and W.dim() == 2 and (axis == 1 or axis == -1) and (axis_w == 1 or axis_w == -1):
        return F.linear(X, W, b)  # the common case, without the flattening views
    ax = canonical_axis(axis, X.dim())
    axw = canonical_axis(axis_w, W.dim())
    W2 = W.reshape(_prod(W.shape[:axw]), -1)
    return F.linear(X.flatten(ax), W2, b)


def fc_transposed(X: Tensor, W: Tensor, b: Tensor, axis: int = 1, axis_w: int = 1) -> Tensor:
    """FC with the weight stored as [K, N] (W flattened at axis_w: K = prod(dims[:axis_w]))."""
    ax = canonical_axis(axis, X.dim())
    axw = canonical_axis(axis_w, W.dim())
    if b.dim() != 1:
        raise RuntimeError(f"FCTransposed: the bias must be 1-D, got shape {list(b.shape)}")
    W2 = W.reshape(_prod(W.shape[:axw]), -1)
    return torch.matmul(X.flatten(ax), W2) + b


# --- elementwise with Caffe2's legacy broadcast ------------------------------------------------


def legacy_broadcast(A: Tensor, B: Tensor, axis: int = -1) -> Tensor:
    """B shaped so that it lines up with A's dims starting at ``axis`` (-1: B's dims are A's
    trailing dims), Caffe2's ``broadcast=1`` rule; a one-element B is a scalar."""
    if B.numel() == 1:
        return B.reshape([])
    if axis == -1:
        axis = A.dim() - B.dim()
    if axis < 0 or axis > A.dim() - B.dim():
        raise RuntimeError(
            f"legacy broadcast: axis {axis} does not fit B of shape {list(B.shape)} into A of shape {list(A.shape)}"
        )
    for i in range(B.dim()):
        if B.size(i) != 1 and B.size(i) != A.size(axis + i):
            raise RuntimeError(
                f"legacy broadcast: B of shape {list(B.shape)} does not match A of shape {list(A.shape)} at axis {axis}"
            )
    trailing: List[int] = [1] * (A.dim() - axis - B.dim())
    return B.reshape(list(B.shape) + trailing)


def add(A: Tensor, B: Tensor, broadcast: bool = False, axis: int = -1) -> Tensor:
    if broadcast:
        B = legacy_broadcast(A, B, axis)
    return torch.add(A, B)


def sub(A: Tensor, B: Tensor, broadcast: bool = False, axis: int = -1) -> Tensor:
    if broadcast:
        B = legacy_broadcast(A, B, axis)
    return torch.sub(A, B)


def mul(A: Tensor, B: Tensor, broadcast: bool = False, axis: int = -1) -> Tensor:
    if broadcast:
        B = legacy_broadcast(A, B, axis)
    return torch.mul(A, B)


def div(A: Tensor, B: Tensor, broadcast: bool = False, axis: int = -1) -> Tensor:
    """A / B; integer tensors divide like C++ (truncation toward zero), as Caffe2's kernel."""
    if broadcast:
        B = legacy_broadcast(A, B, axis)
    if A.is_floating_point() or B.is_floating_point():
        return torch.div(A, B)
    return torch.div(A, B, rounding_mode="trunc")


def split_info(inputs: List[Tensor], axis: int, add_axis: bool) -> Tensor:
    """Concat's second output: each input's extent along the concatenation axis (1 each with
    add_axis), as int32 on the host, as Caffe2 wrote it."""
    sizes: List[int] = []
    for x in inputs:
        if add_axis:
            sizes.append(1)
        else:
            sizes.append(x.size(canonical_axis(axis, x.dim())))
    return torch.tensor(sizes, dtype=torch.int32)


def sum_inputs(inputs: List[Tensor]) -> Tensor:
    """Caffe2's Sum: elementwise sum of same-shaped inputs (no broadcasting)."""
    out = inputs[0]
    for i in range(1, len(inputs)):
        if inputs[i].shape != inputs[0].shape:
            raise RuntimeError(
                f"Sum: input {i} has shape {list(inputs[i].shape)}, input 0 has {list(inputs[0].shape)}"
            )
        out = out + inputs[i]
    if len(inputs) == 1:
        out = out.clone()
    return out


def sum_into(inputs: List[Tensor]) -> Tensor:
    """:func:`sum_inputs` accumulated into ``inputs[0]`` (the importer uses it only where that
    tensor is a fresh intermediate nothing else reads, as Caffe2's in-place Sum)."""
    out = inputs[0]
    for i in range(1, len(inputs)):
        if inputs[i].shape != out.shape:
            raise RuntimeError(
                f"Sum: input {i} has shape {list(inputs[i].shape)}, input 0 has {list(out.shape)}"
            )
        out = out.add_(inputs[i])
    return out


# --- normalisation --------------------------------------------------------------------------


def softmax(X: Tensor, axis: int = 1) -> Tensor:
    """Softmax over all dims from ``axis`` on, jointly (Caffe2 coerces X to 2-D at ``axis``)."""
    ax = canonical_axis(axis, X.dim())
    return torch.softmax(X.flatten(ax), -1).reshape(X.shape)


def layer_norm(
    X: Tensor, axis: int = 1, epsilon: float = 1e-5, gamma: Optional[Tensor] = None, beta: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor, Tensor]:
    """(Y, mean, std) over the dims from ``axis`` on; mean/std have shape X.shape[:axis] + [1]
    and std = sqrt(var + epsilon) with the population variance."""
    if X.dim() < 2:
        raise RuntimeError(f"LayerNorm requires input dim >= 2, got {X.dim()}")
    ax = canonical_axis(axis, X.dim())
    X2 = X.flatten(ax)
    mean = X2.mean(-1, keepdim=True)
    var = (X2 - mean).pow(2).mean(-1, keepdim=True)
    scale = torch.rsqrt(var + epsilon)
    Y = (X2 * scale - mean * scale).reshape(X.shape)
    if gamma is not None:
        Y = Y * gamma
    if beta is not None:
        Y = Y + beta
    return Y, mean, scale * (var + epsilon)


# --- shape manipulation ---------------------------------------------------------------------


def reshape(X: Tensor, shape: List[int]) -> Tensor:
    """Caffe2's Reshape: a 0 copies the input's dim at that position, one -1 is inferred."""
    new_shape: List[int] = []
    for i in range(len(shape)):
        new_shape.append(X.size(i) if shape[i] == 0 else shape[i])
    return X.reshape(new_shape)


def reshape_from_tensor(X: Tensor, shape: Tensor) -> Tensor:
    """Reshape with the new shape in a 1-D integer tensor (read on the host, as Caffe2 does)."""
    if shape.dim() != 1:
        raise RuntimeError("Reshape: the shape input should be 1-D")
    values: List[int] = shape.tolist()
    return reshape(X, values)


def shape_of(X: Tensor, dtype: torch.dtype) -> Tensor:
    """X's shape as a 1-D tensor (Reshape's second output, ``old_shape``)."""
    return torch.tensor(X.shape, dtype=dtype)


def transpose(X: Tensor, axes: List[int]) -> Tensor:
    """Permutation of the dims; no ``axes`` reverses them."""
    if len(axes) == 0:
        axes = list(range(X.dim() - 1, -1, -1))
    if len(axes) != X.dim():
        raise RuntimeError(f"Transpose: axes {axes} do not match an input of rank {X.dim()}")
    return X.permute(axes)


def flatten(X: Tensor, axis: int = 1) -> Tensor:
    """2-D [prod(dims[:axis]), prod(dims[axis:])], 0 <= axis <= rank."""
    if axis < 0 or axis > X.dim():
        raise RuntimeError(f"Flatten: axis {axis} must be in [0, {X.dim()}]")
    if axis == 0:
        return X.reshape(1, -1)
    if axis == X.dim():
        return X.reshape(-1, 1)
    return X.flatten(axis).flatten(0, axis - 1)


def _sorted_unique(dims: List[int]) -> List[int]:
    out: List[int] = []
    for d in sorted(dims):
        if len(out) == 0 or out[-1] != d:
            out.append(d)
    return out


def expand_dims(X: Tensor, dims: List[int]) -> Tensor:
    """Inserts size-1 dims at the sorted, de-duplicated positions ``dims`` (of the output)."""
    ds = _sorted_unique(dims)
    if len(ds) == 0:
        raise RuntimeError("ExpandDims: argument dims cannot be empty")
    if ds[0] < 0 or ds[-1] >= X.dim() + len(ds):
        raise RuntimeError(f"ExpandDims: dims {dims} out of range for an input of rank {X.dim()}")
    for d in ds:
        X = X.unsqueeze(d)
    return X


def squeeze(X: Tensor, dims: List[int]) -> Tensor:
    """Removes the size-1 dims listed in ``dims`` (sorted, de-duplicated); any other size fails."""
    ds = _sorted_unique(dims)
    new_shape: List[int] = []
    for i in range(X.dim()):
        if i in ds:
            if X.size(i) != 1:
                raise RuntimeError(f"Squeeze: dim {i} of shape {list(X.shape)} is not 1")
        else:
            new_shape.append(X.size(i))
    if len(ds) > 0 and (ds[0] < 0 or ds[-1] >= X.dim()):
        raise RuntimeError(f"Squeeze: dims {dims} out of range for an input of rank {X.dim()}")
    return X.reshape(new_shape)


def gather(data: Tensor, indices: Tensor, axis: int = 0, wrap_indices: bool = True) -> Tensor:
    """Output = data.shape[:axis] + indices.shape + data.shape[axis+1:]; with ``wrap_indices``
    a negative index counts from the end of the axis."""
    ax = axis + data.dim() if axis < 0 else axis
    if ax < 0 or ax >= data.dim():
        raise RuntimeError(f"Gather: axis {axis} out of range for DATA of rank {data.dim()}")
    if data.size(ax) == 0:
        # Caffe2 keeps DATA's shape when the indexed dim is empty (empty batches).
        return data.clone()
    idx = indices.reshape(-1)
    if wrap_indices:
        idx = torch.where(idx < 0, idx + data.size(ax), idx)
    out = data.index_select(ax, idx)
    shape = list(data.shape[:ax]) + list(indices.shape) + list(data.shape[ax + 1 :])
    return out.reshape(shape)


def scatter_assign(data: Tensor, indices: Tensor, slices: Tensor) -> Tensor:
    """data[indices[i]] = slices[i] along dim 0, in order (a repeated index keeps the last slice)."""
    if indices.dim() != 1:
        indices = indices.reshape(-1)
    if slices.size(0) != indices.size(0):
        raise RuntimeError(f"ScatterAssign: {indices.size(0)} indices for {slices.size(0)} slices")
    n = data.size(0)
    if indices.numel() > 0 and (bool((indices < 0).any()) or bool((indices >= n).any())):
        raise RuntimeError(f"ScatterAssign: an index is outside [0, {n})")
    idx = indices.long()
    # Keep the last occurrence of each index: index_copy is unordered for duplicates.
    order = torch.arange(idx.numel(), device=idx.device)
    last = torch.full([n], -1, dtype=torch.long, device=idx.device).scatter_reduce(0, idx, order, "amax")
    keep = last.index_select(0, idx) == order
    out = data.clone()
    return out.index_copy(0, idx[keep], slices.reshape([slices.size(0)] + list(data.shape[1:]))[keep])


# --- segment reductions ---------------------------------------------------------------------
# The lengths reductions (SparseLengths*, LengthsSum) live in functional_quantized, next to
# their quantized-table forms; these names stay for code that calls them from here.


def lengths_sum(data: Tensor, lengths: Tensor) -> Tensor:
    return _fq.lengths_sum(data, lengths)


def sparse_lengths_sum(data: Tensor, indices: Tensor, lengths: Tensor) -> Tensor:
    return _fq.sparse_lengths_reduce(data, indices, lengths)


def sparse_lengths_weighted_sum(data: Tensor, weights: Tensor, indices: Tensor, lengths: Tensor) -> Tensor:
    return _fq.sparse_lengths_reduce(data, indices, lengths, weights)


def sparse_lengths_mean(data: Tensor, indices: Tensor, lengths: Tensor) -> Tensor:
    """Segment means; an empty segment gives zeros."""
    return _fq.sparse_lengths_reduce(data, indices, lengths, None, True)


# --- fills ----------------------------------------------------------------------------------


def fill_shape(X: Tensor, extra_shape: List[int], input_as_shape: bool) -> List[int]:
    """A filler's output shape from its input: the input's values (input_as_shape) or its
    shape, followed by ``extra_shape``."""
    if input_as_shape:
        if X.dim() != 1 or X.numel() == 0:
            raise RuntimeError("When input_as_shape is true, the input must be a non-empty 1-D tensor")
        base: List[int] = X.tolist()
    else:
        base = list(X.shape)
    return base + extra_shape


def constant_fill_float(X: Tensor, extra_shape: List[int], input_as_shape: bool, value: float, dtype: torch.dtype) -> Tensor:
    return torch.full(fill_shape(X, extra_shape, input_as_shape), value, dtype=dtype, device=X.device)


def constant_fill_int(X: Tensor, extra_shape: List[int], input_as_shape: bool, value: int, dtype: torch.dtype) -> Tensor:
    return torch.full(fill_shape(X, extra_shape, input_as_shape), value, dtype=dtype, device=X.device)


def xavier_fill(shape: List[int]) -> Tensor:
    """U(-s, s), s = sqrt(3 / fan_in), fan_in = numel / shape[0]."""
    fan_in = _prod(shape) // shape[0]
    s = (3.0 / fan_in) ** 0.5
    return torch.empty(shape).uniform_(-s, s)


def msra_fill(shape: List[int]) -> Tensor:
    """N(0, std^2), std = sqrt(2 / fan_out), fan_out = numel / shape[1]."""
    fan_out = _prod(shape) // shape[1]
    return torch.empty(shape).normal_(0.0, (2.0 / fan_out) ** 0.5)


def uniform_fill(shape: List[int], low: float, high: float) -> Tensor:
    return torch.empty(shape).uniform_(low, high)


def gaussian_fill(shape: List[int], mean: float, std: float) -> Tensor:
    return torch.empty(shape).normal_(mean, std)
