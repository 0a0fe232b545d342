"""Caffe2 semantics of the segment operators of DPER-style ranking nets (lengths reductions,
sorted-segment ranges, tiling/gathering/padding/packing of segments, per-segment top-k,
positional weighted lookups, IndexHash, the feature-merge family and MergeIdLists), as
TorchScript-compatible tensor functions.

Lengths are read as int32 or int64. Output sizes that depend on values (sums of lengths, the
longest segment, the number of present features) are read on the host, as Caffe2 did; the
results therefore have data-dependent shapes. No ``from __future__ import annotations``:
TorchScript reads the annotations.
"""
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _show(values: Tensor) -> str:
    items: List[int] = values.reshape(-1).to(torch.int64).tolist()
    return str(items)


def _lengths(lengths: Tensor, op: str, name: str = "LENGTHS") -> Tensor:
    """int64 copy of a 1-D integer LENGTHS with non-negative entries."""
    if lengths.dim() != 1:
        raise RuntimeError(f"{op}: {name} must be a vector, got shape {list(lengths.shape)}")
    if lengths.is_floating_point():
        raise RuntimeError(f"{op}: {name} must be an integer tensor, got {lengths.dtype}")
    lens = lengths.to(torch.int64)
    if lens.numel() > 0 and bool((lens < 0).any()):
        raise RuntimeError(f"{op}: {name} must be non-negative, got {_show(lengths)}")
    return lens


def _total(lens: Tensor) -> int:
    return int(lens.sum()) if lens.numel() > 0 else 0


def _longest(lens: Tensor) -> int:
    return int(lens.max()) if lens.numel() > 0 else 0


def _offsets(lens: Tensor) -> Tensor:
    """Exclusive prefix sums: where each segment starts."""
    return torch.cumsum(lens, 0) - lens


def _segment_of(lens: Tensor, total: int, device: torch.device) -> Tensor:
    """For every element of the concatenated segments, the index of its segment."""
    ids = torch.arange(lens.numel(), dtype=torch.int64, device=device)
    return torch.repeat_interleave(ids, lens.to(device), output_size=total)


def _positions(lens: Tensor, total: int) -> Tensor:
    """For every element of the concatenated segments, its position inside its segment."""
    seg_start = torch.repeat_interleave(_offsets(lens), lens, output_size=total)
    return torch.arange(total, dtype=torch.int64, device=lens.device) - seg_start


def _ranges(starts: Tensor, lens: Tensor, total: int) -> Tensor:
    """starts[i] .. starts[i] + lens[i] - 1 for every i, concatenated."""
    return torch.repeat_interleave(starts, lens, output_size=total) + _positions(lens, total)


def _rows_of(lengths: Tensor, data: Tensor, op: str) -> Tuple[Tensor, Tensor]:
    """(lengths as int64, the segment of every row of DATA); the lengths must add up to DATA's rows."""
    if data.dim() < 1:
        raise RuntimeError(f"{op}: DATA must be at least 1-D")
    lens = _lengths(lengths, op)
    total = _total(lens)
    if total != data.size(0):
        raise RuntimeError(f"{op}: the lengths add up to {total}, but DATA has {data.size(0)} rows")
    return lens, _segment_of(lens, total, data.device)


def _expand_rows(index: Tensor, like: Tensor) -> Tensor:
    """A row index broadcast over the trailing dimensions of ``like`` (for scatter)."""
    shape: List[int] = [index.numel()] + [1] * (like.dim() - 1)
    return index.reshape(shape).expand(like.shape)


def _segment_sum(data: Tensor, seg: Tensor, count: int) -> Tensor:
    out = torch.zeros([count] + list(data.shape[1:]), dtype=data.dtype, device=data.device)
    return out.index_add(0, seg, data)


def _scale_rows(out: Tensor, factor: Tensor) -> Tensor:
    shape: List[int] = [-1] + [1] * (out.dim() - 1)
    return out * factor.reshape(shape).to(out.dtype)


def _divide_rows(out: Tensor, divisor: Tensor) -> Tensor:
    shape: List[int] = [-1] + [1] * (out.dim() - 1)
    return out / divisor.reshape(shape).to(out.dtype)


# --- lengths reductions (segment_reduction_op.h, reducer_functors.h) ----------------------------


