"""Converters for Caffe2's lengths reductions over embedding tables: SparseLengths{Sum,
WeightedSum,Mean} on float/float16 tables, on fused row-wise quantized tables (8-, 4- and 2-bit,
pruned or not) and on the older 8BitsRowwise tables with a separate scale/bias, plus LengthsSum
and SparseLengthsSumSparseLookup.

With ``load_net(..., dequantize=True)`` a fused quantized table that comes from the init net
is turned into a trainable float parameter (its dequantized values) and the lookup becomes the
float one, so that the imported model can be fine-tuned; :func:`quantize_tables` writes the
trained tables back in Caffe2's fused layout.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.fx

from .. import functional_quantized as fq
from ..context import ConversionContext
from ..registry import OpCall, register_converter

# --- float tables -------------------------------------------------------------------------------


@register_converter("SparseLengthsSum", inputs=(3, 3), outputs=(1, 1), data_inputs=(1, 2))
def _sls(ctx: ConversionContext, op: OpCall):
    """Sums the rows of DATA (float or float16) selected by INDICES, per segment of LENGTHS."""
    data, indices, lengths = op.inputs
    return ctx.call(fq.sparse_lengths_reduce, data, indices, lengths)


@register_converter(
    "SparseLengthsWeightedSum", args={"grad_on_weights": False}, inputs=(4, 4), outputs=(1, 1), data_inputs=(1, 2, 3)
)
def _slws(ctx: ConversionContext, op: OpCall):
    """Weighted sums of the rows of DATA selected by INDICES, per segment of LENGTHS."""
    # grad_on_weights only decides whether Caffe2's gradient op also returns dWEIGHTS; autograd
    # differentiates both inputs anyway.
    data, weights, indices, lengths = op.inputs
    return ctx.call(fq.sparse_lengths_reduce, data, indices, lengths, weights)


@register_converter("SparseLengthsMean", inputs=(3, 3), outputs=(1, 1), data_inputs=(1, 2))
def _slm(ctx: ConversionContext, op: OpCall):
    """Means of the rows of DATA selected by INDICES, per segment (empty segments give zeros)."""
    data, indices, lengths = op.inputs
    return ctx.call(fq.sparse_lengths_reduce, data, indices, lengths, None, True)


@register_converter("LengthsSum", inputs=(2, 2), outputs=(1, 1))
def _lengths_sum(ctx: ConversionContext, op: OpCall):
    """Sums of consecutive rows of DATA, per segment of LENGTHS."""
    return ctx.call(fq.lengths_sum, *op.inputs)


# --- fused row-wise quantized tables -------------------------------------------------------------

_FUSED_FORMATS = {8: "Fused8BitRowwise", 4: "Fused4BitRowwise", 2: "Fused2BitRowwise"}
_TABLE_META = "caffe2_quantized_table"


def _dequantized_table(ctx: ConversionContext, op: OpCall, bits: int) -> Optional[torch.fx.Node]:
    """With ``dequantize=True``: DATA, when it is an init-net blob, as a trainable float
    parameter holding its dequantized values (one per blob, shared by every lookup). The
    parameter keeps the blob's attribute name; the quantized bytes move to ``<name>_fused``
    (dropped from the module unless another operator reads them)."""
    options = ctx.options
    data = op.inputs[0]
    params = options.get("init_params")
    trainable = options.get("trainable")
    if not options.get("dequantize") or params is None or trainable is None:
        return None
    if data.op != "get_attr":
        return None
    cache = options.setdefault("dequantized_tables", {})
    if data in cache:
        return cache[data]
    if data.target not in params:
        return None
    name = data.target
    fused = params.pop(name)
    with torch.no_grad():
        table = fq.fused_to_float(fused, bits)
    fused_name = ctx.fresh_attr(f"{name}_fused")
    params[fused_name] = fused
    data.target = fused_name
    params[name] = table
    trainable.add(name)
    node = ctx.graph.get_attr(name)
    # The original bytes stay with the node so that quantize_tables gives back exactly the
    # bytes of every row fine-tuning did not change.
    node.meta[_TABLE_META] = {"blob": op.input_names[0], "format": _FUSED_FORMATS[bits], "bits": bits, "original": fused}
    cache[data] = node
    return node


def _fused(op_type: str, bits: int, weighted: bool, mean: bool, sparse: bool) -> None:
    kind = "weighted sums" if weighted else ("means" if mean else "sums")
    layout = "float32 scale/bias" if bits == 8 else "float16 scale/bias"
    pruned = "; ids map through COMPRESSED_INDICES_MAPPING (-1: a pruned row, adds nothing)" if sparse else ""
    count = 3 + int(weighted) + int(sparse)
    positions = tuple(range(1, count - int(sparse)))  # WEIGHTS, INDICES, LENGTHS: fed by the caller

    @register_converter(
        op_type,
        inputs=(count, count),
        outputs=(1, 1),
        data_inputs=positions,
        constant_inputs=(-1,),  # Caffe2 has no gradient for these operators
        doc=f"Segment {kind} of the rows of a fused {bits}-bit row-wise quantized table ({layout}){pruned}.",
    )
    def convert(ctx: ConversionContext, op: OpCall):
        data = op.inputs[0]
        weights = op.inputs[1] if weighted else None
        indices, lengths = op.inputs[1 + int(weighted)], op.inputs[2 + int(weighted)]
        mapping = op.inputs[3 + int(weighted)] if sparse else None
        if not sparse:
            table = _dequantized_table(ctx, op, bits)
            if table is not None:
                return ctx.call(fq.sparse_lengths_reduce, table, indices, lengths, weights, mean)
        return ctx.call(fq.fused_sparse_lengths_reduce, data, indices, lengths, bits, weights, mean, mapping)


for _bits in (8, 4, 2):
    _fused(f"SparseLengthsSumFused{_bits}BitRowwise", _bits, False, False, False)
    _fused(f"SparseLengthsWeightedSumFused{_bits}BitRowwise", _bits, True, False, False)
    _fused(f"SparseLengthsMeanFused{_bits}BitRowwise", _bits, False, True, False)
    _fused(f"SparseLengthsSum{_bits}BitRowwiseSparse", _bits, False, False, True)
    _fused(f"SparseLengthsWeightedSum{_bits}BitRowwiseSparse", _bits, True, False, True)
    _fused(f"SparseLengthsMean{_bits}BitRowwiseSparse", _bits, False, True, True)


def _rowwise_8bits(op_type: str, weighted: bool, mean: bool) -> None:
    kind = {(False, False): "sums", (True, False): "weighted sums", (False, True): "means", (True, True): "weighted means"}
    count = 4 + int(weighted)

    @register_converter(
        op_type,
        inputs=(count, count),
        outputs=(1, 1),
        data_inputs=tuple(range(1, count - 1)),
        constant_inputs=(-1,),
        doc=f"Segment {kind[(weighted, mean)]} of the rows of a uint8 table dequantized with a separate "
        "per-row (scale, bias) matrix.",
    )
    def convert(ctx: ConversionContext, op: OpCall):
        data = op.inputs[0]
        weights = op.inputs[1] if weighted else None
        indices, lengths, scale_bias = op.inputs[1 + int(weighted):]
        return ctx.call(fq.rowwise_8bit_sparse_lengths_reduce, data, indices, lengths, scale_bias, weights, mean)


_rowwise_8bits("SparseLengthsSum8BitsRowwise", False, False)
_rowwise_8bits("SparseLengthsWeightedSum8BitsRowwise", True, False)
_rowwise_8bits("SparseLengthsMean8BitsRowwise", False, True)
_rowwise_8bits("SparseLengthsWeightedMean8BitsRowwise", True, True)


@register_converter(
    "SparseLengthsSumSparseLookup", inputs=(3, 4), outputs=(2, 3), data_inputs=(0, 1, 3), constant_inputs=(-1,)
)
def _sparse_lookup(ctx: ConversionContext, op: OpCall):
    """Maps the ids of a pruned table to its rows, dropping pruned ids (-1) and shortening their segments."""
    indices, lengths, mapping = op.inputs[:3]
    weights = op.inputs[3] if len(op.inputs) == 4 else None
    if op.num_outputs == 3 and weights is None:
        raise op.error("a third output (the kept WEIGHTS) needs the WEIGHTS input")
    node = ctx.call(fq.sparse_lengths_sum_sparse_lookup, indices, lengths, mapping, weights, name="sparse_lookup")
    return ctx.unpack(node, op.num_outputs)


# --- re-quantizing fine-tuned tables -------------------------------------------------------------


def quantize_tables(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The embedding tables that ``load_net(..., dequantize=True)`` turned into float
    parameters, quantized back into Caffe2's fused row-wise layout: Caffe2 blob name -> uint8
    tensor (``FloatToFused8BitRowwiseQuantized`` / ``FloatToFused4BitRowwiseQuantized`` /
    ``FloatToFused2BitRowwiseQuantized`` of the current values, on the CPU).

    A row whose values are still exactly the dequantized original keeps its original bytes
    (re-quantizing a dequantized 8-bit row can move its float32 scale by one unit in the last
    place); the others are quantized as Caffe2's operators do. Write the result into an init
    net with ``GivenTensorByteStringToUInt8Fill`` (or feed it to the quantized predict net).
    """
    graph = getattr(model, "graph", None)
    if graph is None:
        raise TypeError("quantize_tables expects the module load_net returned")
    out: dict[str, torch.Tensor] = {}
    for node in graph.nodes:
        info = node.meta.get(_TABLE_META) if node.op == "get_attr" else None
        if info is None or info["blob"] in out:
            continue
        value = getattr(model, node.target).detach().to("cpu", torch.float32)
        bits = info["bits"]
        with torch.no_grad():
            packed = fq.float_to_fused_8bit(value) if bits == 8 else fq.float_to_fused_nbit(value, bits)
            original = info.get("original")
            if original is not None and original.shape == packed.shape:
                original = original.to("cpu")
                unchanged = (fq.fused_to_float(original, bits) == value).all(-1, keepdim=True)
                packed = torch.where(unchanged, original, packed)
        out[info["blob"]] = packed
    return out
