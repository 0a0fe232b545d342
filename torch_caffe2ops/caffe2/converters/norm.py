"""Converters for Caffe2's normalisation operators of vision nets (SpatialBN, AffineChannel,
LRN, InstanceNorm, GroupNorm).

``order`` is read at conversion time: the emitted calls carry a fixed ``nhwc`` flag.
"""
from __future__ import annotations

from .. import functional_norm as fn
from ..context import ConversionContext
from ..registry import OpCall, register_converter


def nhwc(op: OpCall) -> bool:
    """Whether the operator's ``order`` is NHWC (Caffe2 accepts only "NCHW" and "NHWC")."""
    order = op.args["order"]
    if order not in ("NCHW", "NHWC"):
        raise op.error(f"argument 'order' = {order!r}: must be \"NCHW\" or \"NHWC\"")
    return order == "NHWC"


@register_converter(
    "SpatialBN",
    args={"is_test": False, "epsilon": 1e-5, "momentum": 0.9, "order": "NCHW", "num_batches": 1},
    inputs=(5, 7),
    outputs=(1, 5),
    constant_inputs=(3, 4, 5, 6),
)
def _spatial_bn(ctx: ConversionContext, op: OpCall):
    """Per-channel batch normalisation; batch statistics and Caffe2's running-average update in training mode.

    An is_test=1 operator starts in evaluation mode (running statistics); ``model.train()``
    switches it to batch statistics, ``model.eval()`` back."""
    is_test, eps, momentum = op.args["is_test"], op.args["epsilon"], op.args["momentum"]
    num_batches = op.args["num_batches"]
    order_nhwc = nhwc(op)
    if is_test and op.num_outputs != 1:
        raise op.error(f"is_test=1 gives 1 output (Y), got {op.num_outputs}")
    if not is_test and op.num_outputs != 5:
        raise op.error(
            f"is_test=0 (training mode) gives 5 outputs (Y, running_mean, running_var, saved_mean, "
            f"saved_inv_std), got {op.num_outputs}; an inference net sets is_test=1"
        )
    if not eps > 0:
        raise op.error(f"argument 'epsilon' = {eps}: must be > 0")
    if not 0.0 <= momentum <= 1.0:
        raise op.error(f"argument 'momentum' = {momentum}: must be in [0, 1]")
    if num_batches < 1:
        raise op.error(f"argument 'num_batches' = {num_batches}: must be >= 1")
    if not is_test and num_batches > 1 and len(op.inputs) != 7:
        raise op.error(
            f"num_batches={num_batches} needs 7 inputs (X, scale, bias, mean, var, batch_mean_sum, "
            f"batch_var_sum), got {len(op.inputs)}"
        )
    aliased = op.input_names[3:5] == op.output_names[1:3]
    if not is_test and not aliased:
        raise op.error(
            "in training mode input 3 (mean) and output 1, input 4 (var) and output 2 must be the same blobs"
        )
    order = "NHWC" if order_nhwc else "NCHW"
    # The batch-statistics inputs only matter with num_batches > 1 in training mode.
    inputs = op.inputs if (not is_test and num_batches > 1) else op.inputs[:5]
    if is_test:
        # An inference net: the layer starts in evaluation mode; `model.train()` switches it to
        # batch statistics (fine-tuning), `model.eval()` back.
        # Without the summed statistics inputs, training mode uses the batch's own moments.
        module = fn.SpatialBN(eps, momentum, order, 1).eval()
        return ctx.call_module(module, *inputs)
    # A training-mode operator in a predict net normalises with batch statistics on every run,
    # as Caffe2 did, until `model.eval()`.
    module = fn.SpatialBNWithStatistics(eps, momentum, order, num_batches)
    node = ctx.call_module(module, *inputs, name="spatial_bn")
    return ctx.unpack(node, 5)


@register_converter("AffineChannel", args={"order": "NCHW", "is_learnable": False}, inputs=(3, 3), outputs=(1, 1))
def _affine_channel(ctx: ConversionContext, op: OpCall):
    """Y = X * scale[c] + bias[c] per channel (Detectron's frozen batch norm unless is_learnable)."""
    # Caffe2 computes no gradient for scale and bias unless is_learnable: they stay parameters
    # of the module but are detached, so an optimiser leaves them as they are.
    learnable = op.args["is_learnable"]
    if learnable and op.input_names[0] == op.output_names[0]:
        raise op.error("is_learnable=1 cannot run in place (output 0 is input 0)")
    x, scale, bias = op.inputs
    return ctx.call(fn.affine_channel, x, scale, bias, nhwc(op), learnable)


@register_converter(
    "LRN", args={"size": 0, "alpha": 0.0, "beta": 0.0, "bias": 1.0, "order": "NCHW"}, inputs=(1, 1), outputs=(1, 2)
)
def _lrn(ctx: ConversionContext, op: OpCall):
    """Local response normalisation across channels: X * (bias + alpha/size * window sum of X^2)^-beta."""
    size = op.args["size"]
    if size <= 0 or size % 2 != 1:
        raise op.error(f"argument 'size' = {size}: must be a positive odd number")
    args = (op.inputs[0], size, op.args["alpha"], op.args["beta"], op.args["bias"], nhwc(op))
    if op.num_outputs == 1:
        return ctx.call(fn.lrn, *args)
    return ctx.unpack(ctx.call(fn.lrn_with_scale, *args, name="lrn"), 2)


@register_converter("InstanceNorm", args={"epsilon": 1e-5, "order": "NCHW"}, inputs=(3, 3), outputs=(1, 3))
def _instance_norm(ctx: ConversionContext, op: OpCall):
    """Normalisation of every channel of every sample over its spatial positions, then scale, bias."""
    eps = op.args["epsilon"]
    if eps < 0:
        raise op.error(f"argument 'epsilon' = {eps}: must be >= 0")
    x, scale, bias = op.inputs
    if op.num_outputs == 1:
        return ctx.call(fn.instance_norm, x, scale, bias, eps, nhwc(op))
    node = ctx.call(fn.instance_norm_with_stats, x, scale, bias, eps, nhwc(op), name="instance_norm")
    return ctx.unpack(node, 3)


@register_converter(
    "GroupNorm", args={"group": 32, "epsilon": 1e-5, "order": "NCHW", "is_test": True}, inputs=(3, 3), outputs=(1, 3)
)
def _group_norm(ctx: ConversionContext, op: OpCall):
    """Normalisation over groups of consecutive channels (and the spatial positions), then gamma, beta."""
    group, eps = op.args["group"], op.args["epsilon"]
    if group <= 0:
        raise op.error(f"argument 'group' = {group}: must be > 0")
    # is_test only makes Caffe2 insist on the two statistics outputs; the values are the same.
    if not op.args["is_test"] and op.num_outputs != 3:
        raise op.error(f"is_test=0 needs 3 outputs (Y, mean, inv_std), got {op.num_outputs}")
    x, gamma, beta = op.inputs
    if op.num_outputs == 1:
        return ctx.call(fn.group_norm, x, gamma, beta, group, eps, nhwc(op))
    node = ctx.call(fn.group_norm_with_stats, x, gamma, beta, group, eps, nhwc(op), name="group_norm")
    return ctx.unpack(node, 3)