def lengths_mean(data: Tensor, lengths: Tensor) -> Tensor:
    """LengthsMean: the sum of each segment's rows times 1/length (empty segments give zeros)."""
    lens, seg = _rows_of(lengths, data, "LengthsMean")
    out = _segment_sum(data, seg, lens.numel())
    inv = torch.reciprocal(lens.clamp(min=1).to(torch.float32).to(data.device))
    return _scale_rows(out, inv)


def lengths_max(data: Tensor, lengths: Tensor) -> Tensor:
    """LengthsMax: the elementwise max of each segment's rows (empty segments give zeros)."""
    lens, seg = _rows_of(lengths, data, "LengthsMax")
    out = torch.zeros([lens.numel()] + list(data.shape[1:]), dtype=data.dtype, device=data.device)
    if data.size(0) == 0:
        return out
    return out.scatter_reduce(0, _expand_rows(seg, data), data, "amax", include_self=False)


def lengths_weighted_sum(data: Tensor, scalars: Tensor, lengths: Tensor) -> Tensor:
    """LengthsWeightedSum: sum of each segment's rows, row r scaled by SCALARS[r]."""
    if scalars.dim() != 1:
        raise RuntimeError(
            f"LengthsWeightedSum: SCALARS mustn't have extra dimensions, got shape {list(scalars.shape)}"
        )
    if data.dim() < 1 or scalars.size(0) != data.size(0):
        raise RuntimeError(
            f"LengthsWeightedSum: SCALARS has {scalars.size(0)} entries, DATA has shape {list(data.shape)}: "
            "they must have the same first dimension"
        )
    lens, seg = _rows_of(lengths, data, "LengthsWeightedSum")
    return _segment_sum(_scale_rows(data, scalars), seg, lens.numel())


# --- sorted segment ranges -------------------------------------------------------------------------


def _lowest(dtype: torch.dtype) -> float:
    if dtype == torch.float64:
        return -1.7976931348623157e308
    return -3.4028234663852886e38


def sorted_segment_range(data: Tensor, segment_ids: Tensor, reduce: str, op: str) -> Tensor:
    """SortedSegmentRange{Sum,Mean,Max,LogSumExp,LogMeanExp}: one output row per segment id
    0..K-1 of the sorted, gap-free SEGMENT_IDS (one id per row of DATA)."""
    if segment_ids.dim() != 1:
        raise RuntimeError(f"{op}: SEGMENT_IDS must be a vector, got shape {list(segment_ids.shape)}")
    if data.dim() < 1 or segment_ids.size(0) != data.size(0):
        raise RuntimeError(
            f"{op}: SEGMENT_IDS ({segment_ids.size(0)}) must have the same length as the outer dimension of "
            f"DATA (shape {list(data.shape)})"
        )
    n = segment_ids.size(0)
    if n == 0:
        return torch.zeros([0] + list(data.shape[1:]), dtype=data.dtype, device=data.device)
    ids = segment_ids.to(torch.int64).to(data.device)
    steps = ids[1:] - ids[:-1]
    if int(ids[0]) != 0 or bool(((steps != 0) & (steps != 1)).any()):
        raise RuntimeError(f"{op}: Indices must be sorted and not have gaps, got {_show(segment_ids)}")
    count = int(ids[n - 1]) + 1
    if reduce == "sum":
        return _segment_sum(data, ids, count)
    sizes = torch.bincount(ids, minlength=count).to(data.dtype)
    if reduce == "mean":
        # Caffe2 divides every element by the segment size before adding.
        return _segment_sum(_divide_rows(data, sizes.index_select(0, ids)), ids, count)
    index = _expand_rows(ids, data)
    top = torch.zeros([count] + list(data.shape[1:]), dtype=data.dtype, device=data.device)
    # Caffe2 starts the running max at the lowest finite value.
    top = top.scatter_reduce(0, index, data, "amax", include_self=False).clamp_min(_lowest(data.dtype))
    if reduce == "max":
        return top
    shifted = torch.exp(data - top.index_select(0, ids))
    total = _segment_sum(shifted, ids, count)
    if reduce == "logmeanexp":
        total = _divide_rows(total, sizes)
    return torch.log(total) + top


