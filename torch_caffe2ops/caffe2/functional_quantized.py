"""Caffe2's row-wise quantized embedding tables and half-precision conversions, as tensor functions.

Row layouts (one row of a uint8 tensor per table row, little-endian, as Caffe2 wrote them):

- fused 8-bit: ``D`` uint8 values, then the row's scale and bias as float32 (``D + 8`` bytes);
- fused 8-bit with half scale/bias: ``D`` uint8 values, then scale and bias as float16 (``D + 4``);
- fused 4-bit / 2-bit: ``ceil(D / 2)`` / ``ceil(D / 4)`` bytes of packed values, the first value
  in the low bits of each byte, then scale and bias as float16 (``+ 4`` bytes);
- the older "8BitsRowwise" form: a uint8 tensor of the table's shape plus a separate float
  ``scale_bias`` tensor of shape ``[rows, 2]``.

A value dequantizes to ``q * scale + bias``. The lookups (SparseLengths*) reduce on the CPU with
PyTorch's quantized embedding-bag kernels, which read exactly these layouts and accumulate as
Caffe2's kernels did (``out = fma(w * scale, q, out + w * bias)``, in index order), so their
results are Caffe2's bit for bit; means multiply by ``1 / length`` as Caffe2 did. On other devices
the rows are dequantized and then summed, which may differ from Caffe2 in the last bits.

Every function is TorchScript-compatible (no ``from __future__ import annotations`` here).
"""
import itertools
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# --- validation -------------------------------------------------------------------------------


def _first(mask: Tensor) -> int:
    return int(mask.nonzero()[0, 0])


def check_lengths(lengths: Tensor, count: int, what: str = "indices") -> None:
    """LENGTHS is an integer vector of non-negative lengths that add up to ``count``."""
    if lengths.dim() != 1:
        raise ValueError(f"LENGTHS must be a vector, got shape {list(lengths.shape)}")
    if lengths.is_floating_point():
        raise TypeError(f"LENGTHS must be an integer tensor, got {lengths.dtype}")
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            # Traced code cannot branch on values: the check stays in the graph instead.
            torch._assert_async(~(lengths < 0).any(), "LENGTHS holds a negative length")
            torch._assert_async(lengths.sum() == count, f"the lengths do not add up to the number of {what}")
            return
    # A few reductions read back on the host: the checks cost little next to the lookup.
    if lengths.size(0) > 0 and int(lengths.min()) < 0:
        pos = _first(lengths < 0)
        raise ValueError(f"LENGTHS[{pos}] = {int(lengths[pos])} is negative")
    n = int(lengths.sum())
    if n != count:
        raise ValueError(f"the lengths add up to {n}, but there are {count} {what}")


def check_lookup(indices: Tensor, lengths: Tensor, num_rows: int, weights: Optional[Tensor] = None) -> None:
    """Caffe2's checks of a lengths-reduction, as errors instead of a crash: INDICES and LENGTHS
    are vectors, every id is in [0, num_rows), the lengths are non-negative and add up to the
    number of ids, WEIGHTS (if any) has one value per id."""
    if indices.dim() != 1:
        raise ValueError(f"INDICES must be a vector, got shape {list(indices.shape)}")
    if indices.is_floating_point():
        raise TypeError(f"INDICES must be an integer tensor, got {indices.dtype}")
    if weights is not None:
        if weights.dim() != 1 or weights.size(0) != indices.size(0):
            raise ValueError(
                f"WEIGHTS must be a vector with one weight per index ({indices.size(0)}), got shape {list(weights.shape)}"
            )
    compiling = False
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            compiling = True
            bad = (indices < 0) | (indices >= num_rows)
            torch._assert_async(~bad.any(), "INDICES holds an id outside [0, number of rows of DATA)")
    if not compiling and indices.size(0) > 0:
        lo, hi = torch.aminmax(indices)
        if int(lo) < 0 or int(hi) >= num_rows:
            pos = _first((indices < 0) | (indices >= num_rows))
            raise IndexError(f"INDICES[{pos}] = {int(indices[pos])} is out of range for DATA with {num_rows} rows")
    check_lengths(lengths, indices.size(0))


