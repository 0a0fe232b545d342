"""Converters for Caffe2's parametrised activations and the layout operators of vision nets
(PRelu, LeakyRelu, Elu, Selu, Softplus, ReluN, ElementwiseLinear, ChannelShuffle,
ResizeNearest, NCHW2NHWC, NHWC2NCHW)."""
from __future__ import annotations

import struct

import torch
import torch.nn.functional as F

from .. import functional_norm as fn
from ..context import ConversionContext
from ..registry import OpCall, register_converter
from .norm import nhwc

# --- activations ----------------------------------------------------------------------------------


@register_converter("PRelu", args={"order": "NCHW"}, inputs=(2, 2), outputs=(1, 1))
def _prelu(ctx: ConversionContext, op: OpCall):
    """x if x > 0 else slope * x; one shared slope or one per channel."""
    return ctx.call(fn.prelu, op.inputs[0], op.inputs[1], nhwc(op))


@register_converter("LeakyRelu", args={"alpha": 0.01}, inputs=(1, 1), outputs=(1, 1))
def _leaky_relu(ctx: ConversionContext, op: OpCall):
    """x if x >= 0 else alpha * x."""
    return ctx.call(F.leaky_relu, op.inputs[0], op.args["alpha"])


@register_converter("Elu", args={"alpha": 1.0}, inputs=(1, 1), outputs=(1, 1))
def _elu(ctx: ConversionContext, op: OpCall):
    """x if x >= 0 else alpha * (exp(x) - 1)."""
    return ctx.call(F.elu, op.inputs[0], op.args["alpha"])


@register_converter(
    "Selu", args={"alpha": 1.6732632423543772848170429916717, "scale": 1.0507009873554804934193349852946},
    inputs=(1, 1), outputs=(1, 1),
)
def _selu(ctx: ConversionContext, op: OpCall):
    """scale * (x if x > 0 else alpha * (exp(x) - 1))."""
    alpha, scale = op.args["alpha"], op.args["scale"]
    if not scale > 1.0:
        raise op.error(f"argument 'scale' = {scale}: must be > 1")
    return ctx.call(fn.selu, op.inputs[0], alpha, scale)


@register_converter("Softplus", inputs=(1, 1), outputs=(1, 1))
def _softplus(ctx: ConversionContext, op: OpCall):
    """log(1 + exp(x))."""
    # Caffe2 evaluates log(exp(x) + 1) literally, which overflows to inf for x > ~88.7 in float32;
    # torch's softplus returns x there (the correctly rounded value). Below that they agree.
    return ctx.call(F.softplus, op.inputs[0])


@register_converter("ReluN", args={"n": 6.0}, inputs=(1, 1), outputs=(1, 1))
def _relu_n(ctx: ConversionContext, op: OpCall):
    """min(max(x, 0), n) (n = 6: ReLU6)."""
    n = op.args["n"]
    if not n > 0:
        raise op.error(f"argument 'n' = {n}: must be > 0")
    return ctx.call(torch.clamp, op.inputs[0], 0.0, n)


@register_converter("ElementwiseLinear", args={"axis": 1}, inputs=(3, 3), outputs=(1, 1))
def _elementwise_linear(ctx: ConversionContext, op: OpCall):
    """Y[n, d] = X[n, d] * a[d] + b[d], X seen as 2-D [prod(dims[:axis]), prod(dims[axis:])]."""
    return ctx.call(fn.elementwise_linear, *op.inputs, op.args["axis"])


# --- layout -------------------------------------------------------------------------------------


@register_converter("ChannelShuffle", args={"group": 1, "order": "NCHW"}, inputs=(1, 1), outputs=(1, 1))
def _channel_shuffle(ctx: ConversionContext, op: OpCall):
    """ShuffleNet's channel shuffle: channels viewed as [group, C/group] and transposed."""
    group = op.args["group"]
    if group <= 0:
        raise op.error(f"argument 'group' = {group}: must be > 0")
    return ctx.call(fn.channel_shuffle, op.inputs[0], group, nhwc(op))


@register_converter("NCHW2NHWC", inputs=(1, 1), outputs=(1, 1))
def _nchw2nhwc(ctx: ConversionContext, op: OpCall):
    """Moves the channel axis last: N C D1..Dk -> N D1..Dk C."""
    return ctx.call(fn.nchw2nhwc, op.inputs[0])


@register_converter("NHWC2NCHW", inputs=(1, 1), outputs=(1, 1))
def _nhwc2nchw(ctx: ConversionContext, op: OpCall):
    """Moves the channel axis to position 1: N D1..Dk C -> N C D1..Dk."""
    return ctx.call(fn.nhwc2nchw, op.inputs[0])


def _float32(value: float) -> float:
    """The float32 value Caffe2 stores a float argument in."""
    return struct.unpack("f", struct.pack("f", value))[0]


@register_converter(
    "ResizeNearest",
    args={"width_scale": 1.0, "height_scale": 1.0, "order": "NCHW"},
    inputs=(1, 2),
    outputs=(1, 1),
    constant_inputs=(1,),
)
def _resize_nearest(ctx: ConversionContext, op: OpCall):
    """Nearest-neighbour upsampling by float scales: size int(in * scale), source int(out / scale)."""
    order_nhwc = nhwc(op)
    if len(op.inputs) == 2:
        # The scales input overrides the arguments (ONNX Upsample's form).
        return ctx.call(fn.resize_nearest_scales, op.inputs[0], op.inputs[1], order_nhwc)
    h, w = _float32(op.args["height_scale"]), _float32(op.args["width_scale"])
    for name, value in (("height_scale", h), ("width_scale", w)):
        if not value > 0:
            raise op.error(f"argument {name!r} = {value}: must be > 0")
    return ctx.call(fn.resize_nearest, op.inputs[0], h, w, order_nhwc)