# --- tile, gather, pad -----------------------------------------------------------------------------


def lengths_tile(data: Tensor, lengths: Tensor) -> Tensor:
    """LengthsTile: row i of DATA repeated lengths[i] times."""
    if data.dim() < 1:
        raise RuntimeError("LengthsTile: DATA should be at least 1-D")
    lens = _lengths(lengths, "LengthsTile")
    if lens.size(0) != data.size(0):
        raise RuntimeError(f"LengthsTile: {lens.size(0)} lengths for the {data.size(0)} rows of DATA")
    return torch.repeat_interleave(data, lens.to(data.device), dim=0, output_size=_total(lens))


def lengths_gather(items: Tensor, lengths: Tensor, indices: Tensor) -> Tensor:
    """LengthsGather: the segments of ITEMS named by INDICES, concatenated."""
    if items.dim() < 1:
        raise RuntimeError("LengthsGather: ITEMS should be at least 1-D")
    lens = _lengths(lengths, "LengthsGather")
    if indices.dim() != 1:
        raise RuntimeError(f"LengthsGather: INDICES should be 1-D, got shape {list(indices.shape)}")
    idx = indices.to(torch.int64).to(lens.device)
    if idx.numel() > 0 and bool(((idx < 0) | (idx >= lens.numel())).any()):
        raise RuntimeError(
            f"LengthsGather: INDICES {_show(indices)} must be in [0, {lens.numel()}), the number of segments"
        )
    if _total(lens) != items.size(0):
        raise RuntimeError(
            f"LengthsGather: LENGTHS (sum {_total(lens)}) must match the first dimension of ITEMS ({items.size(0)})"
        )
    picked = lens.index_select(0, idx)
    rows = _ranges(_offsets(lens).index_select(0, idx), picked, _total(picked))
    return items.index_select(0, rows.to(items.device))


def lengths_pad(data: Tensor, lengths: Tensor, padding_value: float, target_length: int) -> Tensor:
    """LengthsPad: every segment padded with padding_value to target_length rows; the result
    has lengths.size(0) * target_length rows."""
    lens, seg = _rows_of(lengths, data, "LengthsPad")
    if lens.numel() > 0 and bool((lens > target_length).any()):
        i = int(torch.nonzero(lens > target_length)[0, 0])
        raise RuntimeError(
            f"LengthsPad: Length at index = {i} ({int(lens[i])}) is larger than target length {target_length}"
        )
    shape: List[int] = [lens.numel() * target_length] + list(data.shape[1:])
    if data.is_floating_point():
        out = torch.full(shape, padding_value, dtype=data.dtype, device=data.device)
    else:
        # Caffe2 casts the double padding value to the integer type (truncation).
        out = torch.full(shape, int(padding_value), dtype=data.dtype, device=data.device)
    rows = seg * target_length + _positions(lens, data.size(0)).to(data.device)
    return out.index_copy(0, rows, data)


# --- top-k, pack, unpack ---------------------------------------------------------------------------


