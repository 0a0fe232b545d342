"""Caffe2 semantics of the sparse-feature operators of DPER-style ranking nets (id lists,
lengths, ranges, masks), as TorchScript-compatible tensor functions.

Lengths and ranges are read as int32 or int64 (Caffe2 reads most lengths as int32); outputs
keep Caffe2's dtypes (int32 lengths/ranges/segment ids, float weights). Operators whose output
size depends on the input's values (sum of lengths, ...) check those values on the host, as
Caffe2 does. No ``from __future__ import annotations``: TorchScript reads the annotations.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor


def _show(values: Tensor) -> str:
    """Integer values for an error message."""
    items: List[int] = values.reshape(-1).to(torch.int64).tolist()
    return str(items)


def _lengths(lengths: Tensor, op: str) -> Tensor:
    if lengths.dim() != 1:
        raise RuntimeError(f"{op}: lengths must be a vector, got shape {list(lengths.shape)}")
    lens = lengths.to(torch.int64)
    if lens.numel() > 0 and bool((lens < 0).any()):
        raise RuntimeError(f"{op}: lengths must be non-negative, got {_show(lengths)}")
    return lens


def _offsets(lens: Tensor) -> Tensor:
    """Exclusive prefix sums (the start of each segment)."""
    return torch.cumsum(lens, 0) - lens


def _positions(lens: Tensor, total: int) -> Tensor:
    """For every element of the concatenated segments, its position inside its segment."""
    seg_start = torch.repeat_interleave(_offsets(lens), lens, output_size=total)
    return torch.arange(total, dtype=torch.int64, device=lens.device) - seg_start


def lengths_to_ranges(lengths: Tensor) -> Tensor:
    """[N, 2] int32 (offset, length) of each segment."""
    lens = _lengths(lengths, "LengthsToRanges")
    return torch.stack([_offsets(lens), lens], 1).to(torch.int32)


def lengths_range_fill(lengths: Tensor) -> Tensor:
    """0..lengths[i]-1 for every segment, concatenated (int32)."""
    lens = _lengths(lengths, "LengthsRangeFill")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    return _positions(lens, total).to(torch.int32)


def lengths_to_segment_ids(lengths: Tensor) -> Tensor:
    """Segment i repeated lengths[i] times (int32)."""
    lens = _lengths(lengths, "LengthsToSegmentIds")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    ids = torch.arange(lens.numel(), dtype=torch.int32, device=lens.device)
    return torch.repeat_interleave(ids, lens, output_size=total)


def lengths_to_weights(lengths: Tensor, power: float) -> Tensor:
    """1 / lengths[i]^power repeated lengths[i] times (float32)."""
    lens = _lengths(lengths, "LengthsToWeights")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    w = 1.0 / torch.pow(lens.to(torch.float64), power)
    return torch.repeat_interleave(w, lens, output_size=total).to(torch.float32)


def segment_ids_to_lengths(segment_ids: Tensor, like: Optional[Tensor] = None) -> Tensor:
    """Number of entries of each segment id (sorted ids from 0; ``like``'s dim 0 fixes the count)."""
    ids = segment_ids
    if ids.dim() == 2:
        if ids.size(0) != 1 and ids.size(1) != 1:
            raise RuntimeError(f"SegmentIdsToLengths: input must be a vector, got shape {list(ids.shape)}")
    elif ids.dim() != 1:
        raise RuntimeError(f"SegmentIdsToLengths: input must be a vector, got shape {list(ids.shape)}")
    ids = ids.reshape(-1).to(torch.int64)
    n = ids.numel()
    count = int(ids[n - 1]) + 1 if n > 0 else 0
    if like is not None:
        if like.dim() < 1:
            raise RuntimeError("SegmentIdsToLengths: the second input must be at least 1-D")
        if count > like.size(0):
            raise RuntimeError(
                f"SegmentIdsToLengths: {count} segments inferred, more than the second input's {like.size(0)} rows"
            )
        count = like.size(0)
    if n > 0:
        if bool((ids[0] < 0) | (ids[1:] < ids[:-1]).any()):
            raise RuntimeError(f"SegmentIdsToLengths: segment ids must be sorted and non-negative, got {_show(ids)}")
    return torch.bincount(ids, minlength=count).to(torch.int32)


# --- gathers -----------------------------------------------------------------------------------


def _range_index(starts: Tensor, lens: Tensor, size: int, op: str) -> Tensor:
    """Indices start..start+len-1 of every range, concatenated, checked against ``size``."""
    if starts.numel() > 0:
        nonempty = lens > 0
        bad = nonempty & ((starts < 0) | (starts + lens > size))
        if bool((lens < 0).any()) or bool(bad.any()):
            raise RuntimeError(f"{op}: a range runs outside DATA of {size} elements")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    return torch.repeat_interleave(starts, lens, output_size=total) + _positions(lens, total)


def gather_ranges(data: Tensor, ranges: Tensor) -> Tuple[Tensor, Tensor]:
    """(the concatenated DATA ranges, int32 total length per example) for RANGES [B, R, 2]."""
    if data.dim() != 1:
        raise RuntimeError(f"GatherRanges: DATA has to be 1-D, got shape {list(data.shape)}")
    if ranges.dim() != 3 or ranges.size(2) != 2:
        raise RuntimeError(f"GatherRanges: RANGES must be [batch, ranges, 2], got {list(ranges.shape)}")
    if ranges.size(1) == 0:
        raise RuntimeError("GatherRanges: there has to be at least one range")
    r = ranges.to(torch.int64).to(data.device)
    starts = r[:, :, 0].reshape(-1)
    lens = r[:, :, 1].reshape(-1)
    idx = _range_index(starts, lens, data.numel(), "GatherRanges")
    return data.index_select(0, idx), r[:, :, 1].sum(1).to(torch.int32)


def gather_ranges_to_dense(
    data: Tensor, ranges: Tensor, key: Optional[Tensor], lengths: List[int], max_mismatched_ratio: float,
    max_empty_ratio: float, min_observation: int,
) -> List[Tensor]:
    """One [B, lengths[j]] output per feature j: range j of each example, or zeros where the range
    is empty or its length differs from lengths[j]; with KEY each range is sorted by its keys."""
    if data.dim() != 1:
        raise RuntimeError(f"GatherRangesToDense: DATA has to be 1-D, got shape {list(data.shape)}")
    if ranges.dim() != 3 or ranges.size(2) != 2:
        raise RuntimeError(f"GatherRangesToDense: RANGES must be [batch, ranges, 2], got {list(ranges.shape)}")
    if ranges.size(1) != len(lengths):
        raise RuntimeError(
            f"GatherRangesToDense: {ranges.size(1)} ranges per example but {len(lengths)} lengths"
        )
    r = ranges.to(torch.int64).to(data.device)
    batch = r.size(0)
    outs: List[Tensor] = []
    for j in range(len(lengths)):
        n = lengths[j]
        starts = r[:, j, 0]
        lens = r[:, j, 1]
        empty = lens == 0
        take = lens == n
        mismatched = ~empty & ~take
        bound = float(max(batch, min_observation))
        if max_mismatched_ratio < 1.0 and float(int(mismatched.sum())) > bound * max_mismatched_ratio:
            raise RuntimeError(
                f"GatherRangesToDense: ratio of range length mismatch for feature at index {j} exceeds "
                f"{max_mismatched_ratio}"
            )
        if max_empty_ratio < 1.0 and float(int(empty.sum())) > bound * max_empty_ratio:
            raise RuntimeError(
                f"GatherRangesToDense: ratio of empty ranges for feature at index {j} exceeds {max_empty_ratio}"
            )
        safe_starts = torch.where(take, starts, torch.zeros_like(starts))
        if batch > 0 and bool((take & ((starts < 0) | (starts + n > data.numel()))).any()):
            raise RuntimeError(f"GatherRangesToDense: a range of feature {j} runs outside DATA")
        idx = safe_starts.unsqueeze(1) + torch.arange(n, device=data.device).unsqueeze(0)
        if key is not None:
            order = torch.sort(key.index_select(0, idx.reshape(-1)).reshape(batch, n), dim=1, stable=True)[1]
            idx = idx.gather(1, order)
        vals = data.index_select(0, idx.reshape(-1)).reshape(batch, n)
        outs.append(torch.where(take.unsqueeze(1), vals, torch.zeros_like(vals)))
    return outs


# --- densify -----------------------------------------------------------------------------------


def _last_writer(flat: Tensor, size: int) -> Tensor:
    """Mask of the entries of ``flat`` that are the last to write their position (in order)."""
    order = torch.arange(flat.numel(), device=flat.device)
    last = torch.full([size], -1, dtype=torch.int64, device=flat.device).scatter_reduce(0, flat, order, "amax")
    return last.index_select(0, flat) == order


def sparse_to_dense_mask(
    indices: Tensor, values: Tensor, default: Tensor, lengths: Optional[Tensor], sorted_mask: Tensor,
    mask_pos: Tensor, return_presence_mask: bool, max_skipped_indices: int,
) -> Tuple[Tensor, Tensor]:
    """(dense [rows?, len(mask)] + default.shape, presence mask): value k goes to the column of
    mask that equals indices[k] in the row of its segment (the last one wins); ids outside the
    mask are dropped, negative ids are skipped (at most max_skipped_indices - 1 of them)."""
    if indices.dim() != 1:
        raise RuntimeError(f"SparseToDenseMask: indices must be 1-D, got shape {list(indices.shape)}")
    if values.dim() < 1 or values.size(0) != indices.size(0):
        raise RuntimeError(
            f"SparseToDenseMask: {indices.size(0)} indices but values of shape {list(values.shape)}"
        )
    if default.dim() + 1 != values.dim() or list(default.shape) != list(values.shape[1:]):
        raise RuntimeError(
            f"SparseToDenseMask: default value of shape {list(default.shape)} does not match values of shape "
            f"{list(values.shape)}"
        )
    cols = sorted_mask.numel()
    n = indices.size(0)
    ids = indices.to(torch.int64)
    if n > 0:
        skipped = int((ids < 0).sum())
        if skipped >= max_skipped_indices:
            raise RuntimeError(f"SparseToDenseMask: too many sparse indices skipped ({skipped} negative ids)")
    if lengths is not None:
        if lengths.dim() != 1:
            raise RuntimeError("SparseToDenseMask: lengths must be 1-D")
        lens = lengths.to(torch.int64).to(ids.device)
        rows = lens.size(0)
        total = int(lens.sum()) if rows > 0 else 0
        if (rows > 0 and bool((lens < 0).any())) or total > n:
            raise RuntimeError(f"SparseToDenseMask: lengths (sum {total}) do not fit the {n} indices")
        row_of = torch.repeat_interleave(torch.arange(rows, device=ids.device), lens, output_size=total)
        ids = ids[:total]
        src = values[:total]
    else:
        rows = 1
        row_of = torch.zeros([n], dtype=torch.int64, device=ids.device)
        src = values
    pos = torch.searchsorted(sorted_mask, ids).clamp(max=max(cols - 1, 0))
    hit = (sorted_mask.index_select(0, pos) == ids) & (ids >= 0)
    flat = row_of * cols + mask_pos.index_select(0, pos)
    block = list(default.shape)
    out = default.unsqueeze(0).expand([rows * cols] + block).clone()
    present = torch.zeros([rows * cols], dtype=torch.bool, device=ids.device)
    if ids.numel() > 0:
        flat = torch.where(hit, flat, torch.full_like(flat, rows * cols))
        keep = _last_writer(flat, rows * cols + 1) & hit
        out = out.index_copy(0, flat[keep], src[keep])
        present = present.index_fill(0, flat[keep], True)
    shape: List[int] = [cols]
    if lengths is not None:
        shape = [rows, cols]
    return out.reshape(shape + block), present.reshape(shape)


def sparse_to_dense(indices: Tensor, values: Tensor, like: Optional[Tensor], output_first_dim: int) -> Tensor:
    """[first_dim] + values.shape[1:], out[indices[k]] += values[k]; first_dim is the argument,
    else like's dim 0, else max(indices) + 1."""
    if indices.dim() != 1:
        raise RuntimeError(f"SparseToDense: indices must be 1-D, got shape {list(indices.shape)}")
    if values.dim() < 1 or values.size(0) != indices.size(0):
        raise RuntimeError(f"SparseToDense: {indices.size(0)} indices but values of shape {list(values.shape)}")
    idx = indices.to(torch.int64)
    if output_first_dim > 0:
        first = output_first_dim
    elif like is not None:
        if like.dim() < 1:
            raise RuntimeError("SparseToDense: data_to_infer_dim must be at least 1-D")
        first = like.size(0)
    else:
        first = int(idx.max()) + 1 if idx.numel() > 0 else 0
    if idx.numel() > 0 and bool(((idx < 0) | (idx >= first)).any()):
        raise RuntimeError(f"SparseToDense: an index is outside [0, {first})")
    out = torch.zeros([first] + list(values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add(0, idx.to(values.device), values)


def fill_examples_with_indicator(data: Tensor, indicator: Tensor) -> Tensor:
    """[len(indicator)] + data.shape[1:]: the rows of DATA in order where indicator is set, zeros elsewhere."""
    if indicator.dim() != 1:
        raise RuntimeError(f"FillExamplesWithIndicator: indicator must be 1-D, got {list(indicator.shape)}")
    on = indicator.to(torch.bool).to(data.device)
    count = int(on.sum()) if on.numel() > 0 else 0
    if data.dim() < 1 or data.size(0) != count:
        raise RuntimeError(
            f"FillExamplesWithIndicator: {count} indicators are set but DATA has shape {list(data.shape)}"
        )
    out = torch.zeros([on.numel()] + list(data.shape[1:]), dtype=data.dtype, device=data.device)
    return out.index_copy(0, torch.nonzero(on).reshape(-1), data)


# --- one-hot and buckets -----------------------------------------------------------------------


def batch_one_hot(data: Tensor, lengths: Tensor, values: Tensor) -> Tensor:
    """[N, sum(lengths)]: column block j holds data[:, j] == values of block j (data's dtype)."""
    if data.dim() < 1:
        raise RuntimeError("BatchOneHot: data must be at least 1-D")
    N = data.size(0)
    X = data.reshape(N, -1)
    lens = _lengths(lengths.reshape(-1), "BatchOneHot").to(data.device)
    if lens.numel() != X.size(1):
        raise RuntimeError(f"BatchOneHot: {lens.numel()} lengths for {X.size(1)} columns of data")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    if values.numel() != total:
        raise RuntimeError(f"BatchOneHot: {values.numel()} values but the lengths add up to {total}")
    col = torch.repeat_interleave(torch.arange(lens.numel(), device=data.device), lens, output_size=total)
    return (X.index_select(1, col) == values.reshape(1, -1).to(X.dtype)).to(data.dtype)


def one_hot(indices: Tensor, index_size: Tensor) -> Tensor:
    """[N, index_size] float: row i is 1 at indices[i]."""
    size = int(index_size.reshape(-1)[0])
    idx = indices.reshape(-1).to(torch.int64)
    if idx.numel() > 0 and bool(((idx < 0) | (idx >= size)).any()):
        raise RuntimeError(f"OneHot: an index is outside [0, {size})")
    out = torch.zeros([idx.numel(), size], dtype=torch.float32, device=indices.device)
    return out.scatter(1, idx.unsqueeze(1), 1.0)


def sparse_label_split(
    lengths: Tensor, label_index: Tensor, label_value: Tensor, num_labels: int, with_offset_map: bool
) -> List[Tensor]:
    """num_labels value lists, num_labels int32 example-id lists and (optionally) the int32
    position of each entry in its label's list."""
    lens = _lengths(lengths, "SparseLabelSplit")
    ind = label_index.reshape(-1).to(torch.int64)
    n = ind.numel()
    if label_value.dim() < 1 or label_value.size(0) != n:
        raise RuntimeError("SparseLabelSplit: label_index should have the same length as label_value")
    total = int(lens.sum()) if lens.numel() > 0 else 0
    if total != n:
        raise RuntimeError(f"SparseLabelSplit: the lengths add up to {total}, not the {n} labels given")
    if n > 0 and bool(((ind < 0) | (ind >= num_labels)).any()):
        raise RuntimeError(f"SparseLabelSplit: label_index out of range [0, {num_labels})")
    example = torch.repeat_interleave(torch.arange(lens.numel(), device=ind.device), lens, output_size=n)
    values: List[Tensor] = []
    examples: List[Tensor] = []
    offset = torch.zeros([n], dtype=torch.int64, device=ind.device)
    for label in range(num_labels):
        sel = ind == label
        pick = torch.nonzero(sel).reshape(-1)
        values.append(label_value.index_select(0, pick.to(label_value.device)))
        examples.append(example.index_select(0, pick).to(torch.int32))
        offset = torch.where(sel, torch.cumsum(sel.to(torch.int64), 0) - 1, offset)
    out = values + examples
    if with_offset_map:
        out.append(offset.to(torch.int32))
    return out
