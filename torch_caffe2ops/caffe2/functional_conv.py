"""Caffe2's convolution and pooling arithmetic, for the cases ATen's ops do not cover directly.

The converters emit ``torch.conv2d`` / ``torch.max_pool2d`` / ``F.avg_pool2d`` themselves when
Caffe2's arguments map onto them (symmetric pads, Caffe's ceil mode where ATen agrees). The
functions here handle the rest: uneven head/tail pads, padding that Caffe2 derives from the
input size (``legacy_pad`` SAME and CAFFE_LEGACY_POOLING), AveragePool's divisor that counts
only the real input elements, LpPool, and ConvTranspose with uneven pads or ``adj == stride``.

Every function is TorchScript-compatible and reads only shapes, never tensor values.

This module deliberately has no ``from __future__ import annotations``: TorchScript reads
the annotations as objects.
"""
import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

# LegacyPadding (caffe2_legacy.proto). TorchScript cannot read module-level ints, so the
# functions below spell these values out.
NOTSET = 0
VALID = 1
SAME = 2
CAFFE_LEGACY_POOLING = 3

MAX = 0
AVERAGE = 1
LP = 2

# std::numeric_limits<float>::lowest(): where Caffe2's MaxPool starts, so a window with no
# input element (or only -inf ones) gives this, not -inf.
FLOAT_LOWEST = -3.4028234663852886e38


def _c_div(a: int, b: int) -> int:
    """C++ integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        return -q
    return q


def size_and_pads(
    in_size: int, kernel: int, stride: int, dilation: int, pad_head: int, pad_tail: int, legacy: int
) -> List[int]:
    """[out_size, pad_head, pad_tail] of one spatial dim, as Caffe2's ComputeSizeAndPad sets them."""
    dk = dilation * (kernel - 1) + 1
    if legacy == 1:  # VALID
        return [_c_div(in_size - dk, stride) + 1, 0, 0]
    if legacy == 2:  # SAME
        target = _c_div(in_size + stride - 1, stride)
        needed = (target - 1) * stride + kernel - in_size
        head = _c_div(needed, 2)
        return [_c_div(in_size + needed - dk, stride) + 1, head, needed - head]
    if legacy == 3:  # CAFFE_LEGACY_POOLING
        # Caffe's ceil mode; Caffe2 computes it in single precision.
        span = float(in_size + 2 * pad_head - kernel) / float(stride)
        out = int(math.ceil(span + 1.0))
        if pad_head > 0 and (out - 1) * stride >= in_size + pad_head:
            out -= 1
        standard = int(span + 1.0)
        return [out, pad_head, pad_head + stride * (out - standard)]
    if in_size + pad_head + pad_tail < dk:
        raise RuntimeError(
            f"the padded input ({in_size} + {pad_head} + {pad_tail}) is smaller than the dilated kernel ({dk})"
        )
    return [int(float(in_size + pad_head + pad_tail - dk) / float(stride) + 1.0), pad_head, pad_tail]


def legacy_pad_list(
    sizes: List[int], kernel: List[int], stride: List[int], dilation: List[int], pad_head: List[int], legacy: int
) -> List[int]:
    """``F.pad`` amounts (last dim first) that make a padding-free window sweep over the input
    produce exactly Caffe2's output size under ``legacy`` (the tail is cut or extended to what the
    last window reaches; Caffe2 reads zeros there)."""
    n = len(kernel)
    pad: List[int] = [0] * (2 * n)
    for i in range(n):
        sp = size_and_pads(sizes[i], kernel[i], stride[i], dilation[i], pad_head[i], pad_head[i], legacy)
        dk = dilation[i] * (kernel[i] - 1) + 1
        head = sp[1]
        tail = (sp[0] - 1) * stride[i] + dk - sizes[i] - head
        pad[2 * (n - 1 - i)] = head
        pad[2 * (n - 1 - i) + 1] = tail
    return pad


def _conv(x: Tensor, w: Tensor, b: Optional[Tensor], stride: List[int], dilation: List[int], groups: int) -> Tensor:
    n = len(stride)
    if n == 1:
        return torch.conv1d(x, w, b, stride, [0], dilation, groups)
    if n == 2:
        return torch.conv2d(x, w, b, stride, [0, 0], dilation, groups)
    return torch.conv3d(x, w, b, stride, [0, 0, 0], dilation, groups)


def conv_legacy(
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor],
    kernel: List[int],
    stride: List[int],
    dilation: List[int],
    pad_head: List[int],
    legacy: int,
    groups: int,
) -> Tensor:
    """Caffe2's Conv (NCHW) with pads derived from the input size (``legacy_pad`` SAME or
    CAFFE_LEGACY_POOLING)."""
    n = len(stride)
    sizes: List[int] = [x.size(2 + i) for i in range(n)]
    pad = legacy_pad_list(sizes, kernel, stride, dilation, pad_head, legacy)
    return _conv(F.pad(x, pad), w, b, stride, dilation, groups)