def lengths_top_k(data: Tensor, lengths: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """LengthsTopK: [N, k] largest values of each segment (larger first, ties by position) and
    their int32 positions inside the segment; missing entries are 0 and -1."""
    x = data.reshape(-1)
    lens = _lengths(lengths, "LengthsTopK")
    total = _total(lens)
    if total > x.numel():
        raise RuntimeError(f"LengthsTopK: the lengths add up to {total}, more than the {x.numel()} values of DATA")
    n = lens.numel()
    width = max(_longest(lens), k)
    lens = lens.to(x.device)
    seg = _segment_of(lens, total, x.device)
    pos = _positions(lens, total)
    padded = torch.full([n, width], -math.inf, dtype=x.dtype, device=x.device)
    padded = padded.index_put((seg, pos), x[:total])
    values, order = torch.sort(padded, dim=1, descending=True, stable=True)
    values = values[:, :k]
    order = order[:, :k]
    valid = torch.arange(k, device=x.device).unsqueeze(0) < lens.unsqueeze(1)
    values = torch.where(valid, values, torch.zeros_like(values))
    order = torch.where(valid, order, torch.full_like(order, -1))
    return values, order.to(torch.int32)


def pack_segments(
    lengths: Tensor, data: Tensor, max_length: int, pad_minf: bool, return_presence_mask: bool
) -> Tuple[Tensor, Tensor]:
    """PackSegments: [N, L] + DATA.shape[1:] with segment i in row i (truncated to L =
    max_length, or the longest segment when max_length is -1) and the padding zero, or -inf
    for floats with pad_minf; and the bool [N, L] presence mask (empty unless asked for)."""
    if data.dim() < 1:
        raise RuntimeError("PackSegments: DATA should be at least 1-D")
    lens = _lengths(lengths, "PackSegments", "LENGTH")
    total = _total(lens)
    if total != data.size(0):
        raise RuntimeError(
            f"PackSegments: PackSegments requires that the sum of the lengths {total} is equal to the first "
            f"data dimension {data.size(0)}"
        )
    width = max_length if max_length != -1 else _longest(lens)
    lens = lens.to(data.device)
    pad = -math.inf if pad_minf and data.is_floating_point() else 0.0
    out = torch.full([lens.numel(), width] + list(data.shape[1:]), pad, dtype=data.dtype, device=data.device)
    seg = _segment_of(lens, total, data.device)
    pos = _positions(lens, total)
    keep = pos < width
    out = out.index_put((seg[keep], pos[keep]), data[keep])
    mask = torch.zeros([0], dtype=torch.bool, device=data.device)
    if return_presence_mask:
        mask = torch.arange(width, device=data.device).unsqueeze(0) < lens.unsqueeze(1)
    return out, mask


def unpack_segments(lengths: Tensor, data: Tensor, max_length: int) -> Tensor:
    """UnpackSegments: the first lengths[i] entries of row i of the packed DATA, concatenated
    (lengths capped at max_length when it is given)."""
    if data.dim() < 2:
        raise RuntimeError(f"UnpackSegments: DATA should be at least 2-D, got shape {list(data.shape)}")
    lens = _lengths(lengths, "UnpackSegments", "LENGTH")
    if max_length != -1:
        if max_length != data.size(1):
            raise RuntimeError(
                f"UnpackSegments: max_length ({max_length}) should be equal to the second dimension of the packed "
                f"segments ({data.size(1)})"
            )
        lens = lens.clamp(max=max_length)
    if lens.size(0) != data.size(0):
        raise RuntimeError(
            f"UnpackSegments: LENGTH ({lens.size(0)} entries) should match DATA in dimension 0 ({data.size(0)})"
        )
    if lens.numel() > 0 and bool((lens > data.size(1)).any()):
        raise RuntimeError(
            f"UnpackSegments: a length in {_show(lens)} exceeds the {data.size(1)} packed entries per segment"
        )
    lens = lens.to(data.device)
    mask = torch.arange(data.size(1), device=data.device).unsqueeze(0) < lens.unsqueeze(1)
    return data[mask]


# --- positional weighted lookup ---------------------------------------------------------------------


def sparse_lengths_positional_weighted_sum(data: Tensor, weight: Tensor, indices: Tensor, lengths: Tensor) -> Tensor:
    """SparseLengthsPositionalWeightedSum: per segment, the sum of the DATA rows selected by
    INDICES, the j-th id of a segment scaled by WEIGHT[j] (float32 result)."""
    m = lengths.size(0) if lengths.dim() > 0 else 0
    shape: List[int] = [m] + list(data.shape[1:])
    if indices.numel() == 0:
        # Caffe2 returns zeros before it checks anything else.
        return torch.zeros(shape, dtype=torch.float32, device=data.device)
    op = "SparseLengthsPositionalWeightedSum"
    if indices.dim() != 1:
        raise RuntimeError(f"{op}: INDICES must be a vector, got shape {list(indices.shape)}")
    if indices.is_floating_point():
        raise RuntimeError(f"{op}: INDICES must be an integer tensor, got {indices.dtype}")
    lens = _lengths(lengths, op)
    if weight.dim() != 1:
        raise RuntimeError(f"{op}: WEIGHT must be a vector, got shape {list(weight.shape)}")
    rows = data.size(0)
    total = _total(lens)
    if total != indices.numel():
        raise RuntimeError(
            f"{op}: the sum of lengths values ({total}) should be the size of the indices tensor ({indices.numel()})"
        )
    lo, hi = torch.aminmax(indices)
    if int(lo) < 0 or int(hi) >= rows:
        bad = torch.nonzero((indices < 0) | (indices >= rows))[0, 0]
        raise RuntimeError(f"{op}: Index {int(bad)} is out of bounds: {int(indices[bad])}, range 0 to {rows}")
    if _longest(lens) > weight.numel():
        raise RuntimeError(f"{op}: a segment of {_longest(lens)} ids is longer than WEIGHT ({weight.numel()} entries)")
    lens = lens.to(data.device)
    w = weight.to(torch.float32).index_select(0, _positions(lens, total).to(weight.device)).to(data.device)
    table = data.reshape(rows, -1)
    if table.dtype == torch.float32:
        offsets = F.pad(torch.cumsum(lens, 0), [1, 0]).to(indices.dtype)
        out = F.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=w, include_last_offset=True)
    else:
        picked = table.index_select(0, indices.to(data.device)).to(torch.float32)
        out = _segment_sum(picked * w.unsqueeze(1), _segment_of(lens, total, data.device), m)
    return out.reshape(shape)


