"""Caffe2 import of the segment operators (lengths reductions, sorted segment ranges,
LengthsTile/Gather/Pad/TopK, Pack/UnpackSegments, SparseLengthsPositionalWeightedSum,
IndexHash, EnsureCPUOutput, the feature-merge family and MergeIdLists).

References are NumPy/Python loops written from Caffe2's operator sources
(caffe2/operators/segment_reduction_op.h, reducer_functors.h, lengths_tile_op.h,
utility_ops.h, lengths_pad_op.h, lengths_top_k_op.cc, pack_segments.cc, lengths_reducer_ops.h,
index_hash_ops.h, feature_maps_ops.h, merge_id_lists_op.h). Integer and copied outputs are
compared exactly; float reductions with rtol=1e-6, atol=1e-6 (values of order 1).
"""
import heapq

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, assert_exact as exact, fill, run_single_op_numpy as run  # noqa: E402,F401
from utils import single_op_net as build  # noqa: E402

IDX = [np.int32, np.int64]
TOL = dict(rtol=1e-6, atol=1e-6)


def close(actual, expected):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **TOL)


def where(op_type):
    return rf"{op_type} \(predict net operator #0"


# --- references (Caffe2's loops) -------------------------------------------------------------------


def np_lengths_reduce(data, lengths, kind, scalars=None):
    out = np.zeros((len(lengths),) + data.shape[1:], data.dtype)
    idx = 0
    for r, n in enumerate(lengths):
        acc = np.zeros(data.shape[1:], data.dtype)
        for c in range(n):
            row = data[idx]
            if kind == "max":
                acc = row.copy() if c == 0 else np.maximum(acc, row)
            elif kind == "wsum":
                acc = acc + scalars[idx] * row
            else:
                acc = acc + row
            idx += 1
        if kind == "mean" and n > 0:
            acc = acc * np.float32(1.0 / n)
        out[r] = acc
    assert idx == data.shape[0]
    return out


def np_sorted_range(data, ids, kind):
    k = ids[-1] + 1 if len(ids) else 0
    out = np.zeros((k,) + data.shape[1:], data.dtype)
    i = 0
    while i < len(ids):
        start = i
        while i < len(ids) and ids[i] == ids[start]:
            i += 1
        block = data[start:i]
        blocks = i - start
        if kind == "sum":
            out[ids[start]] = block.sum(0)
        elif kind == "mean":
            acc = np.zeros(data.shape[1:], data.dtype)
            for b in block:
                acc = acc + b / data.dtype.type(blocks)
            out[ids[start]] = acc
        else:
            m = np.full(data.shape[1:], np.finfo(data.dtype).min, data.dtype)
            for b in block:
                m = np.maximum(m, b)
            if kind == "max":
                out[ids[start]] = m
            else:
                s = np.exp(block - m).sum(0)
                if kind == "logmeanexp":
                    s = s / blocks
                out[ids[start]] = np.log(s) + m
    return out


def np_top_k(x, lengths, k):
    """Caffe2's min-heap: top = smallest value, among equal values the larger position."""
    values = np.zeros((len(lengths), k), np.float32)
    indices = np.zeros((len(lengths), k), np.int32)
    nxt = 0
    for i, n in enumerate(lengths):
        heap = []
        for j in range(n):
            v = x[nxt]
            nxt += 1
            if len(heap) < k or v > heap[0][0]:
                heapq.heappush(heap, (v, -j))
            if len(heap) > k:
                heapq.heappop(heap)
        last = len(heap)
        for j in range(k):
            if heap:
                v, negj = heapq.heappop(heap)
                values[i, last - j - 1] = v
                indices[i, last - j - 1] = -negj
            else:
                values[i, j] = 0
                indices[i, j] = -1
    return values, indices


def np_pack(lengths, data, max_length=-1, pad=0.0):
    longest = max([0] + [int(v) for v in lengths])
    width = longest if max_length == -1 else max_length
    out = np.full((len(lengths), width) + data.shape[1:], pad, data.dtype)
    mask = np.zeros((len(lengths), width), bool)
    start = 0
    for i, n in enumerate(lengths):
        m = min(int(n), width)
        out[i, :m] = data[start:start + m]
        mask[i, :m] = True
        start += int(n)
    return out, mask


def np_unpack(lengths, data, max_length=-1):
    rows = []
    for i, n in enumerate(lengths):
        m = int(n) if max_length == -1 else min(int(n), max_length)
        rows.extend(data[i, :m])
    return np.array(rows, data.dtype).reshape((-1,) + data.shape[2:])


