"""Converters for Caffe2's core (non-fill) operators that ranking and vision nets use.

Each converter reproduces the Caffe2 operator's arguments and defaults; the math lives in
:mod:`.functional` so that it can be tested and scripted on its own.
"""
from __future__ import annotations

import torch

from .. import functional as fn
from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter
from ._elementwise import BROADCAST_ARGS, broadcast_axis, register_unary

# --- dense layers -----------------------------------------------------------------------------


@register_converter("FC", args={"axis": 1, "axis_w": 1, "float16_compute": False}, inputs=(3, 3), outputs=(1, 1))
def _fc(ctx: ConversionContext, op: OpCall):
    """Y = X2 @ W2^T + b with X and W flattened at `axis` / `axis_w`."""
    # float16_compute only picks a GPU math mode; the result is the same product.
    x, w, b = op.inputs
    return ctx.call(fn.fc, x, w, b, op.args["axis"], op.args["axis_w"])


@register_converter(
    "FCTransposed", args={"axis": 1, "axis_w": 1, "float16_compute": False}, inputs=(3, 3), outputs=(1, 1)
)
def _fc_transposed(ctx: ConversionContext, op: OpCall):
    """FC with the weight stored as [K, N]."""
    x, w, b = op.inputs
    return ctx.call(fn.fc_transposed, x, w, b, op.args["axis"], op.args["axis_w"])


# --- unary elementwise --------------------------------------------------------------------------


for _type, _target in {
    "Relu": torch.relu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Exp": torch.exp,
    "Log": torch.log,
    "Sqrt": torch.sqrt,
}.items():
    register_unary(_type, _target, f"Elementwise `{_target.__name__}`.")


@register_converter("Copy", inputs=(1, 1), outputs=(1, 1))
def _copy(ctx: ConversionContext, op: OpCall):
    """A copy of the input."""
    return ctx.method("clone", op.inputs[0])


@register_converter("Alias", inputs=(1, 1), outputs=(1, 1))
def _alias(ctx: ConversionContext, op: OpCall):
    """The input itself (the output blob shares its storage)."""
    # The output blob shares the input's storage: the same fx value.
    return op.inputs[0]


@register_converter("StopGradient", inputs=(1, 1), outputs=(1, 1))
def _stop_gradient(ctx: ConversionContext, op: OpCall):
    """The input, cut from autograd."""
    return ctx.method("detach", op.inputs[0])


@register_converter("Scale", args={"scale": 1.0}, inputs=(1, 1), outputs=(1, 1))
def _scale(ctx: ConversionContext, op: OpCall):
    """X * scale."""
    return ctx.call(torch.mul, op.inputs[0], op.args["scale"])


@register_converter("Clip", args={"min": Arg("float"), "max": Arg("float")}, inputs=(1, 1), outputs=(1, 1))
def _clip(ctx: ConversionContext, op: OpCall):
    """X clamped to [min, max]; an absent bound is no bound."""
    # An absent bound is the type's lowest/highest value, i.e. no bound; with neither, Y = X.
    if op.args["min"] is None and op.args["max"] is None:
        return ctx.method("clone", op.inputs[0])
    return ctx.call(torch.clamp, op.inputs[0], op.args["min"], op.args["max"])


@register_converter("Cast", args={"to": Arg("dtype")}, inputs=(1, 1), outputs=(1, 1))
def _cast(ctx: ConversionContext, op: OpCall):
    """X converted to the DataType `to` (number or name)."""
    if op.args["to"] is None:
        raise op.error("argument 'to' is required")
    return ctx.method("to", op.inputs[0], op.args["to"])


# --- binary elementwise (numpy broadcasting, or Caffe2's legacy broadcast=1 rule) ---------------


def _binary(op_type: str, target, direct) -> None:
    @register_converter(
        op_type,
        doc=f"Elementwise {target.__name__}: NumPy broadcasting, or Caffe2's legacy `broadcast=1` from `axis`.",
        args=BROADCAST_ARGS,
        inputs=(2, 2),
        outputs=(1, 1),
    )
    def convert(ctx: ConversionContext, op: OpCall):
        broadcast, axis = op.args["broadcast"], broadcast_axis(op)
        a, b = op.inputs
        if not broadcast and direct is not None:
            # NumPy broadcasting is ATen's own: one call, no wrapper in the generated code.
            return ctx.call(direct, a, b)
        return ctx.call(target, a, b, broadcast, axis)


# Div keeps its wrapper: integer division truncates, as Caffe2's kernel did.
for _type, _target, _direct in (
    ("Add", fn.add, torch.add), ("Sub", fn.sub, torch.sub), ("Mul", fn.mul, torch.mul), ("Div", fn.div, None)
):
    _binary(_type, _target, _direct)


@register_converter("Sum", inputs=(1, None), outputs=(1, 1), data_inputs="all")
def _sum(ctx: ConversionContext, op: OpCall):
    """Elementwise sum of same-shaped inputs."""
    return ctx.call(fn.sum_inputs, list(op.inputs))


# --- normalisation ------------------------------------------------------------------------------