# Offsets of short CPU lengths vectors, by (dtype, lengths): at batch 1 to 8 a serving model
# sees few distinct lengths, and building the offsets (a cumsum and a pad: two small ATen
# calls) costs as much as the lookup. The kernels only read them. Bounded: cleared when full.
_OFFSETS: Dict[Tuple[Any, ...], Tensor] = {}
_OFFSETS_LIMIT = 4096
_OFFSETS_MAX_BAGS = 8


@torch.jit.unused
def _checked_offsets(lengths: Tensor, n: int, dtype: torch.dtype) -> Optional[Tensor]:
    """The bag offsets of LENGTHS (a vector) if it is non-negative and sums to ``n``, else None:
    the checks the embedding-bag kernels lack (with a short sum they ignore the remaining ids;
    PyTorch's 4-bit kernel crashes on a negative length). One host read; small vectors are read
    as a list, which is cheaper, and the shortest take their offsets from ``_OFFSETS``."""
    if lengths.size(0) > 256:
        if int(lengths.min()) < 0 or int(lengths.sum()) != n:
            return None
        return lengths_to_offsets(lengths, dtype)
    host = lengths.tolist()
    if sum(host) != n or (len(host) > 0 and min(host) < 0):
        return None
    if len(host) > _OFFSETS_MAX_BAGS or not lengths.is_cpu:
        return lengths_to_offsets(lengths, dtype)
    key = (dtype, *host)
    offsets = _OFFSETS.get(key)
    if offsets is None:
        if len(_OFFSETS) >= _OFFSETS_LIMIT:
            _OFFSETS.clear()
        # An ordinary CPU tensor whatever the caller's context: one made under inference_mode
        # could not be saved for a later backward, and a default device would move it.
        with torch.inference_mode(False):
            offsets = torch.tensor([0, *itertools.accumulate(host)], dtype=dtype, device="cpu")
        _OFFSETS[key] = offsets
    return offsets


@torch.jit.unused
def _eager_float_lookup(table: Tensor, indices: Tensor, lengths: Tensor,
                        weights: Optional[Tensor]) -> Optional[Tensor]:
    """A float-table lookup on F.embedding_bag's own id checks (every out-of-range or negative
    id raises there), with :func:`_checked_offsets` first; a kernel failure is re-checked for the
    clear error of the full checks. Returns None when this path does not apply; the caller then
    checks everything first. The full checks cost four reductions and three host reads per
    lookup, as much as the lookup itself at small batches."""
    if indices.dim() != 1 or lengths.dim() != 1 or indices.is_floating_point() or lengths.is_floating_point():
        return None
    if weights is not None and (weights.dim() != 1 or weights.size(0) != indices.size(0)):
        return None
    offsets = _checked_offsets(lengths, indices.size(0), indices.dtype)
    if offsets is None:
        return None
    try:
        return F.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=weights,
                               include_last_offset=True)
    except RuntimeError:
        check_lookup(indices, lengths, table.size(0), weights)
        raise


