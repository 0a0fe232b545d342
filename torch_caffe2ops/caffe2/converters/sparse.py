"""Converters for Caffe2's sparse-feature operators of DPER-style ranking nets: id lists to
dense features (SparseToDenseMask, SparseToDense), ranges and lengths (GatherRanges,
LengthsToRanges, LengthsRangeFill, ...), one-hot encodings, bucketing and label splitting.
Semantics from caffe2/operators/*; the math is in :mod:`..functional_sparse`.
"""
from __future__ import annotations

import torch

from .. import functional_sparse as fs
from ..context import ConversionContext
from ..registry import Arg, OpCall, register_converter


@register_converter(
    "SparseToDenseMask",
    args={"mask": Arg("ints", []), "return_presence_mask": False, "max_skipped_indices": 5},
    inputs=(3, 4),
    outputs=(1, 2),
    data_inputs=(0, 1, 3),
    constant_inputs=(0, 3),
)
def _sparse_to_dense_mask(ctx: ConversionContext, op: OpCall):
    """Id-list values placed in the columns of the ids listed in ``mask`` (the default elsewhere)."""
    mask = op.args["mask"]
    if not mask:
        raise op.error("argument 'mask' can't be empty")
    if min(mask) < 0:
        raise op.error(f"argument 'mask' = {mask}: only non-negative ids are allowed")
    if len(set(mask)) != len(mask):
        dup = sorted({m for m in mask if mask.count(m) > 1})
        raise op.error(f"argument 'mask' = {mask}: duplicated id(s) {dup}")
    presence = op.args["return_presence_mask"]
    if op.num_outputs == 2 and not presence:
        raise op.error("a second output (the presence mask) needs return_presence_mask=1")
    order = sorted(range(len(mask)), key=lambda i: mask[i])
    sorted_mask = ctx.constant(torch.tensor([mask[i] for i in order], dtype=torch.int64), name=f"{ctx.name_hint}_mask")
    positions = ctx.constant(torch.tensor(order, dtype=torch.int64), name=f"{ctx.name_hint}_mask_columns")
    lengths = op.inputs[3] if len(op.inputs) == 4 else None
    # Caffe2 counts skipped (negative) ids over the operator's lifetime; here per run.
    node = ctx.call(
        fs.sparse_to_dense_mask, op.inputs[0], op.inputs[1], op.inputs[2], lengths, sorted_mask, positions,
        presence, op.args["max_skipped_indices"], name="sparse_to_dense_mask",
    )
    return ctx.unpack(node, 2)


@register_converter(
    "SparseToDense", args={"output_first_dim": 0}, inputs=(2, 3), outputs=(1, 1), data_inputs=(0, 1),
    constant_inputs=(0, 2),
)
def _sparse_to_dense(ctx: ConversionContext, op: OpCall):
    """Rows of VALUES summed into the rows named by INDICES of a zero tensor."""
    first = op.args["output_first_dim"]
    if first > 0 and len(op.inputs) != 2:
        raise op.error("output_first_dim is given, so data_to_infer_dim must not be")
    like = op.inputs[2] if len(op.inputs) == 3 else None
    return ctx.call(fs.sparse_to_dense, op.inputs[0], op.inputs[1], like, first)


@register_converter("GatherRanges", inputs=(2, 2), outputs=(2, 2), data_inputs="all", constant_inputs=(1,))
def _gather_ranges(ctx: ConversionContext, op: OpCall):
    """The DATA ranges listed in RANGES concatenated, and each example's total length (int32)."""
    node = ctx.call(fs.gather_ranges, *op.inputs, name="gather_ranges")
    return ctx.unpack(node, 2)


@register_converter(
    "GatherRangesToDense",
    args={
        "lengths": Arg("ints", []), "min_observation": 10000, "max_mismatched_ratio": 0.01, "max_empty_ratio": 1.0,
    },
    inputs=(2, 3),
    outputs=(1, None),
    data_inputs="all",
    constant_inputs=(1, 2),
)
def _gather_ranges_to_dense(ctx: ConversionContext, op: OpCall):
    """One dense [batch, lengths[j]] output per range j (zeros for empty or mismatched ranges)."""
    lengths = op.args["lengths"]
    if not lengths:
        raise op.error("argument 'lengths' must list at least one length")
    if min(lengths) <= 0:
        raise op.error(f"argument 'lengths' = {lengths}: each length should be positive")
    if op.args["min_observation"] <= 0:
        raise op.error(f"argument 'min_observation' must be at least 1, got {op.args['min_observation']}")
    if len(lengths) != op.num_outputs:
        raise op.error(f"{len(lengths)} lengths for {op.num_outputs} outputs")
    key = op.inputs[2] if len(op.inputs) == 3 else None
    # Caffe2 accumulates the empty/mismatch counts over the operator's lifetime; here each run is
    # checked on its own (what Caffe2 checks on a first run).
    node = ctx.call(
        fs.gather_ranges_to_dense, op.inputs[0], op.inputs[1], key, lengths, op.args["max_mismatched_ratio"],
        op.args["max_empty_ratio"], op.args["min_observation"], name="gather_ranges_to_dense",
    )
    return ctx.unpack(node, len(lengths))