# --- IndexHash ---------------------------------------------------------------------------------


def _wrap32(x: Tensor) -> Tensor:
    """int64 values reduced to the int32 two's-complement range."""
    return torch.bitwise_and(x + 2147483648, 4294967295) - 2147483648


def index_hash(indices: Tensor, start64: int, start32: int, modulo: int) -> Tensor:
    """IndexHash: hash = start; for each byte b (little-endian, signed) of the id: hash =
    hash * 65537 + b in the id's integer type (wrapping); result (modulo + hash % modulo) % modulo.
    ``start64``/``start32`` are seed * 0xDEADBEEF wrapped to 64/32 bits."""
    if indices.dtype == torch.int64:
        h = torch.full_like(indices, start64)
        for i in range(8):
            b = torch.bitwise_and(torch.bitwise_right_shift(indices, 8 * i), 255)
            h = h * 65537 + (b - torch.bitwise_and(b, 128) * 2)
    elif indices.dtype == torch.int32:
        if modulo > 2147483647:
            raise RuntimeError(
                f"IndexHash: MODULO ({modulo}) shouldn't be larger than the numeric limit of the indices (int32)"
            )
        x = indices.to(torch.int64)
        h = torch.full_like(x, start32)
        for i in range(4):
            b = torch.bitwise_and(torch.bitwise_right_shift(x, 8 * i), 255)
            h = _wrap32(h * 65537 + (b - torch.bitwise_and(b, 128) * 2))
    else:
        raise RuntimeError(f"IndexHash: indices must be int32 or int64, got {indices.dtype}")
    return torch.fmod(torch.fmod(h, modulo) + modulo, modulo).to(indices.dtype)


# --- feature maps (feature_maps_ops.h) ----------------------------------------------------------


def _column(x: Tensor, n: int, op: str, what: str) -> Tensor:
    if x.numel() != n:
        raise RuntimeError(f"{op}: {what} has {x.numel()} entries, expected one per example ({n})")
    return x.reshape(-1)


def _present_keys(presence: Tensor, feature_ids: Tensor) -> Tuple[Tensor, Tensor]:
    """(int32 number of present features per example, their int64 ids in example-major order)."""
    n = presence.size(0)
    ids = feature_ids[: presence.size(1)].unsqueeze(0).expand(n, presence.size(1))
    return presence.sum(1).to(torch.int32), ids.reshape(-1)[presence.reshape(-1)]


def merge_dense_feature_tensors(dense: Tensor, presence: Tensor, feature_ids: Tensor) -> List[Tensor]:
    """MergeDenseFeatureTensors: the present entries of dense [N, F] as a multi-feature tensor
    (lengths int32, keys int64, values)."""
    op = "MergeDenseFeatureTensors"
    if dense.dim() != 2:
        raise RuntimeError(f"{op}: the dense input must be [examples, features], got shape {list(dense.shape)}")
    if list(presence.shape) != list(dense.shape):
        raise RuntimeError(f"{op}: presence of shape {list(presence.shape)} for data of shape {list(dense.shape)}")
    if feature_ids.numel() < dense.size(1):
        raise RuntimeError(f"{op}: {feature_ids.numel()} feature_ids for {dense.size(1)} feature columns")
    present = presence.to(torch.bool)
    lengths, keys = _present_keys(present, feature_ids)
    return [lengths, keys, dense[present]]