@torch.jit.unused
def _eager_fused_lookup(data: Tensor, indices: Tensor, lengths: Tensor, bits: int,
                        weights: Optional[Tensor]) -> Optional[Tensor]:
    """:func:`_eager_float_lookup` for a fused table on the CPU, with only the tests the kernels
    do not make themselves: at batch 1 a lookup costs about as much as the Python around it, so
    this path stays as short as it can (the kernels reject a table that is not a uint8 matrix,
    out-of-range ids and mismatched devices; every such failure is re-checked for the clear
    error). Returns None when it does not apply."""
    if data.dtype != torch.uint8 or not data.is_cpu or data.dim() != 2 or lengths.dim() != 1:
        return None
    if indices.dim() != 1 or lengths.is_floating_point():
        return None
    n = indices.size(0)
    if weights is not None and (weights.dim() != 1 or weights.size(0) != n):
        return None
    offsets = _checked_offsets(lengths, n, indices.dtype)
    if offsets is None:
        return None
    if weights is not None:
        weights = weights.to(torch.float32).contiguous()
    try:
        if bits == 8:
            return torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                data, indices, offsets, False, 0, False, weights, None, True)
        if bits == 4:
            return torch.ops.quantized.embedding_bag_4bit_rowwise_offsets(
                data, indices, offsets, False, 0, False, weights, None, True)
        return torch.ops.quantized.embedding_bag_2bit_rowwise_offsets(
            data, indices, offsets, False, 0, False, weights, None, True)
    except RuntimeError:
        _check_fused(data, bits, False)
        check_lookup(indices, lengths, data.size(0), weights)
        raise


def lengths_to_offsets(lengths: Tensor, dtype: torch.dtype) -> Tensor:
    """[0, l0, l0 + l1, ...]: the bag boundaries of ``embedding_bag(include_last_offset=True)``."""
    return F.pad(torch.cumsum(lengths, 0, dtype=dtype), [1, 0])


def scale_by_inverse_length(out: Tensor, lengths: Tensor) -> Tensor:
    """out * (1 / length) per segment, Caffe2's mean (a multiplication by the float reciprocal,
    not a division); an empty segment stays zero."""
    inv = torch.reciprocal(lengths.clamp(min=1).to(torch.float32).to(out.device))
    return out * inv.reshape([-1] + [1] * (out.dim() - 1)).to(out.dtype)


# --- float tables -------------------------------------------------------------------------------


def segment_sum(rows: Tensor, lengths: Tensor, weights: Optional[Tensor] = None) -> Tensor:
    """Sums of consecutive runs of ``lengths`` rows (2-D rows), each row times its weight, in
    order: Caffe2's accumulation ``out = fma(w, row, out)``."""
    positions = torch.arange(rows.size(0), device=rows.device)
    offsets = lengths_to_offsets(lengths.to(rows.device), torch.int64)
    return F.embedding_bag(
        positions, rows, offsets, mode="sum", per_sample_weights=weights, include_last_offset=True
    )


def sparse_lengths_reduce(
    data: Tensor, indices: Tensor, lengths: Tensor, weights: Optional[Tensor] = None, mean: bool = False
) -> Tensor:
    """SparseLengths{Sum,WeightedSum,Mean} of a float table (any rank: rows are dim 0). A
    float16 table is read into float32 rows and reduced in float32, as Caffe2's CPU kernel did
    (the output is float32)."""
    table = data.reshape(data.size(0), -1) if data.dim() != 2 else data
    half = table.dtype == torch.float16 or table.dtype == torch.bfloat16
    fast: Optional[Tensor] = None
    if not torch.jit.is_scripting():
        if not torch.compiler.is_compiling() and not half:
            w = weights.to(table.dtype) if weights is not None else None
            fast = _eager_float_lookup(table, indices, lengths, w)
    if fast is not None:
        out = fast
        if mean:
            out = scale_by_inverse_length(out, lengths)
        if data.dim() != 2:
            out = out.reshape([lengths.size(0)] + list(data.shape[1:]))
        return out
    check_lookup(indices, lengths, data.size(0), weights)
    if weights is not None:
        weights = weights.to(torch.float32 if half else table.dtype)
    if half:
        out = segment_sum(table.index_select(0, indices).to(torch.float32), lengths, weights)
    else:
        offsets = lengths_to_offsets(lengths.to(indices.device), indices.dtype)
        out = F.embedding_bag(
            indices, table, offsets, mode="sum", per_sample_weights=weights, include_last_offset=True
        )
    if mean:
        out = scale_by_inverse_length(out, lengths)
    if data.dim() != 2:
        out = out.reshape([lengths.size(0)] + list(data.shape[1:]))
    return out