def wrap(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def py_index_hash(ids, seed, modulo, bits):
    out = []
    for v in ids:
        raw = int(v) & ((1 << bits) - 1)
        hashed = wrap(wrap(seed * 0xDEADBEEF, 64), bits)
        for i in range(bits // 8):
            byte = wrap((raw >> (8 * i)) & 0xFF, 8)
            hashed = wrap(hashed * 65537 + byte, bits)
        rem = abs(hashed) % modulo * (-1 if hashed < 0 else 1)  # C's %: the sign of the dividend
        out.append((modulo + rem) % modulo)
    return out


# --- lengths reductions --------------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
@pytest.mark.parametrize("shape", [(8,), (8, 3), (8, 2, 3)])
def test_lengths_reductions(idx_dtype, shape):
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape).astype(np.float32)
    lengths = np.array([2, 0, 5, 1, 0], idx_dtype)
    scalars = rng.standard_normal(8).astype(np.float32)
    (mean,) = run("LengthsMean", {"d": data, "l": lengths}, ["o"])
    close(mean, np_lengths_reduce(data, lengths, "mean"))
    (mx,) = run("LengthsMax", {"d": data, "l": lengths}, ["o"])
    exact(mx, np_lengths_reduce(data, lengths, "max"), np.float32)
    (ws,) = run("LengthsWeightedSum", {"d": data, "s": scalars, "l": lengths}, ["o"], grad_on_weights=1)
    close(ws, np_lengths_reduce(data, lengths, "wsum", scalars))


def test_lengths_reductions_errors():
    data = np.ones((4, 2), np.float32)
    for op_type in ("LengthsMean", "LengthsMax"):
        with pytest.raises(RuntimeError, match=where(op_type) + r".*lengths add up to 5, but DATA has 4 rows"):
            run(op_type, {"d": data, "l": np.array([2, 3], np.int32)}, ["o"])
        with pytest.raises(RuntimeError, match=where(op_type) + r".*non-negative"):
            run(op_type, {"d": data, "l": np.array([5, -1], np.int32)}, ["o"])
    with pytest.raises(RuntimeError, match=where("LengthsWeightedSum") + r".*SCALARS mustn't have extra dimensions"):
        run("LengthsWeightedSum", {"d": data, "s": np.ones((4, 1), np.float32), "l": np.array([4], np.int32)}, ["o"])
    with pytest.raises(RuntimeError, match=where("LengthsWeightedSum") + r".*same first dimension"):
        run("LengthsWeightedSum", {"d": data, "s": np.ones(3, np.float32), "l": np.array([4], np.int32)}, ["o"])
    # all-empty segments
    (out,) = run("LengthsMax", {"d": np.zeros((0, 2), np.float32), "l": np.array([0, 0], np.int64)}, ["o"])
    exact(out, np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("idx_dtype", IDX)
@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max", "LogSumExp", "LogMeanExp"])
def test_sorted_segment_range(idx_dtype, kind):
    rng = np.random.default_rng(1)
    ids = np.array([0, 0, 1, 2, 2, 2, 3], idx_dtype)
    data = rng.standard_normal((7, 2, 3)).astype(np.float32)
    (out,) = run(f"SortedSegmentRange{kind}", {"d": data, "ids": ids}, ["o"])
    close(out, np_sorted_range(data, ids, kind.lower()))
    (empty,) = run(f"SortedSegmentRange{kind}", {"d": data[:0], "ids": ids[:0]}, ["o"])
    exact(empty, np.zeros((0, 2, 3), np.float32))
    for bad in ([0, 0, 2, 2, 2, 3, 3], [1, 1, 2, 2, 2, 3, 3], [0, 1, 0, 1, 2, 2, 3]):
        with pytest.raises(RuntimeError, match=where(f"SortedSegmentRange{kind}") + ".*sorted and not have gaps"):
            run(f"SortedSegmentRange{kind}", {"d": data, "ids": np.array(bad, idx_dtype)}, ["o"])
    with pytest.raises(RuntimeError, match="same length as the outer dimension"):
        run(f"SortedSegmentRange{kind}", {"d": data[:6], "ids": ids}, ["o"])


# --- tile, gather, pad, top-k --------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
def test_lengths_tile(idx_dtype):
    data = np.array([[1.0, 1.2], [2.3, 3.4], [4.5, 5.7], [6.8, 7.9]], np.float32)
    lengths = np.array([0, 1, 3, 2], idx_dtype)
    (out,) = run("LengthsTile", {"d": data, "l": lengths}, ["o"])
    ref = [data[i] for i, n in enumerate(lengths) for _ in range(n)]
    exact(out, np.array(ref), np.float32)
    (ints,) = run("LengthsTile", {"d": np.arange(4, dtype=np.int64), "l": lengths}, ["o"])
    exact(ints, [1, 2, 2, 2, 3, 3], np.int64)
    with pytest.raises(RuntimeError, match=where("LengthsTile") + ".*3 lengths for the 4 rows"):
        run("LengthsTile", {"d": data, "l": lengths[:3]}, ["o"])


@pytest.mark.parametrize("idx_dtype", IDX)
def test_lengths_gather(idx_dtype):
    items = np.arange(14, dtype=np.float32).reshape(7, 2)
    lengths = np.array([2, 0, 3, 2], np.int32)
    indices = np.array([2, 0, 1, 2, 3], idx_dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ref = [items[offsets[i] + j] for i in indices for j in range(lengths[i])]
    (out,) = run("LengthsGather", {"i": items, "l": lengths, "x": indices}, ["o"])
    exact(out, np.array(ref), np.float32)
    (none,) = run("LengthsGather", {"i": items, "l": lengths, "x": indices[:0]}, ["o"])
    exact(none, np.zeros((0, 2), np.float32))
    with pytest.raises(RuntimeError, match=where("LengthsGather") + r".*must be in \[0, 4\)"):
        run("LengthsGather", {"i": items, "l": lengths, "x": np.array([4], idx_dtype)}, ["o"])
    with pytest.raises(RuntimeError, match=where("LengthsGather") + ".*must match the first dimension of ITEMS"):
        run("LengthsGather", {"i": items, "l": lengths[:3], "x": np.array([0], idx_dtype)}, ["o"])


@pytest.mark.parametrize("idx_dtype", IDX)
def test_lengths_pad(idx_dtype):
    data = np.arange(12, dtype=np.float32).reshape(6, 2)
    lengths = np.array([2, 0, 3, 1], idx_dtype)

    def ref(data, pad, target):
        out = np.full((len(lengths) * target,) + data.shape[1:], pad, data.dtype)
        start = 0
        for i, n in enumerate(lengths):
            out[i * target:i * target + n] = data[start:start + n]
            start += n
        return out

    (out,) = run("LengthsPad", {"d": data, "l": lengths}, ["o"], padding_value=-2.5, target_length=3)
    exact(out, ref(data, -2.5, 3), np.float32)
    ints = np.arange(6, dtype=np.int64)
    (out,) = run("LengthsPad", {"d": ints, "l": lengths}, ["o"], padding_value=-1.7, target_length=4)
    exact(out, ref(ints, -1, 4), np.int64)  # the double -1.7 truncated to the integer type
    (out,) = run("LengthsPad", {"d": data.astype(np.float64), "l": lengths}, ["o"], target_length=3)
    exact(out, ref(data.astype(np.float64), -1.0, 3), np.float64)  # padding_value defaults to -1
    with pytest.raises(RuntimeError, match=where("LengthsPad") + ".*Length at index = 2 .* larger than target length"):
        run("LengthsPad", {"d": data, "l": lengths}, ["o"], target_length=2)
    with pytest.raises(RuntimeError, match=where("LengthsPad") + ".*add up to 6, but DATA has 5 rows"):
        run("LengthsPad", {"d": data[:5], "l": lengths}, ["o"], target_length=3)
    with pytest.raises(c2.NetImportError, match=r"LengthsPad .*target_length argument must be >= 1"):
        c2.load_net(build("LengthsPad", ["d", "l"], ["o"]))


@pytest.mark.parametrize("idx_dtype", IDX)
def test_lengths_top_k(idx_dtype):
    x = np.array([3, 1, 3, 2, 5, 5, 5, -1, 0.5, 7, 7, -np.inf, 2], np.float32)
    lengths = np.array([4, 0, 3, 1, 5], idx_dtype)
    for k in (1, 2, 3, 6):
        values, indices = run("LengthsTopK", {"x": x, "l": lengths}, ["v", "i"], k=k)
        ref_v, ref_i = np_top_k(x, lengths, k)
        exact(values, ref_v, np.float32)
        exact(indices, ref_i, np.int32)
    values, indices = run("LengthsTopK", {"x": x[:0], "l": lengths[:0]}, ["v", "i"], k=2)
    exact(values, np.zeros((0, 2), np.float32))
    with pytest.raises(RuntimeError, match=where("LengthsTopK") + ".*add up to 13, more than the 12 values"):
        run("LengthsTopK", {"x": x[:12], "l": lengths}, ["v", "i"], k=2)
    with pytest.raises(c2.NetImportError, match=r"LengthsTopK .*k argument must be >= 1"):
        c2.load_net(build("LengthsTopK", ["x", "l"], ["v", "i"]))


def test_lengths_top_k_gradient():
    x = torch.tensor([3.0, 1.0, 4.0, 2.0, 5.0], requires_grad=True)
    model = c2.load_net(build("LengthsTopK", ["x", "l"], ["v", "i"], k=2))
    values, _ = model(x, torch.tensor([3, 2], dtype=torch.int32))
    values.sum().backward()
    exact(x.grad.numpy(), [1.0, 0.0, 1.0, 1.0, 1.0])


# --- pack / unpack ---------------------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
def test_pack_unpack_segments(idx_dtype):
    rng = np.random.default_rng(2)
    lengths = np.array([2, 0, 4, 1], idx_dtype)
    data = rng.standard_normal((7, 3)).astype(np.float32)
    (packed,) = run("PackSegments", {"l": lengths, "d": data}, ["p"])
    exact(packed, np_pack(lengths, data)[0], np.float32)
    packed, mask = run(
        "PackSegments", {"l": lengths, "d": data}, ["p", "m"], pad_minf=1, return_presence_mask=1
    )
    ref, ref_mask = np_pack(lengths, data, pad=-np.inf)
    exact(packed, ref, np.float32)
    exact(mask, ref_mask, np.bool_)
    # max_length truncates longer segments (Caffe2's CPU kernel) and pads the others
    for max_length in (2, 6):
        packed, mask = run(
            "PackSegments", {"l": lengths, "d": data}, ["p", "m"], max_length=max_length, return_presence_mask=1
        )
        ref, ref_mask = np_pack(lengths, data, max_length)
        exact(packed, ref)
        exact(mask, ref_mask)
        (back,) = run("UnpackSegments", {"l": lengths, "d": packed}, ["u"], max_length=max_length)
        exact(back, np_unpack(lengths, packed, max_length), np.float32)
    # integer data pads with 0 even with pad_minf
    (packed,) = run("PackSegments", {"l": lengths, "d": np.arange(7, dtype=np.int32)}, ["p"], pad_minf=1)
    exact(packed, np_pack(lengths, np.arange(7, dtype=np.int32))[0], np.int32)
    (packed,) = run("PackSegments", {"l": lengths, "d": data}, ["p"])
    (back,) = run("UnpackSegments", {"l": lengths, "d": packed}, ["u"])
    exact(back, data, np.float32)
    (empty,) = run("PackSegments", {"l": np.zeros(2, idx_dtype), "d": data[:0]}, ["p"])
    exact(empty, np.zeros((2, 0, 3), np.float32))


def test_pack_unpack_errors():
    lengths = np.array([2, 3], np.int32)
    data = np.zeros((4, 2), np.float32)
    with pytest.raises(RuntimeError, match=where("PackSegments") + ".*sum of the lengths 5 is equal to the first"):
        run("PackSegments", {"l": lengths, "d": data}, ["p"])
    packed = np.zeros((2, 3, 2), np.float32)
    with pytest.raises(RuntimeError, match=where("UnpackSegments") + ".*max_length .4. should be equal to the second"):
        run("UnpackSegments", {"l": lengths, "d": packed}, ["u"], max_length=4)
    with pytest.raises(RuntimeError, match=where("UnpackSegments") + ".*LENGTH .3 entries. should match DATA"):
        run("UnpackSegments", {"l": np.array([1, 1, 1], np.int32), "d": packed}, ["u"])
    with pytest.raises(RuntimeError, match=where("UnpackSegments") + ".*exceeds the 3 packed entries"):
        run("UnpackSegments", {"l": np.array([1, 4], np.int32), "d": packed}, ["u"])
    with pytest.raises(c2.NetImportError, match=r"PackSegments .*needs return_presence_mask=1"):
        c2.load_net(build("PackSegments", ["l", "d"], ["p", "m"]))
    with pytest.raises(c2.NetImportError, match=r"PackSegments .*needs a second output"):
        c2.load_net(build("PackSegments", ["l", "d"], ["p"], return_presence_mask=1))


def test_pack_segments_gradient():
    data = torch.arange(5.0, requires_grad=True)
    model = c2.load_net(build("PackSegments", ["l", "d"], ["p"]))
    packed = model(torch.tensor([2, 3]), data)
    (packed * torch.arange(6.0).reshape(2, 3)).sum().backward()
    exact(data.grad.numpy(), [0.0, 1.0, 3.0, 4.0, 5.0])


# --- positional weighted lookup ------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
@pytest.mark.parametrize("table_dtype", [np.float32, np.float16])
def test_sparse_lengths_positional_weighted_sum(idx_dtype, table_dtype):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((10, 4)).astype(table_dtype)
    weight = rng.standard_normal(5).astype(np.float32)
    indices = np.array([1, 9, 3, 3, 0, 7, 2, 2], idx_dtype)
    lengths = np.array([3, 0, 5], np.int32)
    ref = np.zeros((3, 4), np.float32)
    cur = 0
    for m, n in enumerate(lengths):
        for j in range(n):
            ref[m] += weight[j] * data[indices[cur]].astype(np.float32)
            cur += 1
    (out,) = run("SparseLengthsPositionalWeightedSum", {"d": data, "w": weight, "i": indices, "l": lengths}, ["o"])
    assert out.dtype == np.float32
    close(out, ref)
    (zeros,) = run(
        "SparseLengthsPositionalWeightedSum", {"d": data, "w": weight, "i": indices[:0], "l": lengths}, ["o"]
    )
    exact(zeros, np.zeros((3, 4), np.float32))
    bad = indices.copy()
    bad[4] = 10
    slpws = where("SparseLengthsPositionalWeightedSum")
    with pytest.raises(RuntimeError, match=slpws + ".*Index 4 is out of bounds: 10"):
        run("SparseLengthsPositionalWeightedSum", {"d": data, "w": weight, "i": bad, "l": lengths}, ["o"])
    with pytest.raises(RuntimeError, match="sum of lengths values .7. should be the size of the indices tensor .8."):
        run("SparseLengthsPositionalWeightedSum",
            {"d": data, "w": weight, "i": indices, "l": np.array([3, 0, 4], np.int32)}, ["o"])
    with pytest.raises(RuntimeError, match="longer than WEIGHT"):
        run("SparseLengthsPositionalWeightedSum", {"d": data, "w": weight[:4], "i": indices, "l": lengths}, ["o"])


def test_positional_weights_from_init_net_are_buffers():
    """DATA and WEIGHT from the init net are parameters (not inputs), held as buffers: Caffe2 has
    no gradient for this operator."""
    rng = np.random.default_rng(4)
    init = c2.NetDef(name="init")
    fill(init, "table", rng.standard_normal((6, 2)).astype(np.float32))
    fill(init, "pos_w", rng.standard_normal(3).astype(np.float32))
    net = build("SparseLengthsPositionalWeightedSum", ["table", "pos_w", "ids", "lengths"], ["o"])
    model = c2.load_net(net, init)
    assert model.caffe2_inputs == ["ids", "lengths"]
    assert dict(model.named_parameters()) == {}
    out = model(torch.tensor([0, 5, 1]), torch.tensor([2, 1], dtype=torch.int32))
    table, w = model.table.numpy(), model.pos_w.numpy()
    close(out.numpy(), np.stack([w[0] * table[0] + w[1] * table[5], w[0] * table[1]]))


# --- IndexHash, EnsureCPUOutput --------------------------------------------------------------------


@pytest.mark.parametrize("dtype,bits", [(np.int32, 32), (np.int64, 64)])
@pytest.mark.parametrize("seed,modulo", [(0, 100), (7, 1000003), (-3, 17), (123456789, 2**31 - 1)])
def test_index_hash(dtype, bits, seed, modulo):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    ids = np.concatenate([
        np.array([0, 1, -1, 255, 256, -129, info.max, info.min], dtype),
        rng.integers(info.min, info.max, 50, dtype=dtype),
    ])
    (out,) = run("IndexHash", {"ids": ids}, ["h"], seed=seed, modulo=modulo)
    exact(out, np.array(py_index_hash(ids, seed, modulo, bits), dtype), dtype)


def test_index_hash_big_modulo_and_errors():
    ids = np.array([5, -7, 2**40], np.int64)
    big = 2**40 + 15
    (out,) = run("IndexHash", {"ids": ids}, ["h"], seed=1, modulo=big)
    exact(out, py_index_hash(ids, 1, big, 64), np.int64)
    too_big = where("IndexHash") + ".*MODULO .* shouldn't be larger than the numeric limit"
    with pytest.raises(RuntimeError, match=too_big):
        run("IndexHash", {"ids": ids.astype(np.int32)}, ["h"], modulo=2**31)
    with pytest.raises(c2.NetImportError, match=r"IndexHash .*MODULO should be > 0"):
        c2.load_net(build("IndexHash", ["ids"], ["h"]))


def test_ensure_cpu_output():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (out,) = run("EnsureCPUOutput", {"x": x}, ["y"])
    exact(out, x, np.float32)


# --- feature maps -----------------------------------------------------------------------------------


def np_merge_single_scalar(pairs, ids):
    n = len(pairs[0][0])
    lengths, keys, values = [], [], []
    for e in range(n):
        lengths.append(0)
        for i, (v, p) in enumerate(pairs):
            if p[e]:
                lengths[-1] += 1
                keys.append(ids[i])
                values.append(v[e])
    return lengths, keys, values


def np_merge_single(groups, ids):
    """groups: per feature (lengths, [keys,] values, presence)."""
    n = len(groups[0][0])
    offsets = [0] * len(groups)
    out_len, out_keys, out_vlen = [], [], []
    out_parts = [[] for _ in range(len(groups[0]) - 2)]
    for e in range(n):
        out_len.append(0)
        for i, g in enumerate(groups):
            lens, pres = g[0], g[-1]
            if pres[e]:
                out_len[-1] += 1
                out_keys.append(ids[i])
                out_vlen.append(lens[e])
                for part, src in zip(out_parts, g[1:-1]):
                    part.extend(src[offsets[i]:offsets[i] + lens[e]])
                offsets[i] += lens[e]
    return [out_len, out_keys, out_vlen] + out_parts


def np_merge_multi(groups):
    """groups: per input (lengths, keys, values) or (lengths, keys, vlengths, [vkeys,] vvalues)."""
    n = len(groups[0][0])
    key_off = [0] * len(groups)
    val_off = [0] * len(groups)
    per = len(groups[0])
    out = [[] for _ in range(per)]
    for e in range(n):
        out[0].append(0)
        for i, g in enumerate(groups):
            out[0][-1] += g[0][e]
            for _ in range(g[0][e]):
                k = key_off[i]
                out[1].append(g[1][k])
                out[2].append(g[2][k])
                if per > 3:
                    vl = g[2][k]
                    for part, src in zip(out[3:], g[3:]):
                        part.extend(src[val_off[i]:val_off[i] + vl])
                    val_off[i] += vl
                key_off[i] += 1
    return out


def check_outputs(outs, refs, dtypes):
    assert len(outs) == len(refs)
    for out, ref, dtype in zip(outs, refs, dtypes):
        exact(out, np.array(ref, dtype), dtype)


def test_merge_dense_and_single_scalar():
    dense = np.array([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], np.float32)
    presence = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1]], bool)
    outs = run("MergeDenseFeatureTensors", {"d": dense, "p": presence}, ["l", "k", "v"], feature_ids=[11, 22, 33])
    pairs = [(dense[:, i], presence[:, i]) for i in range(3)]
    check_outputs(outs, np_merge_single_scalar(pairs, [11, 22, 33]), [np.int32, np.int64, np.float32])
    inputs = {}
    for i, (v, p) in enumerate(pairs):
        inputs[f"v{i}"], inputs[f"p{i}"] = v.astype(np.int64), p
    outs = run("MergeSingleScalarFeatureTensors", inputs, ["l", "k", "v"], feature_ids=[5, 6, 7])
    check_outputs(
        outs, np_merge_single_scalar([(v.astype(np.int64), p) for v, p in pairs], [5, 6, 7]),
        [np.int32, np.int64, np.int64],
    )
    with pytest.raises(c2.NetImportError, match=r"MergeSingleScalarFeatureTensors .*3 features need 3 ids"):
        c2.load_net(build("MergeSingleScalarFeatureTensors", list(inputs), ["l", "k", "v"], feature_ids=[5]))
    with pytest.raises(c2.NetImportError, match=r"MergeSingleScalarFeatureTensors .*expected groups of 2"):
        c2.load_net(build("MergeSingleScalarFeatureTensors", ["a", "b", "c"], ["l", "k", "v"], feature_ids=[5, 6]))
    with pytest.raises(RuntimeError, match=where("MergeDenseFeatureTensors") + ".*2 feature_ids for 3 feature columns"):
        run("MergeDenseFeatureTensors", {"d": dense, "p": presence}, ["l", "k", "v"], feature_ids=[1, 2])


