"""Elementwise operators, registered one way: unary ones as one call of a function, and the
arguments of the binary ones (arithmetic, comparisons, logic) parsed once: NumPy broadcasting by
default, or the legacy ``broadcast=1`` rule that lines B up with A's dims from ``axis`` (or from
the letter ``axis_str`` of ``order``)."""
from __future__ import annotations

import sys

from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter

BROADCAST_ARGS = {"broadcast": False, "axis": -1, "axis_str": Arg("str"), "order": "NCHW"}


def broadcast_axis(op: OpCall) -> int:
    """The legacy-broadcast axis, with Caffe2's checks of the argument combination."""
    axis = op.args["axis"]
    if op.has("axis_str"):
        if op.has("axis"):
            raise op.error("axis and axis_str cannot be used together")
        axis_str, order = op.args["axis_str"], op.args["order"]
        if len(axis_str) != 1 or axis_str not in order:
            raise op.error(f"axis_str {axis_str!r} is not a letter of order {order!r}")
        axis = order.index(axis_str)
    if not op.args["broadcast"] and (op.has("axis") or op.has("axis_str")):
        raise op.error("do not specify axis or axis_str if broadcast is not enabled")
    return axis


def register_unary(op_type: str, target, doc: str, **kwargs) -> None:
    """Register ``op_type`` as ``target(X, **kwargs)`` (no arguments read)."""

    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(target, op.inputs[0], **kwargs)

    # The docs group types by the module that registers them, not by this helper's.
    convert.__module__ = sys._getframe(1).f_globals["__name__"]
    register_converter(op_type, inputs=(1, 1), outputs=(1, 1), doc=doc)(convert)