def lengths_sum(data: Tensor, lengths: Tensor) -> Tensor:
    """LengthsSum: the sum of each run of ``lengths`` consecutive slices of DATA."""
    check_lengths(lengths, data.size(0), "rows of DATA")
    rows = data.reshape(data.size(0), -1)
    if data.is_floating_point() and data.dtype != torch.float16 and data.dtype != torch.bfloat16:
        out = segment_sum(rows, lengths)
    else:
        segments = torch.repeat_interleave(
            torch.arange(lengths.size(0), device=data.device), lengths.to(data.device).long(), output_size=data.size(0)
        )
        out = torch.zeros([lengths.size(0), rows.size(1)], dtype=data.dtype, device=data.device)
        out = out.index_add(0, segments, rows)
    return out.reshape([lengths.size(0)] + list(data.shape[1:]))


# --- fused row-wise layouts ------------------------------------------------------------------------


def _check_fused(data: Tensor, bits: int, half_scale_bias: bool) -> int:
    """The number of values per row of a fused table (checked as Caffe2 did)."""
    if data.dtype != torch.uint8:
        raise TypeError(f"a fused row-wise quantized table must be uint8, got {data.dtype}")
    if data.dim() < 1:
        raise ValueError("a fused row-wise quantized table needs at least one dimension")
    tail = 4 if half_scale_bias or bits != 8 else 8
    cols = data.size(-1)
    if cols <= tail:
        raise ValueError(f"DATA must have more than {tail} columns (values + scale + bias), got {cols}")
    return (cols - tail) * (8 // bits)


def _unpack(packed: Tensor, bits: int) -> Tensor:
    """uint8 [..., B] -> uint8 [..., B * 8/bits]: the values packed low bits first."""
    if bits == 8:
        return packed
    per_byte = 8 // bits
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8, device=packed.device)
    values = torch.bitwise_and(torch.bitwise_right_shift(packed.unsqueeze(-1), shifts), (1 << bits) - 1)
    return values.reshape(list(packed.shape[:-1]) + [packed.size(-1) * per_byte])


def _scale_bias(data: Tensor, half_scale_bias: bool) -> List[Tensor]:
    """The per-row (scale, bias) of a fused table as float32 [..., 1] tensors."""
    tail = 4 if half_scale_bias else 8
    raw = data[..., data.size(-1) - tail:].contiguous()
    sb = raw.view(torch.float16).to(torch.float32) if half_scale_bias else raw.view(torch.float32)
    return [sb[..., 0:1], sb[..., 1:2]]


def fused_to_float(data: Tensor, bits: int = 8, half_scale_bias: bool = False, to_half: bool = False) -> Tensor:
    """Fused{8,4,2}BitRowwiseQuantizedToFloat: q * scale + bias for every value (float32), the
    rows being all dims but the last; ``to_half`` rounds the result to float16 (the ...ToHalf
    operators)."""
    _check_fused(data, bits, half_scale_bias)
    half = half_scale_bias or bits != 8
    tail = 4 if half else 8
    q = _unpack(data[..., : data.size(-1) - tail], bits).to(torch.float32)
    sb = _scale_bias(data, half)
    # Two roundings (a product, then a sum), as Caffe2's AVX2 and reference kernels; with a
    # float16 scale and a 2- or 4-bit value the product is exact anyway.
    out = q * sb[0] + sb[1]
    if to_half:
        out = out.to(torch.float16)
    return out


def _round_half_even(x: Tensor) -> Tensor:
    # std::lrintf in the default rounding mode.
    return torch.round(x)


def _expect(X: Tensor, half: bool) -> None:
    want = torch.float16 if half else torch.float32
    if X.dtype != want:
        raise TypeError(f"the input must be {want}, got {X.dtype}")