@pytest.mark.parametrize("idx_dtype", IDX)
def test_merge_single_list_and_map(idx_dtype):
    # feature 0 present in examples 0 and 2; feature 1 in examples 0 and 1 (example 2 absent)
    f0 = (np.array([2, 0, 1], idx_dtype), np.array([10, 11, 12], np.int64), np.array([1, 0, 1], bool))
    f1 = (np.array([1, 3, 0], idx_dtype), np.array([20, 21, 22, 23], np.int64), np.array([1, 1, 0], bool))
    inputs = {}
    for i, (lens, vals, pres) in enumerate((f0, f1)):
        inputs.update({f"l{i}": lens, f"v{i}": vals, f"p{i}": pres})
    outs = run("MergeSingleListFeatureTensors", inputs, ["l", "k", "vl", "vv"], feature_ids=[100, 200])
    check_outputs(outs, np_merge_single([f0, f1], [100, 200]), [np.int32, np.int64, np.int32, np.int64])
    m0 = (f0[0], np.array([1, 2, 3], np.int64), np.array([0.5, 1.5, 2.5], np.float32), f0[2])
    m1 = (f1[0], np.array([4, 5, 6, 7], np.int64), np.array([3.5, 4.5, 5.5, 6.5], np.float32), f1[2])
    inputs = {}
    for i, g in enumerate((m0, m1)):
        inputs.update({f"l{i}": g[0], f"k{i}": g[1], f"v{i}": g[2], f"p{i}": g[3]})
    outs = run("MergeSingleMapFeatureTensors", inputs, ["l", "k", "vl", "vk", "vv"], feature_ids=[100, 200])
    check_outputs(
        outs, np_merge_single([m0, m1], [100, 200]), [np.int32, np.int64, np.int32, np.int64, np.float32]
    )
    short = dict(inputs, v1=np.array([3.5], np.float32))
    with pytest.raises(RuntimeError, match=where("MergeSingleMapFeatureTensors") + ".*add up to 4, more than its 1"):
        run("MergeSingleMapFeatureTensors", short, ["l", "k", "vl", "vk", "vv"], feature_ids=[100, 200])


