"""Converters for Caffe2's math operators that ranking nets use: comparisons and logic,
n-ary max/min/mean, elementwise functions, reductions, TopK/ArgMax, Slice/Tile/Shape, products
and norms. Semantics from caffe2/operators/*; the math is in :mod:`..functional_math`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import functional_math as fm
from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter
from ._elementwise import BROADCAST_ARGS, broadcast_axis, register_unary



def _binary(op_type: str, plain, legacy, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        axis = broadcast_axis(op)
        a, b = op.inputs
        if op.args["broadcast"]:
            return ctx.call(legacy, a, b, axis)
        # broadcast=0: numpy-style broadcasting, as Caffe2's elementwise operators do now.
        return ctx.call(plain, a, b)

    convert.__doc__ = doc
    register_converter(op_type, args=dict(BROADCAST_ARGS), inputs=(2, 2), outputs=(1, 1), data_inputs="all")(convert)


for _type, _plain, _legacy, _doc in (
    ("EQ", torch.eq, fm.eq, "A == B elementwise (bool), numpy or legacy broadcast."),
    ("NE", torch.ne, fm.ne, "A != B elementwise (bool), numpy or legacy broadcast."),
    ("LT", torch.lt, fm.lt, "A < B elementwise (bool), numpy or legacy broadcast."),
    ("LE", torch.le, fm.le, "A <= B elementwise (bool), numpy or legacy broadcast."),
    ("GT", torch.gt, fm.gt, "A > B elementwise (bool), numpy or legacy broadcast."),
    ("GE", torch.ge, fm.ge, "A >= B elementwise (bool), numpy or legacy broadcast."),
    ("And", torch.logical_and, fm.logical_and, "Logical and of two bool tensors, numpy or legacy broadcast."),
    ("Or", torch.logical_or, fm.logical_or, "Logical or of two bool tensors, numpy or legacy broadcast."),
    ("Xor", torch.logical_xor, fm.logical_xor, "Logical xor of two bool tensors, numpy or legacy broadcast."),
):
    _binary(_type, _plain, _legacy, _doc)


@register_converter("Where", args={"broadcast_on_rows": False}, inputs=(3, 3), outputs=(1, 1), data_inputs="all")
def _where(ctx: ConversionContext, op: OpCall):
    """X where the condition holds, else Y (the condition per element, or per row)."""
    return ctx.call(fm.where, *op.inputs, op.args["broadcast_on_rows"])


# --- n-ary --------------------------------------------------------------------------------------


@register_converter("Max", inputs=(1, None), outputs=(1, 1), data_inputs="all")
def _max(ctx: ConversionContext, op: OpCall):
    """Elementwise maximum of same-shaped inputs."""
    return ctx.call(fm.max_inputs, list(op.inputs))


@register_converter("Min", inputs=(1, None), outputs=(1, 1), data_inputs="all")
def _min(ctx: ConversionContext, op: OpCall):
    """Elementwise minimum of same-shaped inputs."""
    return ctx.call(fm.min_inputs, list(op.inputs))


@register_converter("Mean", inputs=(1, None), outputs=(1, 1), data_inputs="all")
def _mean(ctx: ConversionContext, op: OpCall):
    """Elementwise mean of same-shaped inputs."""
    return ctx.call(fm.mean_inputs, list(op.inputs))


# --- unary --------------------------------------------------------------------------------------


for _type, _target, _doc in (
    ("Abs", torch.abs, "|X|."),
    ("Sqr", fm.sqr, "X * X."),
    ("Negative", torch.neg, "-X."),
    ("Sign", torch.sign, "1, 0 or -1 by the sign of X."),
    ("Log1p", torch.log1p, "log(1 + X)."),
    ("Cos", torch.cos, "cos(X)."),
    ("Sin", torch.sin, "sin(X)."),
    ("Ceil", torch.ceil, "X rounded up."),
    ("Floor", torch.floor, "X rounded down."),
    ("Reciprocal", torch.reciprocal, "1 / X."),
    ("Rsqrt", torch.rsqrt, "1 / sqrt(X)."),
    ("Cube", fm.cube, "X * X * X."),
    ("Not", torch.logical_not, "Logical not of a bool tensor."),
    ("Swish", F.silu, "X * sigmoid(X)."),
):
    register_unary(_type, _target, _doc)


@register_converter("Gelu", args={"fast_gelu": False}, inputs=(1, 1), outputs=(1, 1))
def _gelu(ctx: ConversionContext, op: OpCall):
    """GELU, exact (erf) or with the tanh approximation (fast_gelu)."""
    # Glow's importer always uses the tanh form; Caffe2's default (fast_gelu=0) is the erf form.
    if op.args["fast_gelu"]:
        return ctx.call(F.gelu, op.inputs[0], approximate="tanh")
    return ctx.call(F.gelu, op.inputs[0])


@register_converter("Logit", args={"eps": 1e-6}, inputs=(1, 1), outputs=(1, 1))
def _logit(ctx: ConversionContext, op: OpCall):
    """log(x / (1 - x)) of X clamped to [eps, 1 - eps]."""
    return ctx.call(torch.logit, op.inputs[0], op.args["eps"])


@register_converter("ReplaceNaN", args={"value": 0.0}, inputs=(1, 1), outputs=(1, 1))
def _replace_nan(ctx: ConversionContext, op: OpCall):
    """X with every NaN replaced by ``value``."""
    return ctx.call(fm.replace_nan, op.inputs[0], op.args["value"])


@register_converter("Mod", args={"divisor": Arg("int"), "sign_follow_divisor": False}, inputs=(1, 1), outputs=(1, 1))
def _mod(ctx: ConversionContext, op: OpCall):
    """Integer remainder by ``divisor``, with the dividend's sign (or the divisor's)."""
    divisor = op.args["divisor"]
    if not divisor:
        raise op.error(f"argument 'divisor' must be a non-zero integer, got {divisor}")
    # C++ % keeps the dividend's sign (fmod); sign_follow_divisor adds the divisor to a
    # remainder of the other sign (Python's %, i.e. remainder).
    target = torch.remainder if op.args["sign_follow_divisor"] else torch.fmod
    return ctx.call(target, op.inputs[0], divisor)


@register_converter("Pow", args={"exponent": Arg("float"), **BROADCAST_ARGS}, inputs=(1, 2), outputs=(1, 1), data_inputs="all")
def _pow(ctx: ConversionContext, op: OpCall):
    """X to the power ``exponent``, or to a tensor exponent (same shape or legacy broadcast)."""
    if len(op.inputs) == 1:
        if not op.has("exponent"):
            raise op.error("with one input the argument 'exponent' is required")
        return ctx.call(torch.pow, op.inputs[0], op.args["exponent"])
    axis = broadcast_axis(op)
    return ctx.call(fm.pow_tensor, op.inputs[0], op.inputs[1], op.args["broadcast"], axis)


# --- products and norms -------------------------------------------------------------------------


@register_converter("DotProduct", inputs=(2, 2), outputs=(1, 1), data_inputs="all")
def _dot_product(ctx: ConversionContext, op: OpCall):
    """Row-wise dot product of two same-shaped tensors ([N])."""
    return ctx.call(fm.dot_product, *op.inputs)


@register_converter(
    "MatMul", args={"axis_a": 1, "axis_b": 1, "trans_a": False, "trans_b": False}, inputs=(2, 2), outputs=(1, 1),
    data_inputs="all",
)
def _matmul(ctx: ConversionContext, op: OpCall):
    """2-D product of A and B flattened at axis_a/axis_b, optionally transposed."""
    return ctx.call(
        fm.matmul, op.inputs[0], op.inputs[1], op.args["axis_a"], op.args["axis_b"],
        op.args["trans_a"], op.args["trans_b"],
    )


@register_converter("LpNorm", args={"p": 2, "average": False}, inputs=(1, 1), outputs=(1, 1))
def _lp_norm(ctx: ConversionContext, op: OpCall):
    """[1]: sum |x| (p=1) or sum x^2 (p=2, no square root), optionally averaged."""
    if op.args["p"] not in (1, 2):
        raise op.error(f"argument 'p' must be 1 or 2, got {op.args['p']}")
    return ctx.call(fm.lp_norm, op.inputs[0], op.args["p"], op.args["average"])


@register_converter("RMSNorm", args={"axis": 1, "eps": 0.0}, inputs=(3, 3), outputs=(1, 2))
def _rms_norm(ctx: ConversionContext, op: OpCall):
    """Root-mean-square normalisation over the dims from ``axis``, scaled and shifted; also rrms."""
    node = ctx.call(fm.rms_norm, *op.inputs, op.args["axis"], op.args["eps"], name="rms_norm")
    return ctx.unpack(node, 2)


@register_converter("Normalize", args={"axis": -1}, inputs=(1, 1), outputs=(1, 1))
def _normalize(ctx: ConversionContext, op: OpCall):
    """X divided by its L2 norm along ``axis`` (at least 1e-12)."""
    return ctx.call(fm.normalize, op.inputs[0], op.args["axis"])


# --- reductions ---------------------------------------------------------------------------------


def _reduce(op_type: str, target, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(target, op.inputs[0], op.args["axes"], op.args["keepdims"])

    convert.__doc__ = doc
    register_converter(op_type, args={"axes": Arg("ints", []), "keepdims": True}, inputs=(1, 1), outputs=(1, 1))(
        convert
    )


for _type, _target, _doc in (
    ("ReduceSum", fm.reduce_sum, "Sum over ``axes`` (all dims when empty)."),
    ("ReduceMean", fm.reduce_mean, "Mean over ``axes`` (all dims when empty)."),
    ("ReduceMax", fm.reduce_max, "Maximum over ``axes`` (all dims when empty)."),
    ("ReduceMin", fm.reduce_min, "Minimum over ``axes`` (all dims when empty)."),
    ("ReduceL1", fm.reduce_l1, "Sum of |x| over ``axes`` (all dims when empty)."),
    ("ReduceL2", fm.reduce_l2, "sqrt of the sum of x^2 over ``axes`` (all dims when empty)."),
):
    _reduce(_type, _target, _doc)


def _front_back(op_type: str, front: bool, kind: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        lengths = op.inputs[1] if len(op.inputs) == 2 else None
        n = op.args["num_reduce_dim"]
        if lengths is not None and n != 1:
            raise op.error(f"given lengths, num_reduce_dim must be 1, got {n}")
        if kind == "max":
            return ctx.call(fm.reduce_front_back_max, op.inputs[0], lengths, n, front, op_type)
        return ctx.call(fm.reduce_front_back_sum, op.inputs[0], lengths, n, front, kind == "mean", op_type)

    where = "first" if front else "last"
    convert.__doc__ = f"{kind.capitalize()} over the {where} ``num_reduce_dim`` dims (optionally the first lengths[i] entries)."
    register_converter(
        op_type, args={"num_reduce_dim": 1}, inputs=(1, 2), outputs=(1, 1), constant_inputs=(1,)
    )(convert)


for _front in (True, False):
    for _kind in ("sum", "mean", "max"):
        _front_back(f"Reduce{'Front' if _front else 'Back'}{_kind.capitalize()}", _front, _kind)


# --- selection ----------------------------------------------------------------------------------


@register_converter("TopK", args={"k": -1, "axis": -1}, inputs=(1, 1), outputs=(2, 3))
def _top_k(ctx: ConversionContext, op: OpCall):
    """The k largest values along ``axis``, their indices (int64) and flattened indices."""
    k, axis = op.args["k"], op.args["axis"]
    if k < 1:
        raise op.error(f"argument 'k' must be >= 1, got {k}")
    if axis < -1:
        raise op.error(f"argument 'axis' must be -1 or non-negative, got {axis}")
    node = ctx.call(fm.top_k, op.inputs[0], k, axis, name="top_k")
    return ctx.unpack(node, 3)


def _arg(op_type: str, target, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        if op.args["axis"] < -1:
            raise op.error(f"argument 'axis' must be -1 or non-negative, got {op.args['axis']}")
        return ctx.call(target, op.inputs[0], op.args["axis"], op.args["keepdims"])

    convert.__doc__ = doc
    register_converter(op_type, args={"axis": -1, "keepdims": True}, inputs=(1, 1), outputs=(1, 1))(convert)


_arg("ArgMax", fm.arg_max, "Index (int64) of the largest value along ``axis`` (first on ties).")
_arg("ArgMin", fm.arg_min, "Index (int64) of the smallest value along ``axis`` (first on ties).")


# --- shapes -------------------------------------------------------------------------------------


@register_converter(
    "Slice", args={"starts": Arg("ints"), "ends": Arg("ints")}, inputs=(1, 3), outputs=(1, 1), constant_inputs=(1, 2)
)
def _slice(ctx: ConversionContext, op: OpCall):
    """A sub-block of X along one dim (-1 as an end means the end of the dim)."""
    if len(op.inputs) == 2:
        raise op.error("give both starts and ends as inputs, or neither")
    if len(op.inputs) == 3:
        if op.has("starts") or op.has("ends"):
            raise op.error("starts/ends come from the inputs; do not also pass them as arguments")
        return ctx.call(fm.slice_from_tensors, *op.inputs)
    starts = op.args["starts"] if op.has("starts") else []
    ends = op.args["ends"] if op.has("ends") else []
    if len(starts) != len(ends):
        raise op.error(f"starts {starts} and ends {ends} differ in length")
    return ctx.call(fm.slice_dims, op.inputs[0], starts, ends)


@register_converter("Tile", args={"tiles": 1, "axis": 0}, inputs=(1, 3), outputs=(1, 1), constant_inputs=(1, 2))
def _tile(ctx: ConversionContext, op: OpCall):
    """X repeated ``tiles`` times along ``axis`` (or with both from input tensors)."""
    if len(op.inputs) > 1:
        axis = op.inputs[2] if len(op.inputs) == 3 else None
        return ctx.call(fm.tile_from_tensors, op.inputs[0], op.inputs[1], axis, op.args["axis"])
    if op.args["tiles"] < 0:
        raise op.error(f"argument 'tiles' must be non-negative, got {op.args['tiles']}")
    return ctx.call(fm.tile, op.inputs[0], op.args["tiles"], op.args["axis"])


@register_converter("Shape", args={"axes": Arg("ints", [])}, inputs=(1, 1), outputs=(1, 1))
def _shape(ctx: ConversionContext, op: OpCall):
    """The input's shape (or the dims in ``axes``) as a 1-D int64 tensor."""
    return ctx.call(fm.shape, op.inputs[0], op.args["axes"])
