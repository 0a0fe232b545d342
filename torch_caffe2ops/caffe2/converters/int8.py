"""Converters for Caffe2's Int8 operators (caffe2/operators/quantized: the QNNPACK and
TensorFlow-Lite kernels, with ``Y_scale`` / ``Y_zero_point`` arguments), the DNNLOWP options of
Int8FC (``axis``, ``axis_w``, ``dequantize_output``, float input), and fbgemm's float16-weight
FC (FbFCPacked, FbGemmPack).

An Int8 blob is a ``torch.quint8`` tensor (Int8GivenTensorFill makes them; Int8GivenIntTensorFill
makes the ``qint32`` biases). Caffe2's zero points are uint8 values in [0, 255] with no offset;
Glow subtracts 128 to store them as int8, which changes nothing in the real values. The math is
in :mod:`..functional_int8`.
"""
from __future__ import annotations

import torch

from .. import functional_int8 as fi
from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter
from ._convpool import CONV_POOL_ARGS, CONV_POOL_IGNORED, conv_pool_plan

_Y = {"Y_scale": 1.0, "Y_zero_point": 0}


def _y(op: OpCall) -> tuple[float, int]:
    scale, zero_point = op.args["Y_scale"], op.args["Y_zero_point"]
    if not 0 <= zero_point <= 255:
        raise op.error(f"argument 'Y_zero_point' = {zero_point} is outside the uint8 range [0, 255]")
    if not scale > 0:
        raise op.error(f"argument 'Y_scale' = {scale} must be positive")
    return scale, zero_point


@register_converter("Int8Quantize", args=dict(_Y), inputs=(1, 1), outputs=(1, 1))
def _quantize(ctx: ConversionContext, op: OpCall):
    """float32 -> Int8: zero_point + nearbyint(x / Y_scale), clamped to [0, 255]."""
    return ctx.call(fi.quantize, op.inputs[0], *_y(op))


@register_converter("Int8Dequantize", inputs=(1, 1), outputs=(1, 1))
def _dequantize(ctx: ConversionContext, op: OpCall):
    """Int8 -> float32: (q - zero_point) * scale."""
    return ctx.call(fi.dequantize, op.inputs[0])


# --- FC ---------------------------------------------------------------------------------------------


def _register_fc(op_type: str, relu: bool) -> None:
    # QNNPACK's Int8FC reads only Y_scale / Y_zero_point (and flattens at 1, which is axis=1);
    # the DNNLOWP engine's also reads axis, axis_w and dequantize_output.
    @register_converter(
        op_type,
        args={**_Y, "axis": 1, "axis_w": 1, "dequantize_output": False},
        ignored=("quantize_channelwise", "constant_weight"),
        inputs=(3, 3),
        outputs=(1, 1),
        constant_inputs=(1, 2),
        doc=("relu(" if relu else "") + "Int8 X2 @ W2^T + bias" + (")" if relu else "")
        + ", requantized to Y_scale/Y_zero_point (or float with dequantize_output).",
    )
    def convert(ctx: ConversionContext, op: OpCall):
        scale, zero_point = _y(op)
        return ctx.call(fi.fc, *op.inputs, op.args["axis"], op.args["axis_w"], scale, zero_point,
                        op.args["dequantize_output"], relu)


_register_fc("Int8FC", False)
_register_fc("Int8FCRelu", True)


@register_converter("FbFCPacked", args={"axis": 1, "axis_w": 1}, inputs=(3, 3), outputs=(1, 1))
def _fb_fc_packed(ctx: ConversionContext, op: OpCall):
    """float32 FC with float16 weights (fbgemm): X2 @ float(W2)^T + b, accumulated in float32."""
    return ctx.call(fi.fc_fp16, *op.inputs, op.args["axis"], op.args["axis_w"])


@register_converter("FbGemmPack", inputs=(1, 1), outputs=(1, 1), constant_inputs=(0,), data_inputs=())
def _fb_gemm_pack(ctx: ConversionContext, op: OpCall):
    """A float FC weight packed for FbFCPacked: its values rounded to float16."""
    return ctx.method("to", op.inputs[0], torch.float16)