@pytest.mark.parametrize("idx_dtype", IDX)
def test_merge_multi(idx_dtype):
    a = (np.array([2, 0, 1], idx_dtype), np.array([1, 2, 3], np.int64), np.array([0.1, 0.2, 0.3], np.float32))
    b = (np.array([0, 1, 2], idx_dtype), np.array([7, 8, 9], np.int64), np.array([0.7, 0.8, 0.9], np.float32))
    inputs = {f"{n}{i}": t for i, g in enumerate((a, b)) for n, t in zip("lkv", g)}
    outs = run("MergeMultiScalarFeatureTensors", inputs, ["l", "k", "v"])
    check_outputs(outs, np_merge_multi([a, b]), [np.int32, np.int64, np.float32])

    la = (a[0], a[1], np.array([2, 0, 3], np.int32), np.arange(5, dtype=np.int64))
    lb = (b[0], b[1], np.array([1, 1, 2], np.int32), np.arange(10, 14, dtype=np.int64))
    inputs = {f"{n}{i}": t for i, g in enumerate((la, lb)) for n, t in zip(("l", "k", "vl", "vv"), g)}
    outs = run("MergeMultiListFeatureTensors", inputs, ["l", "k", "vl", "vv"])
    check_outputs(outs, np_merge_multi([la, lb]), [np.int32, np.int64, np.int32, np.int64])

    ma = la[:3] + (np.arange(5, dtype=np.int64) + 100, np.linspace(0, 1, 5).astype(np.float32))
    mb = lb[:3] + (np.arange(4, dtype=np.int64) + 200, np.linspace(2, 3, 4).astype(np.float32))
    inputs = {f"{n}{i}": t for i, g in enumerate((ma, mb)) for n, t in zip(("l", "k", "vl", "vk", "vv"), g)}
    outs = run("MergeMultiMapFeatureTensors", inputs, ["l", "k", "vl", "vk", "vv"])
    check_outputs(outs, np_merge_multi([ma, mb]), [np.int32, np.int64, np.int32, np.int64, np.float32])

    bad = dict(inputs, l1=np.array([0, 1, 1], idx_dtype))
    with pytest.raises(RuntimeError, match=where("MergeMultiMapFeatureTensors") + ".*add up to 2, but input 6 has 3"):
        run("MergeMultiMapFeatureTensors", bad, ["l", "k", "vl", "vk", "vv"])
    bad = dict(inputs, vv1=np.zeros(3, np.float32))
    with pytest.raises(RuntimeError, match="values lengths of input 7 add up to 4, but input 9 has 3 values"):
        run("MergeMultiMapFeatureTensors", bad, ["l", "k", "vl", "vk", "vv"])