def float_to_fused_8bit(X: Tensor, half_input: bool = False) -> Tensor:
    """FloatToFused8BitRowwiseQuantized: per row, scale = (max - min) / 255, bias = min,
    q = lrint((x - min) * 255 / (max - min + 1e-8)); float32 scale and bias after the values.
    ``half_input``: HalfFloatToFused8BitRowwiseQuantized (a float16 input, read as float32)."""
    _expect(X, half_input)
    if X.dim() < 1:
        raise ValueError("the input needs at least one dimension")
    x = X.to(torch.float32)
    mn = x.amin(-1, keepdim=True)
    mx = x.amax(-1, keepdim=True)
    rng = mx - mn
    scale = rng / 255.0
    inverse = 255.0 / (rng + 1e-8)
    q = _round_half_even((x - mn) * inverse).to(torch.uint8)
    sb = torch.cat([scale, mn], -1).contiguous().view(torch.uint8)
    return torch.cat([q, sb], -1)


def float_to_fused_nbit(X: Tensor, bits: int, half_input: bool = False, divide: bool = False) -> Tensor:
    """FloatToFused{4,2}BitRowwiseQuantized (and the 8-bit half scale/bias form): bias =
    fp16(min), scale = fp16((max - bias) / (2^bits - 1)) (1 for a constant row),
    q = clamp(lrint((x - bias) * (1 / scale)), 0, 2^bits - 1), packed low bits first, then the
    fp16 scale and bias. ``half_input``: a float16 input (read as float32); ``divide``: q from
    (x - bias) / scale, as Caffe2's HalfToFused{4,2}BitRowwiseQuantized did."""
    _expect(X, half_input)
    if X.dim() < 1:
        raise ValueError("the input needs at least one dimension")
    per_byte = 8 // bits
    cols = X.size(-1)
    if cols % per_byte != 0:
        raise ValueError(f"{bits}-bit row-wise quantization needs a multiple of {per_byte} columns, got {cols}")
    x = X.to(torch.float32)
    mn = x.amin(-1, keepdim=True).to(torch.float16).to(torch.float32)
    mx = x.amax(-1, keepdim=True)
    rng = mx - mn
    levels = float((1 << bits) - 1)
    scale = torch.where(rng == 0, torch.ones_like(rng), rng / levels).to(torch.float16).to(torch.float32)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    if divide:
        q = _round_half_even((x - mn) / scale)
    else:
        inverse = torch.reciprocal(scale)
        bad = torch.isinf(inverse)
        scale = torch.where(bad, torch.ones_like(scale), scale)
        inverse = torch.where(bad, torch.ones_like(inverse), inverse)
        q = _round_half_even((x - mn) * inverse)
    q = q.clamp(0.0, levels).to(torch.uint8)
    if per_byte > 1:
        groups = q.reshape(list(q.shape[:-1]) + [q.size(-1) // per_byte, per_byte])
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8, device=q.device)
        q = torch.bitwise_left_shift(groups, shifts).sum(-1).to(torch.uint8)
    sb = torch.cat([scale, mn], -1).to(torch.float16).contiguous().view(torch.uint8)
    return torch.cat([q, sb], -1)


def fused_sparse_lengths_reduce(
    data: Tensor,
    indices: Tensor,
    lengths: Tensor,
    bits: int,
    weights: Optional[Tensor] = None,
    mean: bool = False,
    mapping: Optional[Tensor] = None,
) -> Tensor:
    """SparseLengths{Sum,WeightedSum,Mean}Fused{8,4,2}BitRowwise on a fused table (2-D uint8).

    ``mapping`` (the ``...RowwiseSparse`` operators: pruned tables) maps each id to a row of
    DATA, -1 for a pruned row, which adds nothing (a mean still divides by the full length); a
    mapping of exactly ``[0]`` means "not pruned", as in Caffe2."""
    if mapping is None and not torch.jit.is_scripting():
        if not torch.compiler.is_compiling():
            fast = _eager_fused_lookup(data, indices, lengths, bits, weights)
            if fast is not None:
                return scale_by_inverse_length(fast, lengths) if mean else fast
    if data.dim() != 2:
        raise ValueError(f"DATA must be a matrix, got shape {list(data.shape)}")
    _check_fused(data, bits, False)
    pruned = mapping is not None
    if mapping is not None and mapping.numel() == 1:
        pruned = not bool(mapping[0] == 0)
    if pruned and mapping is not None:
        if mapping.dim() != 1:
            raise ValueError(f"COMPRESSED_INDICES_MAPPING must be a vector, got shape {list(mapping.shape)}")
        check_lookup(indices, lengths, mapping.size(0), weights)
    else:
        check_lookup(indices, lengths, data.size(0), weights)
    offsets = lengths_to_offsets(lengths.to(indices.device), indices.dtype)
    if weights is not None:
        weights = weights.to(torch.float32).contiguous()
    if data.device.type == "cpu":
        cmap: Optional[Tensor] = None
        if pruned and mapping is not None:
            cmap = mapping.to(torch.int32).contiguous()
        if bits == 8:
            out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                data, indices, offsets, False, 0, pruned, weights, cmap, True
            )
        elif bits == 4:
            out = torch.ops.quantized.embedding_bag_4bit_rowwise_offsets(
                data, indices, offsets, False, 0, pruned, weights, cmap, True
            )
        else:
            out = torch.ops.quantized.embedding_bag_2bit_rowwise_offsets(
                data, indices, offsets, False, 0, pruned, weights, cmap, True
            )
    else:
        ids = indices
        keep: Optional[Tensor] = None
        if pruned and mapping is not None:
            ids = mapping.to(indices.device).index_select(0, indices).to(torch.int64)
            keep = ids >= 0
            ids = ids.clamp(min=0)
        rows = fused_to_float(data.index_select(0, ids), bits)
        w = weights
        if keep is not None:
            k = keep.to(torch.float32)
            w = k if w is None else w * k
        out = segment_sum(rows, lengths, w)
    if mean:
        out = scale_by_inverse_length(out, lengths)
    return out


