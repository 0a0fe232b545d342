"""Typed wrappers around ``torch.ops.caffe2ops.*``, one per op, in the spec's vocabulary.

Every wrapper is TorchScript-compatible and simply forwards to the registered op, so it can
be used from eager code, ``torch.jit.script``, ``torch.compile`` and ``torch.export`` alike.
Section numbers refer to the operator specification (``spec/OPERATORS.md``).
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------
# batch family (spec section 2 and Appendix A)
# ---------------------------------------------------------------------------------------


def batch_permutation(X: Tensor, indices: Tensor) -> Tensor:
    """Y[n] = X[indices[n]] (spec 2.1). indices: 1-D int32/int64 in [0, N); no wrapping."""
    return torch.ops.caffe2ops.batch_permutation(X, indices)


def batch_permutation_gradient(indices: Tensor, dY: Tensor) -> Tensor:
    """dX = zeros; dX[indices[n]] += dY[n] (spec 2.1, the exact adjoint)."""
    return torch.ops.caffe2ops.batch_permutation_gradient(indices, dY)


def batch_gather(data: Tensor, indices: Tensor, match_outer: bool = False) -> Tensor:
    """OUTPUT[b, i..., t...] = data[b, indices[i...], t...] (spec 2.2).

    With ``match_outer`` each batch row uses its own index row: indices.shape[0] == B.
    """
    return torch.ops.caffe2ops.batch_gather(data, indices, match_outer)


def batch_gather_gradient(
    data: Tensor, indices: Tensor, grad: Tensor, axis: int = 1, match_outer: bool = False
) -> Tensor:
    """Scatter-add of ``grad`` into zeros shaped like ``data`` along ``axis`` (spec 2.2)."""
    return torch.ops.caffe2ops.batch_gather_gradient(data, indices, grad, axis, match_outer)


def batch_sparse_to_dense(
    lengths: Tensor,
    indices: Tensor,
    values: Tensor,
    output_shape_inference: Optional[Tensor] = None,
    dense_last_dim: int = -1,
    default_value: float = 0.0,
) -> Tensor:
    """dense[B, D] filled with default_value, dense[row(k), indices[k]] = values[k] (spec 2.3).

    D comes from ``output_shape_inference.shape[1]`` or from ``dense_last_dim`` (required
    without the shape input). A repeated (row, column) keeps the last value.
    """
    return torch.ops.caffe2ops.batch_sparse_to_dense(
        lengths, indices, values, output_shape_inference, dense_last_dim, default_value
    )


def batch_sparse_to_dense_gradient(lengths: Tensor, indices: Tensor, grad_dense: Tensor) -> Tensor:
    """dValues[k] = grad_dense[row(k), indices[k]] (spec 2.3)."""
    return torch.ops.caffe2ops.batch_sparse_to_dense_gradient(lengths, indices, grad_dense)


def batch_dense_to_sparse(lengths: Tensor, indices: Tensor, dense: Tensor) -> Tensor:
    """values[k] = dense[row(k), indices[k]] (spec 2.4)."""
    return torch.ops.caffe2ops.batch_dense_to_sparse(lengths, indices, dense)


def batch_dense_to_sparse_gradient(
    lengths: Tensor, indices: Tensor, grad_values: Tensor, dense: Tensor
) -> Tensor:
    """dDense = zeros, dDense[row(k), indices[k]] = grad_values[k] (spec 2.4)."""
    return torch.ops.caffe2ops.batch_dense_to_sparse_gradient(lengths, indices, grad_values, dense)


def batch_mat_mul(
    A: Tensor, B: Tensor, trans_a: bool = False, trans_b: bool = False, broadcast: bool = False
) -> Tensor:
    """Batched matrix product with Caffe2's shape rules (spec 2.5).

    1-D x 1-D gives shape [1]; differing batch dims need ``broadcast=True``; a 0-size batch
    dim broadcasts against any size; trans flags are ignored for 1-D operands.
    """
    return torch.ops.caffe2ops.batch_mat_mul(A, B, trans_a, trans_b, broadcast)


def batch_mat_mul_gradient(
    grad_Y: Tensor,
    A: Tensor,
    B: Tensor,
    trans_a: bool = False,
    trans_b: bool = False,
    broadcast: bool = False,
) -> Tuple[Tensor, Tensor]:
    """(dA, dB), the true gradient of batch_mat_mul (spec 2.5)."""
    return torch.ops.caffe2ops.batch_mat_mul_gradient(grad_Y, A, B, trans_a, trans_b, broadcast)


def batch_moments(X: Tensor, order: str = "NCHW") -> Tuple[Tensor, Tensor]:
    """Per-channel (E[x], E[x^2]) (spec 2.6). The second output is the raw second moment."""
    return torch.ops.caffe2ops.batch_moments(X, order)


def batch_moments_gradient(dmu: Tensor, dvar: Tensor, X: Tensor, order: str = "NCHW") -> Tensor:
    """dX = (dmu[c] + 2 dvar[c] x) / (N * HxW) (spec 2.6)."""
    return torch.ops.caffe2ops.batch_moments_gradient(dmu, dvar, X, order)


def batch_box_cox(data: Tensor, lambda1: Tensor, lambda2: Tensor, min_block_size: int = 256) -> Tensor:
    """Box-Cox per column with t = max(x + lambda2, 1e-6) (spec 2.7). No gradient."""
    return torch.ops.caffe2ops.batch_box_cox(data, lambda1, lambda2, min_block_size)


def batch_bucketize(float_features: Tensor, indices: Tensor, boundaries: Tensor, lengths: Tensor) -> Tensor:
    """int32 [N, K]: first k with x <= border k of the selected column, else lengths[j] (spec 2.8)."""
    return torch.ops.caffe2ops.batch_bucketize(float_features, indices, boundaries, lengths)


def concat_batch_mat_mul_batch_gather(indices: Tensor, inputs: List[Tensor]) -> Tensor:
    """Y[b, j] = <X_p[b], X_q[b]>, (p, q) = divmod(indices[j], n) (spec 2.9). No gradient."""
    return torch.ops.caffe2ops.concat_batch_mat_mul_batch_gather(indices, inputs)


def batch_bucket_one_hot(data: Tensor, lengths: Tensor, boundaries: Tensor) -> Tensor:
    """One-hot bucket of every column, [N, sum(lengths) + D] (spec Appendix A). No gradient."""
    return torch.ops.caffe2ops.batch_bucket_one_hot(data, lengths, boundaries)


# ---------------------------------------------------------------------------------------
# concat / split family (spec section 3)
# ---------------------------------------------------------------------------------------


def concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """(output, split_info) (spec 3.1). Without ``axis`` the axis comes from ``order``
    ("NCHW" -> 1, the default); ``add_axis`` stacks. split_info is int32 on the CPU."""
    return torch.ops.caffe2ops.concat(inputs, axis, order, add_axis)


def depth_concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """Caffe2's backward-compatible alias of :func:`concat`."""
    return torch.ops.caffe2ops.depth_concat(inputs, axis, order, add_axis)


