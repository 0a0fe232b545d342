"""Converters for Caffe2's convolution and pooling operators.

Everything that depends only on the arguments is settled here, at conversion time: the common
case (NCHW, even pads) becomes one ATen call such as ``torch.conv2d(x, w, b, stride, pad,
dilation, group)`` or ``torch.max_pool2d(...)``. NHWC inputs (and NHWC filters, which Caffe2
lays out as ``[M, kH, kW, C/G]``) are permuted to NCHW and back around the same call. Uneven
pads, pads derived from the input size (``legacy_pad`` SAME / CAFFE_LEGACY_POOLING) and
divisors ATen does not offer go through :mod:`..functional_conv`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.fx
import torch.nn.functional as F

from .. import functional_conv as fc
from ..context import ConversionContext
from ..registry import OpCall, register_converter
from ._convpool import (
    CONV_ENGINE_IGNORED,
    CONV_POOL_ARGS,
    CONV_POOL_IGNORED,
    CONV_TRANSPOSE_ARGS,
    ConvPoolPlan,
    conv_pool_plan,
    conv_transpose_plan,
)

_CONV = {1: torch.conv1d, 2: torch.conv2d, 3: torch.conv3d}
_MAX_POOL = {1: torch.max_pool1d, 2: torch.max_pool2d, 3: torch.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _to_nchw(ctx: ConversionContext, node: torch.fx.Node, n: int, name: str) -> torch.fx.Node:
    return ctx.method("permute", node, [0, n + 1, *range(1, n + 1)], name=name)


def _to_nhwc(ctx: ConversionContext, node: torch.fx.Node, n: int) -> torch.fx.Node:
    return ctx.method("permute", node, [0, *range(2, n + 2), 1])


def _conv_nchw(
    ctx: ConversionContext, plan: ConvPoolPlan, x: torch.fx.Node, w: torch.fx.Node, b: Optional[torch.fx.Node],
    name: Optional[str] = None,
) -> torch.fx.Node:
    n = plan.ndim
    if plan.global_pooling:
        # The kernel is the whole input (the filter's size); no pads, unit strides.
        return ctx.call(_CONV[n], x, w, b, [1] * n, [0] * n, [1] * n, plan.group, name=name)
    if not plan.static_pads:
        return ctx.call(fc.conv_legacy, x, w, b, plan.kernel, plan.stride, plan.dilation, plan.pad_head,
                        plan.legacy, plan.group, name=name)
    if plan.symmetric:
        return ctx.call(_CONV[n], x, w, b, plan.stride, plan.pad_head, plan.dilation, plan.group, name=name)
    xp = ctx.call(F.pad, x, plan.pad_list(), name=f"{ctx.name_hint}_padded")
    return ctx.call(_CONV[n], xp, w, b, plan.stride, [0] * n, plan.dilation, plan.group, name=name)


def _conv(ctx: ConversionContext, op: OpCall, plan: ConvPoolPlan, bias: Optional[torch.fx.Node],
          name: Optional[str] = None, keep_nchw: bool = False) -> torch.fx.Node:
    """Caffe2's Conv of op.inputs[0] by op.inputs[1] (+ bias); NHWC in and out unless keep_nchw."""
    x, w = op.inputs[0], op.inputs[1]
    n = plan.ndim
    if not plan.nhwc:
        return _conv_nchw(ctx, plan, x, w, bias, name)
    base = ctx.name_hint
    x = _to_nchw(ctx, x, n, f"{base}_x_nchw")
    # [M, k..., C/G] -> [M, C/G, k...]; a view of the parameter, so fine-tuning still updates it.
    w = _to_nchw(ctx, w, n, f"{base}_w_nchw")
    y = _conv_nchw(ctx, plan, x, w, bias, f"{base}_nchw")
    return y if keep_nchw else _to_nhwc(ctx, y, n)


_CONV_ARGS = dict(
    args=CONV_POOL_ARGS,
    ignored=CONV_POOL_IGNORED + CONV_ENGINE_IGNORED,
    inputs=(2, 3),
    outputs=(1, 1),
    data_inputs=(0,),
)


def _register_conv(op_type: str) -> None:
    @register_converter(op_type, **_CONV_ARGS)
    def convert(ctx: ConversionContext, op: OpCall):
        """N-d convolution of X by filter (+ bias), NCHW or NHWC, with Caffe2's padding rules."""
        plan = conv_pool_plan(op)
        return _conv(ctx, op, plan, op.inputs[2] if len(op.inputs) == 3 else None)