# --- Conv -------------------------------------------------------------------------------------------


def _conv_call(ctx: ConversionContext, op: OpCall, relu: bool):
    plan = conv_pool_plan(op)
    if plan.ndim != 2:
        raise op.error(f"kernel {plan.kernel}: Int8Conv supports only 2-D convolution")
    if plan.global_pooling:
        raise op.error("global_pooling is not supported by Int8Conv")
    scale, zero_point = _y(op)
    bias = op.inputs[2] if len(op.inputs) == 3 else None
    # Caffe2 refuses NCHW (QNNPACK is NHWC only); NCHW is taken with the float Conv's layouts.
    return ctx.call(
        fi.conv, op.inputs[0], op.inputs[1], bias, plan.kernel, plan.stride, plan.dilation, plan.pad_list(),
        plan.pad_head, plan.legacy, plan.group, plan.nhwc, scale, zero_point, relu,
    )


_CONV_KW = dict(
    args={**CONV_POOL_ARGS, **_Y},
    # quantize_groupwise: DNNLOWP's per-group quantization of a float filter; an Int8 filter
    # carries one scale, so it cannot change the result here.
    ignored=CONV_POOL_IGNORED + ("quantize_groupwise",),
    inputs=(2, 3),
    outputs=(1, 1),
    constant_inputs=(1, 2),
)


@register_converter("Int8Conv", **_CONV_KW)
def _int8_conv(ctx: ConversionContext, op: OpCall):
    """2-D Int8 convolution (+ bias), NHWC, requantized to Y_scale/Y_zero_point."""
    return _conv_call(ctx, op, False)


@register_converter("Int8ConvRelu", **_CONV_KW)
def _int8_conv_relu(ctx: ConversionContext, op: OpCall):
    """Int8Conv whose output is clamped below at Y_zero_point (a real zero)."""
    return _conv_call(ctx, op, True)


# --- elementwise --------------------------------------------------------------------------------------


def _register_add(op_type: str, relu: bool) -> None:
    doc = (
        f"{'relu(' if relu else ''}A + B{')' if relu else ''} of two same-shaped Int8 tensors, "
        "requantized to Y_scale/Y_zero_point (TensorFlow Lite's fixed-point addition)."
    )

    @register_converter(op_type, args=dict(_Y), inputs=(2, 2), outputs=(1, 1), data_inputs="all", doc=doc)
    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(fi.add, op.inputs[0], op.inputs[1], *_y(op), relu)


for _type, _relu in (("Int8Add", False), ("Int8Sum", False), ("Int8AddRelu", True), ("Int8SumRelu", True)):
    _register_add(_type, _relu)


@register_converter("Int8Relu", args=dict(_Y), inputs=(1, 1), outputs=(1, 1))
def _relu(ctx: ConversionContext, op: OpCall):
    """Int8 bytes clamped below at the zero point; Y_scale/Y_zero_point must be the input's."""
    return ctx.call(fi.relu, op.inputs[0], op.args["Y_scale"], op.args["Y_zero_point"])


@register_converter("Int8Sigmoid", args=dict(_Y), inputs=(1, 1), outputs=(1, 1))
def _sigmoid(ctx: ConversionContext, op: OpCall):
    """Int8 sigmoid through QNNPACK's 256-entry table; the output scale is 1/256, zero point 0."""
    return ctx.call(fi.sigmoid, op.inputs[0], op.args["Y_scale"], op.args["Y_zero_point"])


# --- pooling ------------------------------------------------------------------------------------------


def _pool_call(ctx: ConversionContext, op: OpCall, target, relu: bool):
    plan = conv_pool_plan(op, pooling=True)
    if plan.ndim != 2:
        raise op.error(f"kernel {plan.kernel}: Int8 pooling supports only 2-D windows")
    if not plan.nhwc:
        raise op.error("argument 'order' = 'NCHW': Caffe2's Int8 pooling supports only NHWC")
    return ctx.call(
        target, op.inputs[0], plan.kernel, plan.stride, plan.pad_list(), plan.pad_head, plan.legacy,
        plan.global_pooling, op.args["Y_scale"], op.args["Y_zero_point"], relu,
    )