@register_converter("Softmax", args={"axis": 1}, inputs=(1, 1), outputs=(1, 1))
def _softmax(ctx: ConversionContext, op: OpCall):
    """Softmax over all dims from `axis` on, jointly."""
    return ctx.call(fn.softmax, op.inputs[0], op.args["axis"])


@register_converter(
    "LayerNorm", args={"axis": 1, "epsilon": 1e-5, "elementwise_affine": False}, inputs=(1, 3), outputs=(1, 3)
)
def _layer_norm(ctx: ConversionContext, op: OpCall):
    """Layer normalisation over the dims from `axis` on; also returns mean and std."""
    affine = op.args["elementwise_affine"]
    if affine != (len(op.inputs) == 3) or len(op.inputs) == 2:
        raise op.error(f"elementwise_affine={int(affine)} needs "
            f"{'3 inputs (X, gamma, beta)' if affine else '1 input'}, got {len(op.inputs)}"
        )
    gamma, beta = (op.inputs[1], op.inputs[2]) if affine else (None, None)
    node = ctx.call(fn.layer_norm, op.inputs[0], op.args["axis"], op.args["epsilon"], gamma, beta, name="layer_norm")
    return ctx.unpack(node, 3)


# --- shapes -------------------------------------------------------------------------------------


@register_converter("Reshape", args={"shape": Arg("ints")}, inputs=(1, 2), outputs=(1, 2))
def _reshape(ctx: ConversionContext, op: OpCall):
    """Reshape by `shape` or a shape input (0 keeps a dim, -1 infers one); second output old_shape."""
    x = op.inputs[0]
    if len(op.inputs) == 2:
        if op.has("shape"):
            raise op.error("the new shape comes from the input blob; do not also pass `shape`")
        y = ctx.call(fn.reshape_from_tensor, x, op.inputs[1])
        # old_shape takes the integer type of the shape input, which is only known at run time;
        # Caffe2 nets use int64 shape blobs in practice.
        shape_dtype = torch.int64
    else:
        if not op.has("shape"):
            raise op.error("argument `shape` is missing")
        y = ctx.call(fn.reshape, x, op.args["shape"])
        shape_dtype = torch.int64
    names = op.output_names
    old = ctx.call(fn.shape_of, x, shape_dtype, name=names[1] if len(names) > 1 else "old_shape")
    return [y, old]


@register_converter("Transpose", args={"axes": Arg("ints", [])}, inputs=(1, 1), outputs=(1, 1))
def _transpose(ctx: ConversionContext, op: OpCall):
    """Permutes the dims by `axes` (reverses them without)."""
    return ctx.call(fn.transpose, op.inputs[0], op.args["axes"])


@register_converter("Flatten", args={"axis": 1}, inputs=(1, 1), outputs=(1, 1))
def _flatten(ctx: ConversionContext, op: OpCall):
    """2-D [prod(dims[:axis]), prod(dims[axis:])]."""
    return ctx.call(fn.flatten, op.inputs[0], op.args["axis"])


@register_converter("FlattenToVec", inputs=(1, 1), outputs=(1, 1))
def _flatten_to_vec(ctx: ConversionContext, op: OpCall):
    """1-D view of all elements."""
    return ctx.method("reshape", op.inputs[0], -1)


@register_converter("ExpandDims", args={"dims": Arg("ints", [])}, inputs=(1, 1), outputs=(1, 1))
def _expand_dims(ctx: ConversionContext, op: OpCall):
    """Inserts size-1 dims at `dims`."""
    return ctx.call(fn.expand_dims, op.inputs[0], op.args["dims"])


@register_converter("Squeeze", args={"dims": Arg("ints", [])}, inputs=(1, 1), outputs=(1, 1))
def _squeeze(ctx: ConversionContext, op: OpCall):
    """Removes the size-1 dims `dims`."""
    return ctx.call(fn.squeeze, op.inputs[0], op.args["dims"])


@register_converter(
    "Gather", args={"axis": 0, "wrap_indices": Arg("bool")}, inputs=(2, 2), outputs=(1, 1), data_inputs=(1,)
)
def _gather(ctx: ConversionContext, op: OpCall):
    """Gathers slices of DATA along `axis` by INDICES (negative indices wrap where Caffe2 did)."""
    # Without the argument Caffe2 wraps negative indices only when gathering along axis 0.
    wrap = op.args["wrap_indices"] if op.has("wrap_indices") else op.args["axis"] == 0
    return ctx.call(fn.gather, op.inputs[0], op.inputs[1], op.args["axis"], wrap)


# --- scatter ---------------------------------------------------------------------------------------


@register_converter("ScatterAssign", inputs=(3, 3), outputs=(1, 1))
def _scatter_assign(ctx: ConversionContext, op: OpCall):
    """DATA with rows INDICES replaced by SLICES (a later index wins)."""
    # Caffe2 updates DATA in place (the output is DATA's blob); the output blob is bound to the
    # updated copy, which is what every later reader of the blob sees.
    return ctx.call(fn.scatter_assign, *op.inputs)