for _type in ("Conv", "Conv1D", "Conv2D", "Conv3D"):
    _register_conv(_type)


@register_converter("ConvRelu", **_CONV_ARGS)
def _conv_relu(ctx: ConversionContext, op: OpCall):
    """relu(Conv(X, filter, bias)), the fused float operator of the quantization server."""
    plan = conv_pool_plan(op)
    y = _conv(ctx, op, plan, op.inputs[2] if len(op.inputs) == 3 else None, name=f"{ctx.name_hint}_conv")
    return ctx.call(torch.relu, y)


FUSION_CONV_RELU, FUSION_CONV_SUM, FUSION_CONV_SUM_RELU = 1, 2, 3


@register_converter(
    "ConvFusion",
    args={**CONV_POOL_ARGS, "fusion_type": 0},
    ignored=CONV_POOL_IGNORED + ("training_mode", "conv_algorithm"),
    inputs=(2, 4),
    outputs=(1, 1),
    data_inputs=(0, 3),
)
def _conv_fusion(ctx: ConversionContext, op: OpCall):
    """Conv fused with ReLU (fusion_type 1), with adding the last input S (2), or both (3)."""
    fusion = op.args["fusion_type"]
    if fusion not in (FUSION_CONV_RELU, FUSION_CONV_SUM, FUSION_CONV_SUM_RELU):
        raise op.error(f"argument 'fusion_type' = {fusion}: expected 1 (conv+relu), 2 (conv+sum) "
                       "or 3 (conv+sum+relu)")
    plan = conv_pool_plan(op)
    if plan.nhwc or plan.ndim != 2:
        raise op.error("ConvFusion supports only 2-D NCHW convolution")
    if not plan.symmetric:
        raise op.error(f"ConvFusion does not support uneven pads (heads {plan.pad_head}, tails {plan.pad_tail})")
    if plan.group != 1:
        raise op.error(f"ConvFusion does not support group = {plan.group}")
    count = len(op.inputs)
    summed = fusion != FUSION_CONV_RELU
    if summed and count < 3 or not summed and count > 3:
        raise op.error(f"fusion_type {fusion} takes {'X, filter, [bias], S' if summed else 'X, filter, [bias]'}; "
                       f"got {count} inputs")
    with_bias = count == (4 if summed else 3)
    bias = op.inputs[2] if with_bias else None
    if not summed:
        y = _conv(ctx, op, plan, bias, name=f"{ctx.name_hint}_conv")
        return ctx.call(torch.relu, y)
    y = _conv(ctx, op, plan, bias, name=f"{ctx.name_hint}_conv")
    if fusion == FUSION_CONV_SUM:
        return ctx.call(torch.add, y, op.inputs[-1])
    return ctx.call(torch.relu, ctx.call(torch.add, y, op.inputs[-1], name=f"{ctx.name_hint}_sum"))


@register_converter(
    "ConvTranspose",
    args=CONV_TRANSPOSE_ARGS,
    ignored=("shared_buffer",) + CONV_ENGINE_IGNORED,
    inputs=(2, 3),
    outputs=(1, 1),
    data_inputs=(0,),
)
def _conv_transpose(ctx: ConversionContext, op: OpCall):
    """2-D transposed convolution; filter [C_in, C_out/G, kH, kW] (NCHW) or [C_in, kH, kW, C_out/G] (NHWC)."""
    plan = conv_transpose_plan(op)
    x, w = op.inputs[0], op.inputs[1]
    b = op.inputs[2] if len(op.inputs) == 3 else None
    base = ctx.name_hint
    if plan.nhwc:
        x = _to_nchw(ctx, x, 2, f"{base}_x_nchw")
        w = _to_nchw(ctx, w, 2, f"{base}_w_nchw")
    name = f"{base}_nchw" if plan.nhwc else None
    if plan.symmetric and all(a < s for a, s in zip(plan.adj, plan.stride)):
        y = ctx.call(torch.conv_transpose2d, x, w, b, plan.stride, plan.pad_head, plan.adj, plan.group, [1, 1],
                     name=name)
    else:
        # ATen's output_padding must stay below the stride, and its pads are even: crop (or extend
        # by adj) the full transposed convolution instead.
        crop = []
        for h, t, a in zip(reversed(plan.pad_head), reversed(plan.pad_tail), reversed(plan.adj)):
            crop += [-h, a - t]
        y = ctx.call(fc.conv_transpose_cropped, x, w, b, plan.stride, crop, plan.group, name=name)
    return _to_nhwc(ctx, y, 2) if plan.nhwc else y