def merge_single_scalar_feature_tensors(inputs: List[Tensor], feature_ids: Tensor) -> List[Tensor]:
    """MergeSingleScalarFeatureTensors: (value, presence) pairs of scalar features merged into
    one multi-feature tensor (lengths int32, keys int64, values)."""
    op = "MergeSingleScalarFeatureTensors"
    n = inputs[0].numel()
    count = len(inputs) // 2
    values = torch.stack([_column(inputs[2 * i], n, op, f"input {2 * i}") for i in range(count)], 1)
    present = torch.stack(
        [_column(inputs[2 * i + 1], n, op, f"input {2 * i + 1}").to(torch.bool) for i in range(count)], 1
    )
    lengths, keys = _present_keys(present, feature_ids)
    return [lengths, keys, values[present]]


def _check_fits(used: Tensor, size: int, op: str, what: str) -> None:
    total = _total(used)
    if total > size:
        raise RuntimeError(f"{op}: the lengths of {what} add up to {total}, more than its {size} values")


def merge_single_feature_tensors(inputs: List[Tensor], feature_ids: Tensor, per: int, op: str) -> List[Tensor]:
    """MergeSingle{List,Map}FeatureTensors: per feature (lengths, [keys,] values, presence);
    merged into (lengths, keys, values.lengths, [values.keys,] values.values). Each feature's
    values are read in order, only for the examples where it is present."""
    n = inputs[0].numel()
    count = len(inputs) // per
    lens = torch.stack(
        [_lengths(_column(inputs[per * i], n, op, f"input {per * i}"), op) for i in range(count)], 1
    )
    present = torch.stack(
        [_column(inputs[per * i + per - 1], n, op, f"input {per * i + per - 1}").to(torch.bool) for i in range(count)],
        1,
    )
    used = torch.where(present, lens, torch.zeros_like(lens))
    lengths, keys = _present_keys(present, feature_ids)
    out: List[Tensor] = [lengths, keys, lens.reshape(-1)[present.reshape(-1)].to(torch.int32)]
    flat = used.reshape(-1)
    total = _total(flat)
    for j in range(1, per - 1):
        parts = [inputs[per * i + j] for i in range(count)]
        base: List[int] = []
        size = 0
        for i in range(count):
            _check_fits(used[:, i], parts[i].size(0), op, f"input {per * i + j}")
            base.append(size)
            size += parts[i].size(0)
        starts = _offsets_2d(used) + torch.tensor(base, dtype=torch.int64, device=used.device).unsqueeze(0)
        rows = _ranges(starts.reshape(-1), flat, total)
        merged = torch.cat(parts, 0)
        out.append(merged.index_select(0, rows.to(merged.device)))
    return out


def _offsets_2d(lens: Tensor) -> Tensor:
    """Exclusive prefix sums down each column."""
    return torch.cumsum(lens, 0) - lens