def test_merge_single_list_gradient():
    values = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    model = c2.load_net(
        build("MergeSingleListFeatureTensors", ["l", "v", "p"], ["ol", "ok", "ovl", "ovv"], feature_ids=[3])
    )
    out = model(torch.tensor([2, 1], dtype=torch.int32), values, torch.tensor([True, False]))[3]
    (out * torch.tensor([5.0, 7.0])).sum().backward()
    exact(values.grad.numpy(), [5.0, 7.0, 0.0])


# --- MergeIdLists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ids_dtype", IDX)
def test_merge_id_lists(ids_dtype):
    rng = np.random.default_rng(6)
    n, lists = 5, 3
    inputs, groups = {}, []
    for i in range(lists):
        lens = rng.integers(0, 4, n).astype(np.int32)
        lens[1] = 0
        vals = rng.integers(-3, 6, int(lens.sum())).astype(ids_dtype)
        inputs[f"l{i}"], inputs[f"v{i}"] = lens, vals
        groups.append((lens, vals))
    ref_len, ref_vals = [], []
    offsets = [0] * lists
    for e in range(n):
        seen = set()
        for i, (lens, vals) in enumerate(groups):
            seen.update(int(v) for v in vals[offsets[i]:offsets[i] + lens[e]])
            offsets[i] += lens[e]
        ref_len.append(len(seen))
        ref_vals.extend(sorted(seen))
    out_len, out_vals = run("MergeIdLists", inputs, ["ol", "ov"])
    exact(out_len, np.array(ref_len, np.int32), np.int32)
    exact(out_vals, np.array(ref_vals, ids_dtype), ids_dtype)
    bad = dict(inputs, l1=np.array([1, 1], np.int32))
    with pytest.raises(RuntimeError, match=where("MergeIdLists") + ".*LENGTHS should be equal"):
        run("MergeIdLists", bad, ["ol", "ov"])
    bad = dict(inputs, v2=inputs["v2"][:1])
    with pytest.raises(RuntimeError, match=where("MergeIdLists") + ".*more than the 1 ids of input 5"):
        run("MergeIdLists", bad, ["ol", "ov"])
    with pytest.raises(c2.NetImportError, match=r"MergeIdLists .*expected groups of 2"):
        c2.load_net(build("MergeIdLists", ["a", "b", "c"], ["ol", "ov"]))


