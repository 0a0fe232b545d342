"""Converters for the Caffe2 operator types this library implements: each maps onto its
``torch.ops.caffe2ops`` op with the same arguments and Caffe2 defaults.

The targets are the op packets (``torch.ops.caffe2ops.concat``, not ``.default``) so that the
generated code is accepted by TorchScript as well as by export and compile.
"""
from __future__ import annotations

import torch

import torch_caffe2ops  # noqa: F401  (registers torch.ops.caffe2ops.*)
from torch_caffe2ops import nn as c2nn

from .. import functional as fn
from ..context import ConversionContext, sanitize
from ..registry import Arg, OpCall, register_converter

_ops = torch.ops.caffe2ops


def _flag(op: OpCall, name: str) -> bool:
    return bool(op.args[name])


@register_converter("BatchGather", args={"match_outer": False}, inputs=(2, 2), outputs=(1, 1))
def _batch_gather(ctx: ConversionContext, op: OpCall):
    """Gathers entries of dim 1 for every batch row (`match_outer`: one index row per outer row)."""
    return ctx.call(_ops.batch_gather, op.inputs[0], op.inputs[1], _flag(op, "match_outer"))


@register_converter("BatchPermutation", inputs=(2, 2), outputs=(1, 1))
def _batch_permutation(ctx: ConversionContext, op: OpCall):
    """Reorders the rows of X by a permutation."""
    return ctx.call(_ops.batch_permutation, *op.inputs)


@register_converter(
    "BatchSparseToDense", args={"dense_last_dim": -1, "default_value": 0.0}, inputs=(3, 4), outputs=(1, 1)
)
def _batch_sparse_to_dense(ctx: ConversionContext, op: OpCall):
    """Per-row sparse (lengths, indices, values) to a dense matrix filled with `default_value`."""
    shape_like = op.inputs[3] if len(op.inputs) == 4 else None
    return ctx.call(
        _ops.batch_sparse_to_dense, op.inputs[0], op.inputs[1], op.inputs[2], shape_like,
        op.args["dense_last_dim"], op.args["default_value"],
    )


@register_converter("BatchDenseToSparse", inputs=(3, 3), outputs=(1, 1))
def _batch_dense_to_sparse(ctx: ConversionContext, op: OpCall):
    """Reads the dense values at per-row sparse indices."""
    return ctx.call(_ops.batch_dense_to_sparse, *op.inputs)


@register_converter(
    "BatchMatMul",
    args={"trans_a": False, "trans_b": False, "broadcast": False},
    ignored=("use_scratch",),  # an old scratch-buffer switch; no effect on the result
    inputs=(2, 2),
    outputs=(1, 1),
)
def _batch_mat_mul(ctx: ConversionContext, op: OpCall):
    """Batched matrix product with optional transposes and NumPy-style broadcasting."""
    return ctx.call(
        _ops.batch_mat_mul, op.inputs[0], op.inputs[1],
        _flag(op, "trans_a"), _flag(op, "trans_b"), _flag(op, "broadcast"),
    )


@register_converter("BatchMoments", args={"order": "NCHW"}, inputs=(1, 1), outputs=(1, 2))
def _batch_moments(ctx: ConversionContext, op: OpCall):
    """Per-channel mean and second moment E[x^2] (NCHW or NHWC)."""
    node = ctx.call(_ops.batch_moments, op.inputs[0], op.args["order"], name="batch_moments")
    return ctx.unpack(node, op.num_outputs)


@register_converter("BatchBoxCox", args={"min_block_size": 256}, constant_inputs=(-1,), inputs=(3, 3), outputs=(1, 1))
def _batch_box_cox(ctx: ConversionContext, op: OpCall):
    """Box-Cox transform per column with lambda1/lambda2."""
    return ctx.call(_ops.batch_box_cox, *op.inputs, op.args["min_block_size"])


@register_converter("BatchBucketize", constant_inputs=(-1,), inputs=(4, 4), outputs=(1, 1))
def _batch_bucketize(ctx: ConversionContext, op: OpCall):
    """Bucket ids of selected feature columns against per-feature boundaries."""
    # Caffe2's real input order: FEATURE, INDICES, BOUNDARIES, LENGTHS.
    return ctx.call(_ops.batch_bucketize, *op.inputs)


@register_converter("BatchBucketOneHot", constant_inputs=(-1,), inputs=(3, 3), outputs=(1, 1))
def _batch_bucket_one_hot(ctx: ConversionContext, op: OpCall):
    """One-hot of bucketised features against per-feature boundaries."""
    return ctx.call(_ops.batch_bucket_one_hot, *op.inputs)


@register_converter("ConcatBatchMatMulBatchGatherOp", inputs=(2, None), outputs=(1, 1), data_inputs="rest")
def _concat_bmm_bg(ctx: ConversionContext, op: OpCall):
    """Concatenated pairwise dot products of feature blocks, gathered by indices."""
    return ctx.call(_ops.concat_batch_mat_mul_batch_gather, op.inputs[0], list(op.inputs[1:]))


