"""Caffe2 semantics of the normalisation, activation and layout operators of vision nets.

The converters of :mod:`.converters.norm` and :mod:`.converters.activation` emit calls to these
functions and modules. Everything here is TorchScript-compatible and traces through
``torch.export``/``torch.compile``. ``nhwc`` flags are fixed at conversion time from the
operator's ``order`` argument.

This module deliberately has no ``from __future__ import annotations``: TorchScript reads
the annotations as objects.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _channel_count(X: Tensor, nhwc: bool) -> int:
    return X.size(X.dim() - 1) if nhwc else X.size(1)


def _per_channel(v: Tensor, ndim: int, nhwc: bool) -> Tensor:
    """A [C] vector shaped to broadcast against an input of rank ``ndim`` along its channel axis."""
    if nhwc:
        return v.reshape(-1)
    shape: List[int] = [-1] + [1] * (ndim - 2)
    return v.reshape(shape)


def _check_rank(X: Tensor, op: str, lowest: int = 3) -> None:
    if X.dim() < lowest:
        raise RuntimeError(f"{op}: the input must have rank >= {lowest}, got shape {list(X.shape)}")


# --- SpatialBN ------------------------------------------------------------------------------------


def spatial_bn_inference(
    X: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor, epsilon: float, nhwc: bool
) -> Tensor:
    """Y = scale * (X - mean) / sqrt(var + epsilon) + bias per channel (Caffe2's is_test path)."""
    if X.dim() < 3:
        _check_rank(X, "SpatialBN")
    if scale.dim() != 1:
        scale = scale.reshape(-1)
    if bias.dim() != 1:
        bias = bias.reshape(-1)
    if mean.requires_grad or var.requires_grad:
        # Statistics the net also returns are loaded as parameters; batch_norm does not
        # differentiate its running statistics.
        mean, var = mean.detach(), var.detach()
    # torch.batch_norm directly: F.batch_norm's Python checks cost as much as the kernel on small
    # images. cuDNN is allowed; it gives the same result.
    if nhwc:
        # Channels-last view of the same memory: batch_norm's channels-last kernel reads it as is.
        Y = torch.batch_norm(X.movedim(-1, 1), scale, bias, mean, var, False, 0.0, epsilon, True)
        return Y.movedim(1, -1)
    return torch.batch_norm(X, scale, bias, mean, var, False, 0.0, epsilon, True)


def spatial_bn_training(
    X: Tensor,
    scale: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    epsilon: float,
    momentum: float,
    nhwc: bool,
    num_batches: int = 1,
    batch_mean_sum: Optional[Tensor] = None,
    batch_var_sum: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Caffe2's training-mode SpatialBN: (Y, saved_mean, saved_inv_std).

    Y is normalised with the batch's mean and biased (population) variance over N and the
    spatial dims, or, with ``num_batches > 1``, with the moments of the summed statistics
    ``batch_mean_sum / M`` and ``batch_var_sum / M - mean**2`` (M = num_batches * N * HxW).
    The running statistics are updated in place, without gradient:
    ``running = momentum * running + (1 - momentum) * batch`` -- with the biased variance,
    unlike torch's BatchNorm, which stores the unbiased one.
    """
    _check_rank(X, "SpatialBN")
    Xc = X.movedim(-1, 1) if nhwc else X
    C = Xc.size(1)
    count = Xc.numel() // C if C > 0 else 0
    scale = scale.reshape(-1)
    bias = bias.reshape(-1)
    if num_batches > 1 or count == 1:
        # Explicit moments: from the summed statistics, or a single value per channel (which
        # torch's batch_norm refuses in training; Caffe2 gives it variance 0).
        dims: List[int] = [0] + list(range(2, Xc.dim()))
        if num_batches > 1:
            if batch_mean_sum is None or batch_var_sum is None:
                raise RuntimeError("SpatialBN: num_batches > 1 needs the inputs batch_mean_sum and batch_var_sum")
            inv = 1.0 / float(num_batches * count)
            mean = batch_mean_sum.reshape(-1) * inv
            var = batch_var_sum.reshape(-1) * inv - mean * mean
        else:
            var, mean = torch.var_mean(Xc, dims, correction=0)
        rstd = torch.rsqrt(var + epsilon)
        alpha = scale * rstd
        beta = bias - alpha * mean
        Yc = Xc * _per_channel(alpha, Xc.dim(), False) + _per_channel(beta, Xc.dim(), False)
    else:
        # torch's fused kernel normalises with the biased variance and writes the batch mean
        # and the *unbiased* variance into the given statistics (momentum 1 overwrites them);
        # undo the Bessel correction to get Caffe2's biased variance.
        mean = torch.zeros([C], dtype=Xc.dtype, device=Xc.device)
        unbiased = torch.zeros([C], dtype=Xc.dtype, device=Xc.device)
        Yc = F.batch_norm(Xc, mean, unbiased, scale, bias, True, 1.0, epsilon)
        var = unbiased * (float(count - 1) / float(count))
        rstd = torch.rsqrt(var + epsilon)
    with torch.no_grad():
        running_mean.mul_(momentum).add_(mean.detach().reshape(running_mean.shape), alpha=1.0 - momentum)
        running_var.mul_(momentum).add_(var.detach().reshape(running_var.shape), alpha=1.0 - momentum)
    Y = Yc.movedim(1, -1) if nhwc else Yc
    return Y, mean, rstd


class SpatialBN(torch.nn.Module):
    """Caffe2's SpatialBN as a layer that follows ``self.training``.

    The module holds only the operator's arguments; scale, bias and the running statistics
    are passed in (the imported net's parameters and buffers). In evaluation mode it is the
    inference formula with the running statistics; in training mode it normalises with the
    batch statistics and updates the running statistics in place with Caffe2's momentum rule
    (see :func:`spatial_bn_training`). ``forward`` returns Y only.
    """

    def __init__(self, epsilon: float = 1e-5, momentum: float = 0.9, order: str = "NCHW", num_batches: int = 1):
        super().__init__()
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.order = order
        self.nhwc = order == "NHWC"
        self.num_batches = int(num_batches)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, momentum={self.momentum}, order={self.order!r}, num_batches={self.num_batches}"

    def forward(
        self,
        X: Tensor,
        scale: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        batch_mean_sum: Optional[Tensor] = None,
        batch_var_sum: Optional[Tensor] = None,
    ) -> Tensor:
        if self.training:
            return spatial_bn_training(
                X, scale, bias, running_mean, running_var, self.epsilon, self.momentum, self.nhwc,
                self.num_batches, batch_mean_sum, batch_var_sum,
            )[0]
        return spatial_bn_inference(X, scale, bias, running_mean, running_var, self.epsilon, self.nhwc)


class SpatialBNWithStatistics(SpatialBN):
    """:class:`SpatialBN` returning Caffe2's five training-mode outputs: (Y, running_mean,
    running_var, saved_mean, saved_inv_std). The running statistics are the input tensors
    (updated in place in training mode). In evaluation mode, where Caffe2's operator has no
    such outputs, saved_mean is the running mean and saved_inv_std 1/sqrt(running_var + epsilon)."""

    def forward(
        self,
        X: Tensor,
        scale: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        batch_mean_sum: Optional[Tensor] = None,
        batch_var_sum: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        if self.training:
            Y, mean, rstd = spatial_bn_training(
                X, scale, bias, running_mean, running_var, self.epsilon, self.momentum, self.nhwc,
                self.num_batches, batch_mean_sum, batch_var_sum,
            )
            return Y, running_mean, running_var, mean, rstd
        Y = spatial_bn_inference(X, scale, bias, running_mean, running_var, self.epsilon, self.nhwc)
        rstd = torch.rsqrt(running_var.reshape(-1) + self.epsilon)
        return Y, running_mean, running_var, running_mean.reshape(-1).clone(), rstd


# --- per-channel affine, LRN, instance and group normalisation ----------------------------------


def affine_channel(X: Tensor, scale: Tensor, bias: Tensor, nhwc: bool, learnable: bool) -> Tensor:
    """Y = X * scale[c] + bias[c] along the channel axis; without ``learnable`` (Caffe2's
    is_learnable=0, frozen batch norm) scale and bias get no gradient."""
    if not learnable:
        scale, bias = scale.detach(), bias.detach()
    n = X.dim()
    return torch.addcmul(_per_channel(bias, n, nhwc), X, _per_channel(scale, n, nhwc))


def lrn_scale(X: Tensor, size: int, alpha: float, bias: float, nhwc: bool) -> Tensor:
    """bias + alpha/size * (sum of x**2 over the channels c - (size-1)/2 ... c + size/2); channels
    outside [0, C) count as 0."""
    if X.dim() != 4:
        raise RuntimeError(f"LRN: the input must be 4-D, got shape {list(X.shape)}")
    pre = (size - 1) // 2
    post = size - 1 - pre
    sq = X * X
    if nhwc:
        C = X.size(3)
        window = F.avg_pool1d(F.pad(sq.reshape(-1, 1, C), [pre, post]), size, 1)
    else:
        N, C = X.size(0), X.size(1)
        # The padded positions count in the average, so it is the window sum over `size`.
        window = F.avg_pool2d(F.pad(sq.reshape(N, 1, C, -1), [0, 0, pre, post]), [size, 1], [1, 1])
    return (window * alpha + bias).reshape(X.shape)


def lrn(X: Tensor, size: int, alpha: float, beta: float, bias: float, nhwc: bool) -> Tensor:
    """Y = X * scale ** -beta (Caffe2's LRN, across channels)."""
    return X * lrn_scale(X, size, alpha, bias, nhwc).pow(-beta)


def lrn_with_scale(X: Tensor, size: int, alpha: float, beta: float, bias: float, nhwc: bool) -> Tuple[Tensor, Tensor]:
    """(Y, scale) of :func:`lrn`."""
    scale = lrn_scale(X, size, alpha, bias, nhwc)
    return X * scale.pow(-beta), scale


def _channels_first(X: Tensor, nhwc: bool) -> Tensor:
    return X.movedim(-1, 1) if nhwc else X


def _channels_back(Y: Tensor, nhwc: bool) -> Tensor:
    return Y.movedim(1, -1) if nhwc else Y


def group_norm(X: Tensor, gamma: Tensor, beta: Tensor, group: int, epsilon: float, nhwc: bool) -> Tensor:
    """Normalises each group of C/group consecutive channels of each sample over the group's
    channels and spatial positions (population variance), then gamma[c], beta[c]."""
    _check_rank(X, "GroupNorm", 2)
    Y = F.group_norm(_channels_first(X, nhwc), group, gamma.reshape(-1), beta.reshape(-1), epsilon)
    return _channels_back(Y, nhwc)


def group_norm_with_stats(
    X: Tensor, gamma: Tensor, beta: Tensor, group: int, epsilon: float, nhwc: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """(Y, mean, 1/sqrt(var + epsilon)) of :func:`group_norm`; the statistics are [N, group]."""
    _check_rank(X, "GroupNorm", 2)
    Xc = _channels_first(X, nhwc)
    N, C = Xc.size(0), Xc.size(1)
    if C % group != 0:
        raise RuntimeError(f"GroupNorm: {C} channels do not split into {group} groups")
    HxW = Xc.numel() // (N * C) if N * C > 0 else 0
    Y, mean, rstd = torch.native_group_norm(
        Xc.contiguous(), gamma.reshape(-1), beta.reshape(-1), N, C, HxW, group, epsilon
    )
    return _channels_back(Y, nhwc), mean, rstd


def instance_norm(X: Tensor, scale: Tensor, bias: Tensor, epsilon: float, nhwc: bool) -> Tensor:
    """Normalises every channel of every sample over its spatial positions (population
    variance), then scale[c], bias[c]."""
    _check_rank(X, "InstanceNorm")
    Xc = _channels_first(X, nhwc)
    Y = F.group_norm(Xc, Xc.size(1), scale.reshape(-1), bias.reshape(-1), epsilon)
    return _channels_back(Y, nhwc)


def instance_norm_with_stats(
    X: Tensor, scale: Tensor, bias: Tensor, epsilon: float, nhwc: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """(Y, mean, 1/sqrt(var + epsilon)) of :func:`instance_norm`; the statistics are [N, C]."""
    _check_rank(X, "InstanceNorm")
    C = _channel_count(X, nhwc)
    return group_norm_with_stats(X, scale, bias, C, epsilon, nhwc)


# --- activations ------------------------------------------------------------------------------


def prelu(X: Tensor, slope: Tensor, nhwc: bool) -> Tensor:
    """x if x > 0 else slope * x, with one slope shared by all channels or one per channel."""
    w = slope.reshape(-1)
    if w.numel() == 1:
        return F.prelu(X, w)
    if X.dim() < 2:
        raise RuntimeError(f"PRelu: a per-channel slope needs an input of rank >= 2, got shape {list(X.shape)}")
    C = _channel_count(X, nhwc)
    if w.numel() != C:
        raise RuntimeError(f"PRelu: {w.numel()} slopes for {C} channels (or give a single shared slope)")
    if nhwc:
        return torch.where(X > 0, X, X * w)
    return F.prelu(X, w)


def selu(X: Tensor, alpha: float, scale: float) -> Tensor:
    """scale * (x if x > 0 else alpha * (exp(x) - 1))."""
    return torch.ops.aten.elu(X, alpha, scale, 1.0)


def elementwise_linear(X: Tensor, a: Tensor, b: Tensor, axis: int = 1) -> Tensor:
    """Y[n, d] = X[n, d] * a[d] + b[d] with X viewed as [prod(dims[:axis]), prod(dims[axis:])]."""
    ax = axis + X.dim() if axis < 0 else axis
    if ax < 0 or ax >= X.dim():
        raise RuntimeError(f"ElementwiseLinear: axis {axis} is out of range for an input of rank {X.dim()}")
    X2 = X.flatten(ax)
    D = X2.size(X2.dim() - 1)
    if a.dim() != 1 or a.size(0) != D or b.dim() != 1 or b.size(0) != D:
        raise RuntimeError(
            f"ElementwiseLinear: a and b must be 1-D of size {D} (the product of the input's dims from "
            f"axis {axis} on, input shape {list(X.shape)}), got {list(a.shape)} and {list(b.shape)}"
        )
    return torch.addcmul(b, X2, a).reshape(X.shape)


# --- layout -------------------------------------------------------------------------------------


def channel_shuffle(X: Tensor, group: int, nhwc: bool) -> Tensor:
    """Channel g * K + k goes to k * group + g (K = C / group): the group-major channel order
    becomes member-major."""
    _check_rank(X, "ChannelShuffle", 2)
    C = _channel_count(X, nhwc)
    if group <= 0 or C % group != 0:
        raise RuntimeError(f"ChannelShuffle: {C} channels do not split into {group} groups")
    K = C // group
    if nhwc:
        lead: List[int] = list(X.shape[:-1])
        return X.reshape(lead + [group, K]).transpose(-1, -2).reshape(X.shape)
    shape: List[int] = [X.size(0), group, K] + list(X.shape[2:])
    return X.reshape(shape).transpose(1, 2).reshape(X.shape)


def nchw2nhwc(X: Tensor) -> Tensor:
    """N C D1..Dk -> N D1..Dk C."""
    _check_rank(X, "NCHW2NHWC")
    return X.movedim(1, -1)


def nhwc2nchw(X: Tensor) -> Tensor:
    """N D1..Dk C -> N C D1..Dk."""
    _check_rank(X, "NHWC2NCHW")
    return X.movedim(-1, 1)


def _float32_scaled_size(n: int, scale: float) -> int:
    """int(float(n) * scale) computed in float32, as Caffe2 does (the product is rounded to
    float32 before truncation, which can round e.g. 10 * 0.7f up to exactly 7). ``scale`` is a
    float32 value; n * scale is exact in double for n < 2**29."""
    p = float(n) * scale
    out = int(p)
    if p <= 0.0 or float(out) == p:
        return out
    # float32 spacing of the binade holding p; p rounds up to out + 1 if it is within half of it.
    e = int(math.floor(math.log(p) / math.log(2.0)))
    if 2.0 ** e > p:
        e -= 1
    elif 2.0 ** (e + 1) <= p:
        e += 1
    spacing = 2.0 ** (e - 23)
    gap = float(out + 1) - p
    if gap < spacing / 2.0:
        return out + 1
    if gap == spacing / 2.0 and int((float(out + 1) / spacing)) % 2 == 0:
        return out + 1
    return out


def _nearest_indices(n_out: int, n_in: int, scale: float, device: torch.device) -> Tensor:
    """min(int(float32(i) / float32(scale)), n_in - 1) for i < n_out (float32 division)."""
    pos = torch.arange(n_out, dtype=torch.float32, device=device)
    idx = torch.div(pos, torch.tensor(scale, dtype=torch.float32, device=device)).to(torch.int64)
    return idx.clamp(max=n_in - 1)


def resize_nearest(X: Tensor, height_scale: float, width_scale: float, nhwc: bool) -> Tensor:
    """Caffe2's nearest-neighbour resize of a 4-D image: output size int(in * scale), source
    index min(int(out_index / scale), in - 1) per spatial dim (float32 arithmetic)."""
    if X.dim() != 4:
        raise RuntimeError(f"ResizeNearest: the input must be 4-D, got shape {list(X.shape)}")
    hd, wd = (1, 2) if nhwc else (2, 3)
    H, W = X.size(hd), X.size(wd)
    out_h = _float32_scaled_size(H, height_scale)
    out_w = _float32_scaled_size(W, width_scale)
    hs, ws = int(height_scale), int(width_scale)
    if float(hs) == height_scale and float(ws) == width_scale and hs >= 1 and ws >= 1:
        # Integer scales: every source pixel is repeated hs x ws times, one broadcast copy.
        if nhwc:
            N, C = X.size(0), X.size(3)
            Y = X.reshape(N, H, 1, W, 1, C).expand(N, H, hs, W, ws, C)
            return Y.reshape(N, H * hs, W * ws, C)
        N, C = X.size(0), X.size(1)
        Y = X.reshape(N, C, H, 1, W, 1).expand(N, C, H, hs, W, ws)
        return Y.reshape(N, C, H * hs, W * ws)
    Y = X.index_select(hd, _nearest_indices(out_h, H, height_scale, X.device))
    return Y.index_select(wd, _nearest_indices(out_w, W, width_scale, X.device))


def resize_nearest_scales(X: Tensor, scales: Tensor, nhwc: bool) -> Tensor:
    """:func:`resize_nearest` with the scales from a 1-D float tensor [height_scale,
    width_scale] (read on the host, as Caffe2 does)."""
    if scales.dim() != 1 or scales.numel() != 2:
        raise RuntimeError(f"ResizeNearest: scales must be 1-D with 2 elements, got shape {list(scales.shape)}")
    values: List[float] = scales.to(torch.float32).tolist()
    if values[0] <= 0.0 or values[1] <= 0.0:
        raise RuntimeError(f"ResizeNearest: scales must be > 0, got {values}")
    return resize_nearest(X, values[0], values[1], nhwc)
