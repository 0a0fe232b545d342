"""Converters for Caffe2's segment operators of DPER-style ranking nets: lengths reductions
(LengthsMean/Max/WeightedSum), sorted-segment ranges, LengthsTile/Gather/Pad/TopK,
Pack/UnpackSegments, SparseLengthsPositionalWeightedSum, IndexHash, the feature-merge family
(feature_maps_ops.h) and MergeIdLists. Semantics from caffe2/operators/*; the math is in
:mod:`..functional_segments`. Most outputs have data-dependent sizes: they run eagerly and
under TorchScript.
"""
from __future__ import annotations

import torch
import torch.fx

from .. import functional_segments as fseg
from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter

# --- lengths reductions ------------------------------------------------------------------------


@register_converter("LengthsMean", inputs=(2, 2), outputs=(1, 1), data_inputs=(0, 1), constant_inputs=(1,))
def _lengths_mean(ctx: ConversionContext, op: OpCall):
    """Means of consecutive rows of DATA, per segment of LENGTHS (empty segments give zeros)."""
    return ctx.call(fseg.lengths_mean, *op.inputs)


@register_converter("LengthsMax", inputs=(2, 2), outputs=(1, 1), data_inputs=(0, 1), constant_inputs=(1,))
def _lengths_max(ctx: ConversionContext, op: OpCall):
    """Elementwise maxima of consecutive rows of DATA, per segment of LENGTHS (empty segments give zeros)."""
    return ctx.call(fseg.lengths_max, *op.inputs)


@register_converter(
    "LengthsWeightedSum", args={"grad_on_weights": False}, inputs=(3, 3), outputs=(1, 1), data_inputs="all",
    constant_inputs=(2,),
)
def _lengths_weighted_sum(ctx: ConversionContext, op: OpCall):
    """Sums of consecutive rows of DATA, each scaled by its entry of SCALARS, per segment of LENGTHS."""
    # grad_on_weights only decides whether Caffe2's gradient op also returns dSCALARS; autograd
    # differentiates both anyway.
    return ctx.call(fseg.lengths_weighted_sum, *op.inputs)