def merge_multi_feature_tensors(inputs: List[Tensor], per: int, op: str) -> List[Tensor]:
    """MergeMulti{Scalar,List,Map}FeatureTensors: per input (lengths, keys, values) or
    (lengths, keys, values.lengths, [values.keys,] values.values), merged example by example,
    input by input."""
    n = inputs[0].numel()
    count = len(inputs) // per
    lens = torch.stack(
        [_lengths(_column(inputs[per * i], n, op, f"input {per * i}"), op) for i in range(count)], 1
    )
    base: List[int] = []
    size = 0
    for i in range(count):
        keys_i = inputs[per * i + 1]
        if _total(lens[:, i]) != keys_i.numel():
            raise RuntimeError(
                f"{op}: the lengths of input {per * i} add up to {_total(lens[:, i])}, but input {per * i + 1} has "
                f"{keys_i.numel()} keys"
            )
        if inputs[per * i + 2].size(0) != keys_i.numel():
            raise RuntimeError(
                f"{op}: input {per * i + 2} has {inputs[per * i + 2].size(0)} entries for {keys_i.numel()} keys"
            )
        base.append(size)
        size += keys_i.numel()
    starts = _offsets_2d(lens) + torch.tensor(base, dtype=torch.int64, device=lens.device).unsqueeze(0)
    flat = lens.reshape(-1)
    features = _ranges(starts.reshape(-1), flat, _total(flat))
    keys = torch.cat([inputs[per * i + 1].reshape(-1) for i in range(count)], 0).to(torch.int64)
    out: List[Tensor] = [lens.sum(1).to(torch.int32), keys.index_select(0, features.to(keys.device))]
    if per == 3:
        values = torch.cat([inputs[3 * i + 2] for i in range(count)], 0)
        out.append(values.index_select(0, features.to(values.device)))
        return out
    value_lens = [_lengths(inputs[per * i + 2].reshape(-1), op, f"input {per * i + 2}") for i in range(count)]
    all_value_lens = torch.cat(value_lens, 0)
    picked_lens = all_value_lens.index_select(0, features.to(all_value_lens.device))
    out.append(picked_lens.to(torch.int32))
    for j in range(3, per):
        parts = [inputs[per * i + j] for i in range(count)]
        starts_v: List[Tensor] = []
        size_v = 0
        for i in range(count):
            if _total(value_lens[i]) != parts[i].size(0):
                raise RuntimeError(
                    f"{op}: the values lengths of input {per * i + 2} add up to {_total(value_lens[i])}, but input "
                    f"{per * i + j} has {parts[i].size(0)} values"
                )
            starts_v.append(_offsets(value_lens[i]) + size_v)
            size_v += parts[i].size(0)
        starts_all = torch.cat(starts_v, 0).index_select(0, features.to(all_value_lens.device))
        rows = _ranges(starts_all, picked_lens, _total(picked_lens))
        merged = torch.cat(parts, 0)
        out.append(merged.index_select(0, rows.to(merged.device)))
    return out


# --- MergeIdLists (merge_id_lists_op.h) ----------------------------------------------------------


def merge_id_lists(inputs: List[Tensor]) -> Tuple[Tensor, Tensor]:
    """MergeIdLists: per example, the sorted distinct ids of all the (lengths, values) id lists;
    returns (int32 lengths, values in the first list's dtype)."""
    op = "MergeIdLists"
    count = len(inputs) // 2
    n = inputs[0].numel()
    if inputs[0].dim() != 1:
        raise RuntimeError(f"{op}: LENGTHS should be 1-D, got shape {list(inputs[0].shape)}")
    dtype = inputs[1].dtype
    device = inputs[1].device
    segs: List[Tensor] = []
    vals: List[Tensor] = []
    for i in range(count):
        lens = _lengths(inputs[2 * i], op, f"input {2 * i} (LENGTHS)")
        if lens.numel() != n:
            raise RuntimeError(f"{op}: LENGTHS should be equal: input {2 * i} has {lens.numel()} entries, not {n}")
        values = inputs[2 * i + 1]
        if values.dim() != 1:
            raise RuntimeError(f"{op}: VALUES should be 1-D, got shape {list(values.shape)} for input {2 * i + 1}")
        if values.dtype != dtype:
            raise RuntimeError(f"{op}: input {2 * i + 1} holds {values.dtype} ids, input 1 holds {dtype}")
        total = _total(lens)
        if total > values.numel():
            raise RuntimeError(
                f"{op}: the lengths of input {2 * i} add up to {total}, more than the {values.numel()} ids of "
                f"input {2 * i + 1}"
            )
        segs.append(_segment_of(lens, total, device))
        vals.append(values[:total])
    seg = torch.cat(segs, 0)
    val = torch.cat(vals, 0)
    by_value = torch.sort(val, stable=True)[1]
    by_example = torch.sort(seg.index_select(0, by_value), stable=True)[1]
    order = by_value.index_select(0, by_example)
    seg = seg.index_select(0, order)
    val = val.index_select(0, order)
    first = torch.ones_like(seg, dtype=torch.bool)
    if seg.numel() > 1:
        first[1:] = (seg[1:] != seg[:-1]) | (val[1:] != val[:-1])
    return torch.bincount(seg[first], minlength=n).to(torch.int32), val[first]