# --- lengths ------------------------------------------------------------------------------------


def _lengths_op(op_type: str, target, doc: str) -> None:
    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(target, op.inputs[0])

    convert.__doc__ = doc
    register_converter(op_type, inputs=(1, 1), outputs=(1, 1), constant_inputs=(0,))(convert)


_lengths_op("LengthsToRanges", fs.lengths_to_ranges, "[N, 2] int32 (offset, length) of each segment.")
_lengths_op("LengthsRangeFill", fs.lengths_range_fill, "0..length-1 of every segment, concatenated (int32).")
_lengths_op("LengthsToSegmentIds", fs.lengths_to_segment_ids, "Segment i repeated lengths[i] times (int32).")


@register_converter("LengthsToWeights", args={"power": 0.5}, inputs=(1, 1), outputs=(1, 1), constant_inputs=(0,))
def _lengths_to_weights(ctx: ConversionContext, op: OpCall):
    """1 / length^power for every entry of each segment (float)."""
    return ctx.call(fs.lengths_to_weights, op.inputs[0], op.args["power"])


@register_converter("SegmentIdsToLengths", inputs=(1, 2), outputs=(1, 1), data_inputs="all", constant_inputs=(0, 1))
def _segment_ids_to_lengths(ctx: ConversionContext, op: OpCall):
    """Number of entries of each (sorted) segment id (int32)."""
    like = op.inputs[1] if len(op.inputs) == 2 else None
    return ctx.call(fs.segment_ids_to_lengths, op.inputs[0], like)


# --- one-hot, buckets, labels -------------------------------------------------------------------


@register_converter("BatchOneHot", inputs=(3, 3), outputs=(1, 1), constant_inputs=(1, 2))
def _batch_one_hot(ctx: ConversionContext, op: OpCall):
    """Each column of data compared with its block of values: [N, sum(lengths)] ones and zeros."""
    return ctx.call(fs.batch_one_hot, *op.inputs)


@register_converter("OneHot", inputs=(2, 2), outputs=(1, 1), constant_inputs=(0, 1))
def _one_hot(ctx: ConversionContext, op: OpCall):
    """[N, index_size] float one-hot rows of the indices."""
    return ctx.call(fs.one_hot, *op.inputs)


@register_converter("Bucketize", args={"boundaries": Arg("floats", [])}, inputs=(1, 1), outputs=(1, 1))
def _bucketize(ctx: ConversionContext, op: OpCall):
    """int32 number of boundaries below each value (a value on a boundary takes the lower bucket)."""
    boundaries = op.args["boundaries"]
    if any(b > a for a, b in zip(boundaries[1:], boundaries)):
        raise op.error(f"argument 'boundaries' = {boundaries}: the boundaries need to be monotonically increasing")
    table = ctx.constant(torch.tensor(boundaries, dtype=torch.float32), name=f"{ctx.name_hint}_boundaries")
    return ctx.call(torch.bucketize, op.inputs[0], table, out_int32=True)


@register_converter(
    "SparseLabelSplit", args={"num_labels": -1}, inputs=(3, 3), outputs=(2, None), data_inputs="all",
    constant_inputs=(0, 1),
)
def _sparse_label_split(ctx: ConversionContext, op: OpCall):
    """Labels split by label index: per label its values and example ids, and the offset map."""
    n_out = op.num_outputs
    num_labels = op.args["num_labels"]
    if num_labels == -1:
        num_labels = n_out // 2
    elif n_out not in (2 * num_labels, 2 * num_labels + 1):
        raise op.error(f"num_labels={num_labels} needs {2 * num_labels} or {2 * num_labels + 1} outputs, got {n_out}")
    with_map = n_out > 2 * num_labels
    node = ctx.call(fs.sparse_label_split, *op.inputs, num_labels, with_map, name="sparse_label_split")
    return ctx.unpack(node, n_out)


@register_converter("FillExamplesWithIndicator", inputs=(2, 2), outputs=(1, 1), data_inputs="all", constant_inputs=(1,))
def _fill_examples_with_indicator(ctx: ConversionContext, op: OpCall):
    """DATA's rows spread over the examples whose indicator is set, zero rows elsewhere."""
    # Not in open-source Caffe2; semantics as Glow's importer reads the operator.
    return ctx.call(fs.fill_examples_with_indicator, *op.inputs)