def _concat(op_type: str, target) -> None:
    @register_converter(
        op_type,
        doc="Concatenation along `axis` (or the channel axis of `order`), optionally stacked (`add_axis`).",
        args={"axis": Arg("int"), "order": Arg("str"), "add_axis": False},
        inputs=(1, None),
        outputs=(1, 2),
        data_inputs="all",
    )
    def convert(ctx: ConversionContext, op: OpCall):
        # Presence matters (HasArgument): an absent axis comes from order, default "NCHW" -> 1.
        if not op.has("order"):
            # An explicit axis (or the default 1) is torch.cat's (torch.stack's with add_axis)
            # result for the inputs Caffe2 accepts: one ATen call; split_info only when read.
            axis = op.args["axis"] if op.has("axis") else 1
            add_axis = _flag(op, "add_axis")
            out = ctx.call(torch.stack if add_axis else torch.cat, list(op.inputs), axis, name=ctx.name_hint)
            if op.num_outputs == 1:
                return out
            info = ctx.call(fn.split_info, list(op.inputs), axis, add_axis, name=sanitize(op.output_names[1]))
            return [out, info]
        node = ctx.call(
            target, list(op.inputs), op.args["axis"], op.args["order"], _flag(op, "add_axis"),
            name=op_type.lower(),
        )
        return ctx.unpack(node, op.num_outputs)


_concat("Concat", _ops.concat)
_concat("DepthConcat", _ops.depth_concat)


def _split(op_type: str, target) -> None:
    @register_converter(
        op_type,
        doc="Splits along `axis` (or `order`'s channel axis) by `split` or a sizes input; equal parts without.",
        args={"split": Arg("ints", []), "axis": Arg("int"), "order": Arg("str"), "add_axis": False},
        inputs=(1, 2),
        outputs=(1, None),
    )
    def convert(ctx: ConversionContext, op: OpCall):
        split_tensor = op.inputs[1] if len(op.inputs) == 2 else None
        node = ctx.call(
            target, op.inputs[0], split_tensor, op.args["split"], op.args["axis"], op.args["order"],
            _flag(op, "add_axis"), op.num_outputs, name=op_type.lower(),
        )
        return ctx.unpack(node, op.num_outputs)


_split("Split", _ops.split)
_split("DepthSplit", _ops.depth_split)


@register_converter(
    "SplitByLengths",
    args={"axis": Arg("int"), "order": Arg("str"), "use_scaling_lengths": False},
    inputs=(2, 2),
    outputs=(1, None),
)
def _split_by_lengths(ctx: ConversionContext, op: OpCall):
    """Splits along an axis into pieces whose sizes add up lengths (optionally scaled)."""
    node = ctx.call(
        _ops.split_by_lengths, op.inputs[0], op.inputs[1], op.num_outputs, op.args["axis"], op.args["order"],
        _flag(op, "use_scaling_lengths"), name="split_by_lengths",
    )
    return ctx.unpack(node, op.num_outputs)


@register_converter("Dropout", args={"ratio": 0.5, "is_test": False}, inputs=(1, 1), outputs=(1, 2))
def _dropout(ctx: ConversionContext, op: OpCall):
    """Test mode: a copy; training mode: drops with PyTorch's generator while the module trains."""
    ratio = op.args["ratio"]
    if op.args["is_test"] and op.num_outputs == 1:
        # Test mode: Y equals X. A graph value is never written in place, so X itself serves.
        return op.inputs[0]
    if op.args["is_test"]:
        # Test mode with the mask: Y is a copy of X and the mask all True, as the op returns.
        node = ctx.call(_ops.dropout, op.inputs[0], ratio, True, name="dropout")
        return ctx.unpack(node, op.num_outputs)
    if op.num_outputs == 1:
        # A training-mode Dropout in a predict net: it drops while the module is in training
        # mode (as Caffe2 would on every run) and is the identity after `.eval()`.
        return ctx.call_module(c2nn.Dropout(ratio), op.inputs[0])
    # The mask is consumed, so keep Caffe2's training behaviour literally.
    node = ctx.call(_ops.dropout, op.inputs[0], ratio, False, name="dropout")
    return ctx.unpack(node, op.num_outputs)


def _sparse_normalize(op_type: str, target) -> None:
    @register_converter(
        op_type, args={"use_max_norm": True, "norm": 1.0}, inputs=(2, 3), outputs=(1, 1),
        doc="Rescales the rows of `param` selected by `indices` to norm `norm` (max-norm or exact).",
    )
    def convert(ctx: ConversionContext, op: OpCall):
        # Caffe2 rewrites param in place; here the output blob is bound to a normalised copy,
        # which is what every later reader of the blob sees.
        grad = op.inputs[2] if len(op.inputs) == 3 else None
        return ctx.call(target, op.inputs[0], op.inputs[1], grad, _flag(op, "use_max_norm"), op.args["norm"])


_sparse_normalize("SparseNormalize", _ops.sparse_normalize)
_sparse_normalize("Float16SparseNormalize", _ops.float16_sparse_normalize)


@register_converter("MarginRankingCriterion", args={"margin": 1.0}, inputs=(3, 3), outputs=(1, 1), data_inputs="all")
def _margin_ranking_criterion(ctx: ConversionContext, op: OpCall):
    """max(0, -y * (X1 - X2) + margin) elementwise."""
    return ctx.call(_ops.margin_ranking_criterion, *op.inputs, op.args["margin"])