# --- pooling -------------------------------------------------------------------------------------


def _pool(ctx: ConversionContext, op: OpCall, kind: int, count_include_pad: bool = False, p: float = 2.0):
    plan = conv_pool_plan(op, pooling=True)
    n = plan.ndim
    x = op.inputs[0]
    if plan.global_pooling:
        dims = list(range(1, n + 1)) if plan.nhwc else list(range(2, n + 2))
        if kind == fc.MAX:
            return ctx.call(torch.amax, x, dims, True)
        if kind == fc.AVERAGE:
            return ctx.call(torch.mean, x, dims, True)
        return ctx.call(fc.global_lp_pool, x, dims, p)
    base = ctx.name_hint
    if plan.nhwc:
        x = _to_nchw(ctx, x, n, f"{base}_nchw_in")
    name = f"{base}_nchw" if plan.nhwc else None
    k, s, head = plan.kernel, plan.stride, plan.pad_head
    fits = all(h <= kk // 2 for h, kk in zip(head, k))  # ATen's limit on implicit pads
    ceil_mode: Optional[bool] = None
    if kind != fc.LP and fits:
        if plan.static_pads and plan.symmetric:
            ceil_mode = False
        elif plan.legacy == fc.CAFFE_LEGACY_POOLING and not (kind == fc.AVERAGE and count_include_pad):
            # ATen's ceil mode is Caffe's, except that ATen also drops a last window starting in
            # the tail pad when there is no head pad (only possible with stride > kernel); and
            # Caffe2 divides by the whole kernel with count_include_pad, ATen by the clipped window.
            if all(h > 0 or ss <= kk for h, ss, kk in zip(head, s, k)):
                ceil_mode = True
    if ceil_mode is not None:
        if kind == fc.MAX:
            y = ctx.call(_MAX_POOL[n], x, k, s, head, [1] * n, ceil_mode, name=name)
        else:
            y = ctx.call(_AVG_POOL[n], x, k, s, head, ceil_mode, count_include_pad, name=name)
    elif plan.static_pads:
        y = ctx.call(fc.pool_padded, x, kind, k, s, plan.pad_list(), count_include_pad, p, name=name)
    else:
        y = ctx.call(fc.pool_legacy, x, kind, k, s, head, plan.legacy, count_include_pad, p, name=name)
    return _to_nhwc(ctx, y, n) if plan.nhwc else y


_POOL_ARGS = dict(ignored=CONV_POOL_IGNORED + ("deterministic",), inputs=(1, 1), outputs=(1, 1))


def _register_pools(suffix: str) -> None:
    @register_converter(f"MaxPool{suffix}", args=CONV_POOL_ARGS, **_POOL_ARGS)
    def max_pool(ctx: ConversionContext, op: OpCall):
        """Max over each window (pads never win), NCHW or NHWC, with Caffe2's padding rules."""
        return _pool(ctx, op, fc.MAX)

    @register_converter(
        f"AveragePool{suffix}", args={**CONV_POOL_ARGS, "count_include_pad": False}, **_POOL_ARGS
    )
    def average_pool(ctx: ConversionContext, op: OpCall):
        """Mean over each window: of its input elements, or over the whole kernel with count_include_pad."""
        return _pool(ctx, op, fc.AVERAGE, op.args["count_include_pad"])


for _suffix in ("", "1D", "2D", "3D"):
    _register_pools(_suffix)


@register_converter("LpPool", args={**CONV_POOL_ARGS, "p": 2.0}, **_POOL_ARGS)
def _lp_pool(ctx: ConversionContext, op: OpCall):
    """The p-norm of each window, (sum |x|^p)^(1/p), over 2-D NCHW or NHWC input."""
    if len(conv_pool_plan(op, pooling=True).kernel) != 2:
        raise op.error("LpPool supports only 2-D pooling")
    return _pool(ctx, op, fc.LP, p=op.args["p"])