def _sorted_range(op_type: str, reduce: str, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(fseg.sorted_segment_range, op.inputs[0], op.inputs[1], reduce, op_type)

    convert.__doc__ = doc
    register_converter(op_type, inputs=(2, 2), outputs=(1, 1), data_inputs="all", constant_inputs=(1,))(convert)


_sorted_range(
    "SortedSegmentRangeSum", "sum", "Sums of the rows of DATA sharing a segment id (ids sorted, from 0, no gaps)."
)
_sorted_range(
    "SortedSegmentRangeMean", "mean", "Means of the rows of DATA sharing a segment id (ids sorted, from 0, no gaps)."
)
_sorted_range(
    "SortedSegmentRangeMax", "max", "Elementwise maxima of the rows of DATA sharing a segment id (ids sorted, no gaps)."
)
_sorted_range(
    "SortedSegmentRangeLogSumExp", "logsumexp",
    "log(sum(exp(rows))) of the rows of DATA sharing a segment id (ids sorted, no gaps).",
)
_sorted_range(
    "SortedSegmentRangeLogMeanExp", "logmeanexp",
    "log(mean(exp(rows))) of the rows of DATA sharing a segment id (ids sorted, no gaps).",
)


# --- tile, gather, pad, top-k -------------------------------------------------------------------


@register_converter("LengthsTile", inputs=(2, 2), outputs=(1, 1), data_inputs="all", constant_inputs=(1,))
def _lengths_tile(ctx: ConversionContext, op: OpCall):
    """Row i of DATA repeated LENGTHS[i] times."""
    return ctx.call(fseg.lengths_tile, *op.inputs)


@register_converter("LengthsGather", inputs=(3, 3), outputs=(1, 1), data_inputs="all", constant_inputs=(1, 2))
def _lengths_gather(ctx: ConversionContext, op: OpCall):
    """The segments of ITEMS (cut by LENGTHS) that INDICES names, concatenated."""
    return ctx.call(fseg.lengths_gather, *op.inputs)


@register_converter(
    "LengthsPad", args={"padding_value": -1.0, "target_length": -1}, inputs=(2, 2), outputs=(1, 1),
    data_inputs="all", constant_inputs=(1,),
)
def _lengths_pad(ctx: ConversionContext, op: OpCall):
    """Each segment of DATA padded with padding_value to target_length rows ([N * target_length, ...])."""
    target = op.args["target_length"]
    if target < 1:
        raise op.error(f"argument 'target_length' = {target}: target_length argument must be >= 1")
    return ctx.call(fseg.lengths_pad, op.inputs[0], op.inputs[1], op.args["padding_value"], target)


@register_converter(
    "LengthsTopK", args={"k": -1}, inputs=(2, 2), outputs=(2, 2), data_inputs="all", constant_inputs=(1,)
)
def _lengths_top_k(ctx: ConversionContext, op: OpCall):
    """[N, k] largest values of each segment and their int32 positions in it (padded with 0 and -1)."""
    k = op.args["k"]
    if k < 1:
        raise op.error(f"argument 'k' = {k}: k argument must be >= 1")
    node = ctx.call(fseg.lengths_top_k, op.inputs[0], op.inputs[1], k, name="lengths_top_k")
    return ctx.unpack(node, 2)


@register_converter(
    "PackSegments", args={"max_length": -1, "pad_minf": False, "return_presence_mask": False}, inputs=(2, 2),
    outputs=(1, 2), data_inputs="all", constant_inputs=(0,),
)
def _pack_segments(ctx: ConversionContext, op: OpCall):
    """Segments of DATA as rows of a padded [N, max_length, ...] tensor (0 or -inf padding), and the presence mask."""
    max_length = op.args["max_length"]
    if max_length < -1:
        raise op.error(f"argument 'max_length' = {max_length}: must be -1 (the longest segment) or a length")
    presence = op.args["return_presence_mask"]
    if op.num_outputs == 2 and not presence:
        raise op.error("a second output (the presence mask) needs return_presence_mask=1")
    if op.num_outputs == 1 and presence:
        raise op.error("return_presence_mask=1 needs a second output for the presence mask")
    node = ctx.call(
        fseg.pack_segments, op.inputs[0], op.inputs[1], max_length, op.args["pad_minf"], presence,
        name="pack_segments",
    )
    return ctx.unpack(node, 2)


@register_converter(
    "UnpackSegments", args={"max_length": -1}, inputs=(2, 2), outputs=(1, 1), data_inputs="all",
    constant_inputs=(0,),
)
def _unpack_segments(ctx: ConversionContext, op: OpCall):
    """The first LENGTHS[i] entries of row i of a packed tensor, concatenated (inverse of PackSegments)."""
    max_length = op.args["max_length"]
    if max_length < -1:
        raise op.error(f"argument 'max_length' = {max_length}: must be -1 or the packed length")
    return ctx.call(fseg.unpack_segments, op.inputs[0], op.inputs[1], max_length)


# --- lookups, hashing, identity -----------------------------------------------------------------


@register_converter(
    "SparseLengthsPositionalWeightedSum", inputs=(4, 4), outputs=(1, 1), data_inputs=(2, 3), constant_inputs=(-1,),
)
def _slpws(ctx: ConversionContext, op: OpCall):
    """Per segment, the sum of the DATA rows INDICES selects, the j-th id of a segment scaled by WEIGHT[j]."""
    # Caffe2 registers no gradient for this operator; WEIGHT holds learned positional weights.
    return ctx.call(fseg.sparse_lengths_positional_weighted_sum, *op.inputs)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@register_converter(
    "IndexHash", args={"seed": 0, "modulo": 0}, inputs=(1, 1), outputs=(1, 1), constant_inputs=(0,)
)
def _index_hash(ctx: ConversionContext, op: OpCall):
    """Ids hashed byte by byte from seed (Caffe2's IndexHash function), modulo `modulo`, same dtype."""
    seed, modulo = op.args["seed"], op.args["modulo"]
    if modulo <= 0:
        raise op.error(f"argument 'modulo' = {modulo}: MODULO should be > 0")
    # Caffe2 starts from seed * 0xDEADBEEF in int64, then stores it in the ids' integer type.
    start = _signed(seed * 0xDEADBEEF, 64)
    return ctx.call(fseg.index_hash, op.inputs[0], start, _signed(start, 32), modulo)


@register_converter("EnsureCPUOutput", inputs=(1, 1), outputs=(1, 1))
def _ensure_cpu_output(ctx: ConversionContext, op: OpCall):
    """The input itself (Caffe2 copied it to host memory for the next operators)."""
    return op.inputs[0]


# --- feature maps ---------------------------------------------------------------------------------

_FEATURE_IDS = {"feature_ids": Arg("ints", [])}
# The variadic operators below leave constant_inputs unmarked: their lengths, keys and presence
# inputs are integer or bool blobs, which never become trainable parameters anyway.


def _input_groups(op: OpCall, per: int) -> int:
    if len(op.inputs) % per:
        raise op.error(f"{len(op.inputs)} inputs: expected groups of {per}")
    return len(op.inputs) // per


def _feature_ids(ctx: ConversionContext, op: OpCall, count: int) -> torch.fx.Node:
    ids = op.args["feature_ids"]
    if len(ids) < count:
        raise op.error(f"argument 'feature_ids' = {ids}: {count} features need {count} ids")
    return ctx.constant(torch.tensor(ids, dtype=torch.int64), name=f"{ctx.name_hint}_feature_ids")


@register_converter(
    "MergeDenseFeatureTensors", args=dict(_FEATURE_IDS), inputs=(2, 2), outputs=(3, 3), data_inputs="all",
    constant_inputs=(1,),
)
def _merge_dense(ctx: ConversionContext, op: OpCall):
    """The present entries of dense [N, F] features as (lengths, keys = feature_ids, values)."""
    ids = op.args["feature_ids"]
    if not ids:
        raise op.error("argument 'feature_ids' must list one id per column of the dense input")
    table = ctx.constant(torch.tensor(ids, dtype=torch.int64), name=f"{ctx.name_hint}_feature_ids")
    node = ctx.call(fseg.merge_dense_feature_tensors, op.inputs[0], op.inputs[1], table, name="merge_dense")
    return ctx.unpack(node, 3)


@register_converter(
    "MergeSingleScalarFeatureTensors", args=dict(_FEATURE_IDS), inputs=(2, None), outputs=(3, 3),
    data_inputs="all",
)
def _merge_single_scalar(ctx: ConversionContext, op: OpCall):
    """(value, presence) pairs of scalar features merged into (lengths, keys = feature_ids, values)."""
    count = _input_groups(op, 2)
    table = _feature_ids(ctx, op, count)
    node = ctx.call(fseg.merge_single_scalar_feature_tensors, list(op.inputs), table, name="merge_features")
    return ctx.unpack(node, 3)


def _single(op_type: str, per: int, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        count = _input_groups(op, per)
        table = _feature_ids(ctx, op, count)
        node = ctx.call(
            fseg.merge_single_feature_tensors, list(op.inputs), table, per, op_type, name="merge_features"
        )
        return ctx.unpack(node, per + 1)

    convert.__doc__ = doc
    register_converter(
        op_type, args=dict(_FEATURE_IDS), inputs=(per, None), outputs=(per + 1, per + 1), data_inputs="all"
    )(convert)


_single(
    "MergeSingleListFeatureTensors", 3,
    "(lengths, values, presence) list features merged into (lengths, keys, values.lengths, values.values).",
)
_single(
    "MergeSingleMapFeatureTensors", 4,
    "(lengths, keys, values, presence) map features merged into (lengths, keys, values.lengths, values.keys, "
    "values.values).",
)


def _multi(op_type: str, per: int, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        _input_groups(op, per)
        node = ctx.call(fseg.merge_multi_feature_tensors, list(op.inputs), per, op_type, name="merge_features")
        return ctx.unpack(node, per)

    convert.__doc__ = doc
    register_converter(op_type, inputs=(per, None), outputs=(per, per), data_inputs="all")(convert)


_multi(
    "MergeMultiScalarFeatureTensors", 3,
    "Multi-feature (lengths, keys, values) tensors merged example by example into one.",
)
_multi(
    "MergeMultiListFeatureTensors", 4,
    "Multi-feature (lengths, keys, values.lengths, values.values) list tensors merged example by example into one.",
)
_multi(
    "MergeMultiMapFeatureTensors", 5,
    "Multi-feature (lengths, keys, values.lengths, values.keys, values.values) map tensors merged into one.",
)


@register_converter("MergeIdLists", inputs=(2, None), outputs=(2, 2), data_inputs="all", constant_inputs=(-1,))
def _merge_id_lists(ctx: ConversionContext, op: OpCall):
    """(lengths, ids) id lists merged per example into its sorted distinct ids (int32 lengths, ids)."""
    _input_groups(op, 2)
    node = ctx.call(fseg.merge_id_lists, list(op.inputs), name="merge_id_lists")
    return ctx.unpack(node, 2)