def rowwise_8bit_sparse_lengths_reduce(
    data: Tensor,
    indices: Tensor,
    lengths: Tensor,
    scale_bias: Tensor,
    weights: Optional[Tensor] = None,
    mean: bool = False,
) -> Tensor:
    """SparseLengths{Sum,WeightedSum,Mean,WeightedMean}8BitsRowwise: a uint8 table with its
    per-row (scale, bias) in a separate float [rows, 2] tensor. The looked-up rows are fused
    with their scale and bias and reduced by the fused 8-bit kernel (the same arithmetic as
    Caffe2's); the output has DATA's trailing dims."""
    if scale_bias.dim() != 2 or scale_bias.size(1) != 2 or scale_bias.size(0) != data.size(0):
        raise ValueError(
            f"scale_bias must be a [{data.size(0)}, 2] matrix (one (scale, bias) per row of DATA), "
            f"got shape {list(scale_bias.shape)}"
        )
    if data.dtype != torch.uint8:
        raise TypeError(f"DATA must be uint8, got {data.dtype}")
    check_lookup(indices, lengths, data.size(0), weights)
    rows = data.reshape(data.size(0), -1).index_select(0, indices)
    sb = scale_bias.to(torch.float32).index_select(0, indices).contiguous().view(torch.uint8)
    fused = torch.cat([rows, sb], 1)
    positions = torch.arange(indices.size(0), dtype=torch.int64, device=data.device)
    offsets = lengths_to_offsets(lengths.to(data.device), torch.int64)
    if weights is not None:
        weights = weights.to(torch.float32).contiguous()
    if data.device.type == "cpu":
        out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            fused, positions, offsets, False, 0, False, weights, None, True
        )
    else:
        out = segment_sum(fused_to_float(fused, 8), lengths, weights)
    if mean:
        out = scale_by_inverse_length(out, lengths)
    return out.reshape([lengths.size(0)] + list(data.shape[1:]))