# --- a small ranking-style net under TorchScript ----------------------------------------------------


def test_segment_net_scripts():
    """Id lists merged and hashed, embedded with positional weights, packed, tiled and reduced:
    the imported module runs under torch.jit.script with the same results."""
    rng = np.random.default_rng(7)
    init = c2.NetDef(name="init")
    fill(init, "table", rng.standard_normal((50, 4)).astype(np.float32))
    fill(init, "pos_w", rng.standard_normal(8).astype(np.float32))
    net = c2.NetDef(name="segments")
    add_op(net, "MergeIdLists", ["l0", "v0", "l1", "v1"], ["ml", "mv"])
    add_op(net, "IndexHash", ["mv"], ["hv"], seed=3, modulo=50)
    add_op(net, "SparseLengthsPositionalWeightedSum", ["table", "pos_w", "hv", "ml"], ["emb"])
    add_op(net, "LengthsTile", ["emb", "ml"], ["tiled"])
    add_op(net, "LengthsMax", ["tiled", "ml"], ["mx"])
    add_op(net, "PackSegments", ["ml", "hv"], ["packed", "mask"], max_length=3, return_presence_mask=1)
    add_op(net, "LengthsTopK", ["score", "ml"], ["topv", "topi"], k=2)
    add_op(net, "EnsureCPUOutput", ["topv"], ["topv_cpu"])
    net.external_input.extend(["table", "pos_w", "l0", "v0", "l1", "v1", "score"])
    net.external_output.extend(["mx", "packed", "mask", "topv_cpu", "topi"])
    model = c2.load_net(net, init)
    assert model.caffe2_inputs == ["l0", "v0", "l1", "v1", "score"]
    args = (
        torch.tensor([2, 0, 3], dtype=torch.int32), torch.tensor([5, 9, 1, 5, 2]),
        torch.tensor([1, 1, 0], dtype=torch.int32), torch.tensor([5, 8]),
        torch.tensor([0.5, -1.0, 2.0, 0.25, 3.0, 3.0]),
    )
    scripted = torch.jit.script(model)
    eager = model(*args)
    for a, b in zip(scripted(*args), eager):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    exact(eager[2].numpy(), [[True, True, False], [True, False, False], [True, True, True]])