def concat_gradient(
    grad_output: Tensor, split_info: Tensor, axis: Optional[int] = None, order: Optional[str] = None,
    add_axis: bool = False,
) -> List[Tensor]:
    """Splits ``grad_output`` back into the concat inputs' gradients (spec 3.1)."""
    return torch.ops.caffe2ops.concat_gradient(grad_output, split_info, axis, order, add_axis)


def split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Pieces of ``input`` along the axis (spec 3.2), sizes from ``split_tensor`` (int, CPU),
    from ``split``, or equal (``num_outputs`` pieces). Outputs are fresh tensors."""
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def depth_split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Caffe2's backward-compatible alias of :func:`split`."""
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.depth_split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def split_by_lengths(
    input: Tensor, lengths: Tensor, num_outputs: int, axis: Optional[int] = None, order: Optional[str] = None,
    use_scaling_lengths: bool = False,
) -> List[Tensor]:
    """``num_outputs`` pieces, piece i of extent sum(lengths[i*g:(i+1)*g]) (times C / sum(lengths)
    with ``use_scaling_lengths``) (spec 3.3). The default axis is 1, not 0."""
    return torch.ops.caffe2ops.split_by_lengths(input, lengths, num_outputs, axis, order, use_scaling_lengths)


def split_gradient(grad_outputs: List[Optional[Tensor]], split_sizes: List[int], axis: int, add_axis: bool = False) -> Tensor:
    """Concatenation (stack with ``add_axis``) of the pieces' gradients, zeros for missing ones."""
    return torch.ops.caffe2ops.split_gradient(grad_outputs, split_sizes, axis, add_axis)