def sparse_lengths_sum_sparse_lookup(
    indices: Tensor, lengths: Tensor, mapping: Tensor, weights: Optional[Tensor] = None
) -> List[Tensor]:
    """SparseLengthsSumSparseLookup: ids of a pruned table mapped to its rows; pruned ids (-1)
    are dropped and their segments shortened. Returns [indices, lengths (int32), weights]."""
    if mapping.dim() != 1:
        raise ValueError(f"COMPRESSED_INDICES_MAPPING must be a vector, got shape {list(mapping.shape)}")
    check_lookup(indices, lengths, mapping.size(0), weights)
    mapped = mapping.index_select(0, indices)
    keep = mapped != -1
    segments = torch.repeat_interleave(
        torch.arange(lengths.size(0), device=lengths.device), lengths.long(), output_size=indices.size(0)
    )
    dropped = torch.zeros([lengths.size(0)], dtype=torch.int64, device=lengths.device)
    dropped = dropped.index_add(0, segments, (~keep).to(torch.int64))
    out_lengths = (lengths.to(torch.int64) - dropped).to(torch.int32)
    out_weights = weights[keep] if weights is not None else torch.zeros([0], dtype=torch.float32, device=indices.device)
    return [mapped[keep].to(indices.dtype), out_lengths, out_weights]


# --- the older separate scale/bias form ----------------------------------------------------------


def float_to_rowwise_8bits(X: Tensor) -> List[Tensor]:
    """FloatToRowwiseQuantized8Bits: rows are dim 0 (the rest flattened); a row whose range is
    below 1e-10 gets scale 1 and zeros, otherwise scale = (max - min) / 255, bias = min and
    q = round((x - min) * (1 / scale)) rounding halves away from zero. Returns [q (X's shape,
    uint8), scale_bias (float [rows, 2])]."""
    _expect(X, False)
    x = X.reshape(X.size(0), -1)
    mn = x.amin(1, keepdim=True)
    mx = x.amax(1, keepdim=True)
    flat = (mx - mn) < 1e-10
    scale = torch.where(flat, torch.ones_like(mn), (mx - mn) / 255.0)
    inverse = torch.reciprocal(scale)
    y = (x - mn) * inverse
    fl = torch.floor(y)
    q = torch.where(y - fl >= 0.5, fl + 1.0, fl)
    q = torch.where(flat, torch.zeros_like(q), q).to(torch.uint8)
    return [q.reshape(X.shape), torch.cat([scale, mn], 1)]


def rowwise_8bits_to_float(data: Tensor, scale_bias: Tensor) -> Tensor:
    """Rowwise8BitQuantizedToFloat: q * scale + bias with the (scale, bias) of the row (dim 0)."""
    if scale_bias.dim() != 2 or scale_bias.size(1) != 2 or scale_bias.size(0) != data.size(0):
        raise ValueError(
            f"scale_bias must be a [{data.size(0)}, 2] matrix (one (scale, bias) per row), got shape "
            f"{list(scale_bias.shape)}"
        )
    q = data.reshape(data.size(0), -1).to(torch.float32)
    sb = scale_bias.to(torch.float32)
    return (q * sb[:, 0:1] + sb[:, 1:2]).reshape(data.shape)


# --- half precision ---------------------------------------------------------------------------------


def half_to_float(X: Tensor) -> Tensor:
    """HalfToFloat: a float16 tensor as float32 (exact)."""
    if X.dtype != torch.float16:
        raise TypeError(f"HalfToFloat needs a float16 input, got {X.dtype}")
    return X.to(torch.float32)


def float_to_half(X: Tensor, clip: bool = False) -> Tensor:
    """FloatToHalf: round to nearest even; ``clip`` first clamps to +-65504 (the largest finite
    float16) instead of overflowing to infinity."""
    if X.dtype != torch.float32:
        raise TypeError(f"FloatToHalf needs a float32 input, got {X.dtype}")
    if clip:
        X = X.clamp(-65504.0, 65504.0)
    return X.to(torch.float16)