def _pool_sum(x: Tensor, kernel: List[int], stride: List[int]) -> Tensor:
    """Window sums over a pre-padded input (mean over the whole window, times its size)."""
    n = len(kernel)
    area = 1
    for k in kernel:
        area *= k
    if n == 1:
        y = F.avg_pool1d(x, kernel, stride, [0], False, True)
    elif n == 2:
        y = F.avg_pool2d(x, kernel, stride, [0, 0], False, True)
    else:
        y = F.avg_pool3d(x, kernel, stride, [0, 0, 0], False, True)
    return y * float(area)


def _real_counts(
    sizes: List[int], kernel: List[int], stride: List[int], pad: List[int], out: List[int], like: Tensor
) -> Tensor:
    """Per output position, how many real (non-pad) input elements its window covers:
    Caffe2's (end - start) product with both clipped to the input."""
    n = len(kernel)
    count = torch.ones([1] * n, dtype=like.dtype, device=like.device)
    for i in range(n):
        head = pad[2 * (n - 1 - i)]
        start = torch.arange(out[i], device=like.device) * stride[i] - head
        c = torch.clamp(start + kernel[i], max=sizes[i]) - torch.clamp(start, min=0)
        shape: List[int] = [1] * n
        shape[i] = out[i]
        count = count * c.to(like.dtype).reshape(shape)
    return count


def pool_padded(
    x: Tensor,
    kind: int,
    kernel: List[int],
    stride: List[int],
    pad: List[int],
    count_include_pad: bool = False,
    p: float = 2.0,
) -> Tensor:
    """Caffe2's MaxPool / AveragePool / LpPool (NCHW) with explicit ``F.pad`` amounts ``pad``
    (last dim first; head and tail may differ or be negative)."""
    n = len(kernel)
    sizes: List[int] = [x.size(2 + i) for i in range(n)]
    if kind == 0:  # MAX
        xp = F.pad(x, pad, value=float("-inf"))
        if n == 1:
            y = torch.max_pool1d(xp, kernel, stride, [0], [1], False)
        elif n == 2:
            y = torch.max_pool2d(xp, kernel, stride, [0, 0], [1, 1], False)
        else:
            y = torch.max_pool3d(xp, kernel, stride, [0, 0, 0], [1, 1, 1], False)
        return torch.clamp_min(y, -3.4028234663852886e38)  # FLOAT_LOWEST
    if kind == 2:  # LP
        s = _pool_sum(F.pad(x.abs().pow(p), pad), kernel, stride)
        return s.pow(1.0 / p)
    s = _pool_sum(F.pad(x, pad), kernel, stride)
    if count_include_pad:
        area = 1
        for k in kernel:
            area *= k
        return s / float(area)
    out: List[int] = [s.size(2 + i) for i in range(n)]
    return s / _real_counts(sizes, kernel, stride, pad, out, s)


def pool_legacy(
    x: Tensor,
    kind: int,
    kernel: List[int],
    stride: List[int],
    pad_head: List[int],
    legacy: int,
    count_include_pad: bool = False,
    p: float = 2.0,
) -> Tensor:
    """Caffe2's pooling (NCHW) with pads derived from the input size (``legacy_pad`` SAME or
    CAFFE_LEGACY_POOLING, whose tail pad Caffe2 recomputes)."""
    n = len(kernel)
    sizes: List[int] = [x.size(2 + i) for i in range(n)]
    pad = legacy_pad_list(sizes, kernel, stride, [1] * n, pad_head, legacy)
    return pool_padded(x, kind, kernel, stride, pad, count_include_pad, p)


def global_lp_pool(x: Tensor, dims: List[int], p: float = 2.0) -> Tensor:
    """LpPool with global_pooling: the p-norm over all spatial positions."""
    return x.abs().pow(p).sum(dims, keepdim=True).pow(1.0 / p)


def conv_transpose_cropped(
    x: Tensor, w: Tensor, b: Optional[Tensor], stride: List[int], crop: List[int], groups: int
) -> Tensor:
    """Caffe2's ConvTranspose (NCHW, 2-D): the full transposed convolution, with ``crop``
    (``F.pad`` amounts, last dim first: -head, adj - tail) applied, then the bias added to
    every output position."""
    y = torch.conv_transpose2d(x, w, None, stride, [0, 0], [0, 0], groups, [1, 1])
    y = F.pad(y, crop)
    if b is not None:
        y = y + b.reshape(-1, 1, 1)
    return y