# ---------------------------------------------------------------------------------------
# dropout family (spec section 4)
# ---------------------------------------------------------------------------------------


def dropout(
    X: Tensor, ratio: float = 0.5, is_test: bool = False, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """(Y, mask) with mask ~ Bernoulli(1 - ratio) and Y = X * mask / (1 - ratio) (spec 4.1).

    0 <= ratio < 1. In test mode Y is a copy of X and the mask is all True. Randomness comes from
    ``generator`` or PyTorch's default generator: ``torch.manual_seed`` reproduces the mask.
    """
    return torch.ops.caffe2ops.dropout(X, ratio, is_test, generator)


def dropout_gradient(dY: Tensor, mask: Optional[Tensor] = None, ratio: float = 0.5, is_test: bool = False) -> Tensor:
    """dX = dY * mask / (1 - ratio), or dY in test mode (spec 4.2)."""
    return torch.ops.caffe2ops.dropout_gradient(dY, mask, ratio, is_test)


def cudnn_dropout(
    X: Tensor, ratio: float = 0.5, is_test: bool = False, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """cuDNN's dropout, (Y, opaque uint8 reserve_space) (spec 4.3). CUDA builds with cuDNN only."""
    return torch.ops.caffe2ops.cudnn_dropout(X, ratio, is_test, generator)


def cudnn_dropout_gradient(dY: Tensor, reserve_space: Tensor, ratio: float = 0.5, is_test: bool = False) -> Tensor:
    """Gradient of :func:`cudnn_dropout` from its reserve space (spec 4.3)."""
    return torch.ops.caffe2ops.cudnn_dropout_gradient(dY, reserve_space, ratio, is_test)


# ---------------------------------------------------------------------------------------
# sparse normalize family (spec section 5)
# ---------------------------------------------------------------------------------------


def sparse_normalize(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """A copy of ``param`` whose rows listed in ``indices`` are rescaled to L2 norm ``norm``
    (only rows above it with ``use_max_norm``) (spec 5.1). ``grad`` is ignored."""
    return torch.ops.caffe2ops.sparse_normalize(param, indices, grad, use_max_norm, norm)


def sparse_normalize_(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """In-place :func:`sparse_normalize`; returns ``param`` (Caffe2's behaviour)."""
    return torch.ops.caffe2ops.sparse_normalize_(param, indices, grad, use_max_norm, norm)


def float16_sparse_normalize(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """:func:`sparse_normalize` for a float16 ``param`` (norms in float32)."""
    return torch.ops.caffe2ops.float16_sparse_normalize(param, indices, grad, use_max_norm, norm)


def float16_sparse_normalize_(
    param: Tensor, indices: Tensor, grad: Optional[Tensor] = None, use_max_norm: bool = True, norm: float = 1.0
) -> Tensor:
    """In-place :func:`float16_sparse_normalize`; returns ``param``."""
    return torch.ops.caffe2ops.float16_sparse_normalize_(param, indices, grad, use_max_norm, norm)


# ---------------------------------------------------------------------------------------
# margin rank family (spec section 6)
# ---------------------------------------------------------------------------------------


def margin_ranking_criterion(X1: Tensor, X2: Tensor, Y: Tensor, margin: float = 1.0) -> Tensor:
    """Elementwise max(0, -Y (X1 - X2) + margin), shaped like X1 (spec 6.1). No reduction."""
    return torch.ops.caffe2ops.margin_ranking_criterion(X1, X2, Y, margin)


def margin_ranking_criterion_gradient(
    X1: Tensor, X2: Tensor, Y: Tensor, dLoss: Tensor, margin: float = 1.0
) -> Tuple[Tensor, Tensor]:
    """(dX1, dX2): -Y dLoss and Y dLoss where -Y (X1 - X2) + margin >= 0, else 0 (spec 6.1)."""
    return torch.ops.caffe2ops.margin_ranking_criterion_gradient(X1, X2, Y, dLoss, margin)