_POOL_KW = dict(args={**CONV_POOL_ARGS, **_Y}, ignored=CONV_POOL_IGNORED, inputs=(1, 1), outputs=(1, 1))


@register_converter("Int8MaxPool", **_POOL_KW)
def _max_pool(ctx: ConversionContext, op: OpCall):
    """Largest Int8 byte of each window (NHWC); Y_scale/Y_zero_point must be the input's."""
    return _pool_call(ctx, op, fi.max_pool, False)


@register_converter("Int8MaxPoolRelu", **_POOL_KW)
def _max_pool_relu(ctx: ConversionContext, op: OpCall):
    """Int8MaxPool clamped below at the zero point."""
    return _pool_call(ctx, op, fi.max_pool, True)


@register_converter("Int8AveragePool", **_POOL_KW)
def _average_pool(ctx: ConversionContext, op: OpCall):
    """Int8 window average (NHWC, pads count, divisor the kernel), requantized to Y_scale/Y_zero_point."""
    return _pool_call(ctx, op, fi.average_pool, False)


@register_converter("Int8AveragePoolRelu", **_POOL_KW)
def _average_pool_relu(ctx: ConversionContext, op: OpCall):
    """Int8AveragePool clamped below at Y_zero_point."""
    return _pool_call(ctx, op, fi.average_pool, True)


# --- layout ---------------------------------------------------------------------------------------------


@register_converter("Int8Reshape", args={**_Y, "shape": Arg("ints")}, inputs=(1, 2), outputs=(1, 2))
def _reshape(ctx: ConversionContext, op: OpCall):
    """Reshape of an Int8 tensor by `shape` or a shape input; second output old_shape."""
    x = op.inputs[0]
    scale, zero_point = op.args["Y_scale"], op.args["Y_zero_point"]
    if len(op.inputs) == 2:
        if op.has("shape"):
            raise op.error("the new shape comes from the input blob; do not also pass `shape`")
        y = ctx.call(fi.reshape_from_tensor, x, op.inputs[1], scale, zero_point)
    else:
        if not op.has("shape"):
            raise op.error("argument `shape` is missing")
        shape = list(op.args["shape"])
        if sum(1 for s in shape if s == -1) > 1 or any(s < -1 for s in shape):
            raise op.error(f"argument 'shape' = {shape}: at most one -1 and no other negative sizes")
        y = ctx.call(fi.reshape, x, shape, scale, zero_point)
    if op.num_outputs == 1:
        return y
    old = ctx.call(fi.shape_of, x, name=f"{ctx.name_hint}_old_shape")
    return [y, old]


@register_converter("Int8Flatten", args={**_Y, "axis": 1}, inputs=(1, 1), outputs=(1, 1))
def _flatten(ctx: ConversionContext, op: OpCall):
    """Int8 tensor as 2-D [prod(dims[:axis]), prod(dims[axis:])]."""
    return ctx.call(fi.flatten, op.inputs[0], op.args["axis"], op.args["Y_scale"], op.args["Y_zero_point"])


@register_converter("Int8Concat", args={**_Y, "axis": Arg("int"), "order": Arg("str")}, inputs=(1, None),
                    outputs=(1, 1), data_inputs="all")
def _concat(ctx: ConversionContext, op: OpCall):
    """Int8 tensors joined along `axis` (default by `order`: 3 for NHWC, 1 for NCHW, else 0), first input's qparams."""
    order = op.args["order"]
    default = 3 if order == "NHWC" else (1 if order == "NCHW" else 0)
    axis = op.args["axis"] if op.has("axis") else default
    if order in ("NHWC", "NCHW") and not 0 <= axis < 4:
        raise op.error(f"argument 'axis' = {axis} must lie in [0, 4) with order {order}")
    return ctx.call(fi.concat, list(op.inputs), axis, op.args["Y_scale"], op.args["Y_zero_point"])
