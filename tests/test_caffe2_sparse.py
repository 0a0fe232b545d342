"""Caffe2 import of the sparse-feature operators (id lists, lengths, ranges, one-hot, buckets).

References are NumPy loops written from Caffe2's operator sources (caffe2/operators/
sparse_to_dense_mask_op.h, sparse_to_dense_op.h, utility_ops.h, filler_op.h,
gather_ranges_to_dense_op.h, one_hot_ops.cc, bucketize_op.cc, label_ops.h).
Integer outputs are compared exactly.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, assert_exact as exact, run_single_op_numpy as run, single_op_net  # noqa: E402,F401


def load_error(op_type, n_in, outputs, **args):
    return single_op_net(op_type, [f"in{i}" for i in range(n_in)], outputs, **args)

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"
IDX = [np.int32, np.int64]


# --- references ------------------------------------------------------------------------------


def np_sparse_to_dense_mask(indices, values, default, mask, lengths=None):
    cols = len(mask)
    col_of = {m: i for i, m in enumerate(mask)}
    lens = [len(indices)] if lengths is None else list(lengths)
    rows = len(lens)
    out = np.empty((rows, cols) + default.shape, values.dtype)
    out[...] = default
    present = np.zeros((rows, cols), bool)
    offset = 0
    for r in range(rows):
        for c in range(lens[r]):
            idx = int(indices[offset + c])
            if idx < 0:
                continue
            j = col_of.get(idx, -1)
            if j != -1:
                out[r, j] = values[offset + c]
                present[r, j] = True
        offset += lens[r]
    if lengths is None:
        return out[0], present[0]
    return out, present


def np_sparse_to_dense(indices, values, first):
    out = np.zeros((first,) + values.shape[1:], values.dtype)
    for i, idx in enumerate(indices):
        out[idx] += values[i]
    return out


def np_gather_ranges(data, ranges):
    out, lens = [], []
    for b in range(ranges.shape[0]):
        total = 0
        for r in range(ranges.shape[1]):
            start, length = ranges[b, r]
            out.extend(data[start:start + length])
            total += length
        lens.append(total)
    return np.array(out, data.dtype), np.array(lens, np.int32)


# --- SparseToDenseMask -----------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_sparse_to_dense_mask(idx_dtype, with_lengths):
    rng = np.random.default_rng(0)
    mask = [42, 100, 300, 1, 0, 312, 200000]  # 200000 exercises ids beyond the dense table
    pool = mask + [5, 7, 999999]
    lengths = np.array([3, 0, 5, 2], np.int32)
    n = int(lengths.sum())
    indices = np.array([pool[i] for i in rng.integers(0, len(pool), n)], idx_dtype)
    indices[1] = indices[0]  # a duplicate id in a row: the later value wins
    indices[4] = -3  # skipped
    values = rng.standard_normal((n, 2, 3)).astype(np.float32)
    default = rng.standard_normal((2, 3)).astype(np.float32)
    inputs = {"indices": indices, "values": values, "default": default}
    if with_lengths:
        inputs["lengths"] = lengths
    out, present = run("SparseToDenseMask", inputs, ["out", "presence"], mask=mask, return_presence_mask=1)
    ref, ref_present = np_sparse_to_dense_mask(indices, values, default, mask, lengths if with_lengths else None)
    exact(out, ref)
    exact(present, ref_present, np.bool_)


def test_sparse_to_dense_mask_empty_and_errors():
    out = run("SparseToDenseMask", {"i": np.zeros(0, np.int64), "v": np.zeros(0, np.float32),
                                   "d": np.array(1.5, np.float32), "l": np.zeros(3, np.int32)}, ["o"], mask=[4, 2])[0]
    exact(out, np.full((3, 2), 1.5, np.float32))
    with pytest.raises(c2.NetImportError, match=r"SparseToDenseMask .*mask.*empty"):
        c2.load_net(load_error("SparseToDenseMask", 3, ["o"]))
    with pytest.raises(c2.NetImportError, match=r"SparseToDenseMask .*duplicated id"):
        c2.load_net(load_error("SparseToDenseMask", 3, ["o"], mask=[1, 2, 1]))
    with pytest.raises(RuntimeError, match="too many sparse indices skipped"):
        run("SparseToDenseMask", {"i": np.array([-1, -2, 3]), "v": np.ones(3, np.float32),
                                  "d": np.array(0.0, np.float32)}, ["o"], mask=[3], max_skipped_indices=2)
    with pytest.raises(RuntimeError, match="lengths"):
        run("SparseToDenseMask", {"i": np.array([1, 2]), "v": np.ones(2, np.float32), "d": np.array(0.0, np.float32),
                                  "l": np.array([2, 1], np.int32)}, ["o"], mask=[1])


def test_glow_sparse_to_dense_mask_net():
    model = c2.load_net(FIXTURES / "glow_sparse_to_dense_mask_op_net.pbtxt")
    rng = np.random.default_rng(1)
    indices = np.array([300, 7, 0, 300], np.int64)
    values = rng.standard_normal((4, 10, 20, 30)).astype(np.float32)
    default = rng.standard_normal((10, 20, 30)).astype(np.float32)
    out = model(torch.from_numpy(indices), torch.from_numpy(values), torch.from_numpy(default)).numpy()
    assert out.shape == (6, 10, 20, 30)  # no lengths input: no batch dim
    exact(out, np_sparse_to_dense_mask(indices, values, default, [42, 100, 300, 1, 0, 312])[0])


# --- SparseToDense ---------------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
@pytest.mark.parametrize("val_dtype", [np.float32, np.int32, np.int64])
def test_sparse_to_dense(idx_dtype, val_dtype):
    rng = np.random.default_rng(2)
    indices = rng.integers(0, 6, 15).astype(idx_dtype)
    values = rng.integers(-5, 5, (15, 3)).astype(val_dtype)
    inferred = run("SparseToDense", {"i": indices, "v": values}, ["o"])[0]
    exact(inferred, np_sparse_to_dense(indices, values, int(indices.max()) + 1))
    like = np.zeros((9, 2), np.float32)
    exact(run("SparseToDense", {"i": indices, "v": values, "like": like}, ["o"])[0], np_sparse_to_dense(indices, values, 9))
    exact(run("SparseToDense", {"i": indices, "v": values}, ["o"], output_first_dim=7)[0],
          np_sparse_to_dense(indices, values, 7))
    exact(run("SparseToDense", {"i": np.zeros(0, idx_dtype), "v": np.zeros((0, 3), val_dtype)}, ["o"])[0],
          np.zeros((0, 3), val_dtype))
    with pytest.raises(RuntimeError, match=r"SparseToDense: an index is outside \[0, 2\)"):
        run("SparseToDense", {"i": indices, "v": values}, ["o"], output_first_dim=2)


def test_glow_sparse_to_dense_net():
    # Glow also feeds 2-D [40, 1] indices; Caffe2 requires them 1-D, so only the 1-D case is used.
    model = c2.load_net(FIXTURES / "glow_sparse_to_dense.pbtxt")
    rng = np.random.default_rng(3)
    indices = rng.integers(0, 20, 40).astype(np.int64)
    values = rng.standard_normal((40, 10, 5)).astype(np.float32)
    out = model(torch.from_numpy(indices), torch.from_numpy(values), torch.zeros(20)).numpy()
    np.testing.assert_allclose(out, np_sparse_to_dense(indices, values, 20), rtol=1e-5, atol=1e-5)


# --- GatherRanges / GatherRangesToDense ------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
def test_gather_ranges(idx_dtype):
    data = np.arange(10, dtype=np.float32) * 1.5
    ranges = np.array([[[0, 2], [5, 0]], [[3, 4], [8, 2]], [[0, 0], [0, 0]]], idx_dtype)
    out, lens = run("GatherRanges", {"data": data, "ranges": ranges}, ["out", "lengths"])
    ref_out, ref_lens = np_gather_ranges(data, ranges)
    exact(out, ref_out)
    exact(lens, ref_lens, np.int32)
    with pytest.raises(RuntimeError, match="GatherRanges: a range runs outside DATA"):
        run("GatherRanges", {"data": data, "ranges": np.array([[[8, 3]]], idx_dtype)}, ["o", "l"])


def test_glow_gather_ranges_net():
    model = c2.load_net(FIXTURES / "glow_gather_ranges.pbtxt")
    data = np.arange(6, dtype=np.float32)
    ranges = np.array([[[0, 1], [4, 2]], [[0, 2], [1, 0]]], np.int32)
    out, lens = model(torch.from_numpy(data), torch.from_numpy(ranges))
    ref_out, ref_lens = np_gather_ranges(data, ranges)
    assert out.shape == (5,) and lens.shape == (2,)  # Glow's maxOutputSize=5 is not a Caffe2 argument
    exact(out.numpy(), ref_out)
    exact(lens.numpy(), ref_lens, np.int32)


def test_gather_ranges_to_dense():
    data = np.array([1, 2, 3, 4, 5, 6, 7, 8], np.float32)
    key = np.array([9, 3, 5, 1, 2, 8, 7, 6], np.int64)
    ranges = np.array([[[0, 2], [2, 3]], [[5, 2], [0, 0]], [[1, 1], [3, 3]]], np.int32)
    lengths = [2, 3]

    def ref(with_key):
        outs = [np.zeros((3, n), np.float32) for n in lengths]
        for b in range(3):
            for j, n in enumerate(lengths):
                start, length = ranges[b, j]
                if length != n:
                    continue
                items = list(range(start, start + length))
                if with_key:
                    items.sort(key=lambda i: key[i])
                outs[j][b] = data[items]
        return outs

    outs = run("GatherRangesToDense", {"d": data, "r": ranges}, ["a", "b"], lengths=lengths, max_mismatched_ratio=1.0)
    for o, r in zip(outs, ref(False)):
        exact(o, r)
    outs = run("GatherRangesToDense", {"d": data, "r": ranges, "k": key}, ["a", "b"], lengths=lengths,
               max_mismatched_ratio=1.0)
    for o, r in zip(outs, ref(True)):
        exact(o, r)
    with pytest.raises(RuntimeError, match="mismatch"):
        run("GatherRangesToDense", {"d": data, "r": ranges}, ["a", "b"], lengths=lengths, min_observation=1,
            max_mismatched_ratio=0.1)


# --- lengths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
def test_lengths_family(idx_dtype):
    lengths = np.array([1, 3, 0, 2], idx_dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    exact(run("LengthsToRanges", {"l": lengths}, ["o"])[0], np.stack([offsets, lengths], 1).astype(np.int32), np.int32)
    exact(run("LengthsRangeFill", {"l": lengths}, ["o"])[0],
          np.array([k for n in lengths for k in range(n)], np.int32), np.int32)
    exact(run("LengthsToSegmentIds", {"l": lengths}, ["o"])[0],
          np.array([i for i, n in enumerate(lengths) for _ in range(n)], np.int32), np.int32)
    for power in (0.5, 1.0, 2.0):
        w = run("LengthsToWeights", {"l": lengths}, ["o"], power=power)[0]
        ref = np.array([1.0 / n ** power for n in lengths for _ in range(n)], np.float32)
        assert w.dtype == np.float32
        np.testing.assert_allclose(w, ref, rtol=1e-6)
    empty = np.zeros(0, idx_dtype)
    exact(run("LengthsToRanges", {"l": empty}, ["o"])[0], np.zeros((0, 2), np.int32))
    exact(run("LengthsRangeFill", {"l": empty}, ["o"])[0], np.zeros(0, np.int32))
    with pytest.raises(RuntimeError, match="LengthsToSegmentIds: lengths must be non-negative"):
        run("LengthsToSegmentIds", {"l": np.array([2, -1], idx_dtype)}, ["o"])


@pytest.mark.parametrize("idx_dtype", IDX)
def test_segment_ids_to_lengths(idx_dtype):
    ids = np.array([0, 0, 2, 2, 2, 3], idx_dtype)
    exact(run("SegmentIdsToLengths", {"s": ids}, ["o"])[0], np.array([2, 0, 3, 1], np.int32), np.int32)
    exact(run("SegmentIdsToLengths", {"s": ids, "like": np.zeros((6, 2), np.float32)}, ["o"])[0],
          np.array([2, 0, 3, 1, 0, 0], np.int32))
    exact(run("SegmentIdsToLengths", {"s": np.zeros(0, idx_dtype)}, ["o"])[0], np.zeros(0, np.int32))
    with pytest.raises(RuntimeError, match="SegmentIdsToLengths: segment ids must be sorted"):
        run("SegmentIdsToLengths", {"s": np.array([1, 0], idx_dtype)}, ["o"])


def test_glow_lengths_nets():
    model = c2.load_net(FIXTURES / "glow_lengths_range_fill_predict_net.pbtxt")
    exact(model(torch.tensor([3, 0, 5], dtype=torch.int32)).numpy(), np.array([0, 1, 2, 0, 1, 2, 3, 4], np.int32))
    # The init net fills the lengths; read them as the constant Glow's test does.
    model = c2.load_net(FIXTURES / "glow_lengths_to_ranges.pbtxt", FIXTURES / "glow_lengths_to_ranges_init_net.pbtxt",
                        inputs=[])
    exact(model().numpy(), np.array([[0, 1], [1, 3], [4, 0], [4, 2]], np.int32))


# --- one-hot, buckets, labels, indicator -----------------------------------------------------


@pytest.mark.parametrize("idx_dtype", IDX)
def test_batch_one_hot_and_one_hot(idx_dtype):
    data = np.array([[2, 3], [1, 7], [5, 3]], np.int64)
    lengths = np.array([3, 2], idx_dtype)
    values = np.array([1, 2, 5, 3, 8], np.int64)
    ref = np.zeros((3, 5), np.int64)
    offset = 0
    for j, n in enumerate(lengths):
        for k in range(n):
            ref[:, offset + k] = data[:, j] == values[offset + k]
        offset += n
    exact(run("BatchOneHot", {"d": data, "l": lengths, "v": values}, ["o"])[0], ref, np.int64)
    fdata = data.astype(np.float32)
    exact(run("BatchOneHot", {"d": fdata, "l": lengths, "v": values.astype(np.float32)}, ["o"])[0],
          ref.astype(np.float32), np.float32)
    with pytest.raises(RuntimeError, match="BatchOneHot: 4 values but the lengths add up to 5"):
        run("BatchOneHot", {"d": data, "l": lengths, "v": values[:4]}, ["o"])
    idx = np.array([0, 3, 1, 3], np.int64)
    ref = np.zeros((4, 5), np.float32)
    ref[np.arange(4), idx] = 1
    exact(run("OneHot", {"i": idx, "n": np.array(5, np.int64)}, ["o"])[0], ref, np.float32)
    with pytest.raises(RuntimeError, match=r"OneHot: an index is outside \[0, 3\)"):
        run("OneHot", {"i": idx, "n": np.array(3, np.int64)}, ["o"])


def test_bucketize():
    boundaries = [0.1, 2.5, 2.5, 4.0]
    x = np.array([[-1.0, 0.1], [0.2, 2.5], [3.0, 2.4], [4.0, 9.0]], np.float32)
    # lower_bound: the number of boundaries strictly below x
    ref = np.array([[sum(b < v for b in np.float32(boundaries)) for v in row] for row in x], np.int32)
    exact(run("Bucketize", {"x": x}, ["o"], boundaries=boundaries)[0], ref, np.int32)
    with pytest.raises(c2.NetImportError, match=r"Bucketize .*monotonically increasing"):
        c2.load_net(load_error("Bucketize", 1, ["o"], boundaries=[1.0, 0.5]))
    model = c2.load_net(FIXTURES / "glow_bucketize_op_net.pbtxt")
    x = np.random.default_rng(4).uniform(-3, 3, (3, 2)).astype(np.float32)
    x[0, 0] = 0.1
    ref = np.array([[sum(b < v for b in np.float32([0.1, 2.5])) for v in row] for row in x], np.int32)
    exact(model(torch.from_numpy(x)).numpy(), ref, np.int32)


def test_glow_sparse_label_split_net():
    model = c2.load_net(FIXTURES / "glow_sparselabelsplit.pbtxt")
    lengths = torch.tensor([1, 3, 2, 2], dtype=torch.int32)
    indices = torch.tensor([3, 1, 2, 0, 0, 2, 1, 3])
    values = torch.tensor([1.2, 2.3, 3.1, 6.7, 8.3, 9.0, 3.7, 8.8])
    outs = [o.numpy() for o in model(lengths, indices, values)]
    for got, want in zip(outs[:4], [[6.7, 8.3], [2.3, 3.7], [3.1, 9.0], [1.2, 8.8]]):
        exact(got, np.array(want, np.float32))
    for got, want in zip(outs[4:8], [[1, 2], [1, 3], [1, 2], [0, 3]]):
        exact(got, np.array(want, np.int32), np.int32)
    exact(outs[8], np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32), np.int32)
    with pytest.raises(RuntimeError, match="SparseLabelSplit: the lengths add up to 7"):
        model(torch.tensor([1, 3, 2, 1], dtype=torch.int32), indices, values)
    with pytest.raises(c2.NetImportError, match=r"SparseLabelSplit .*num_labels=3 needs 6 or 7 outputs"):
        c2.load_net(load_error("SparseLabelSplit", 3, ["a", "b", "c", "d"], num_labels=3))


def test_glow_fill_examples_with_indicator_net():
    model = c2.load_net(FIXTURES / "glow_fill_examples_with_indicator.pbtxt")
    rng = np.random.default_rng(5)
    indicator = rng.integers(0, 2, 20).astype(np.int32)
    data = rng.standard_normal((int(indicator.sum()), 3, 4)).astype(np.float32)
    ref = np.zeros((20, 3, 4), np.float32)
    k = 0
    for d in range(20):
        if indicator[d]:
            ref[d] = data[k]
            k += 1
    exact(model(torch.from_numpy(data), torch.from_numpy(indicator)).numpy(), ref)


def test_sparse_net_scripts():
    """A small sparse-feature net (ranges -> lengths -> dense mask) survives torch.jit.script."""
    net = c2.NetDef(name="sparse_features")
    add_op(net, "GatherRanges", ["ids", "ranges"], ["gathered", "lengths"])
    add_op(net, "SparseToDenseMask", ["gathered", "values", "default", "lengths"], ["dense"], mask=[3, 1, 4])
    add_op(net, "LengthsToRanges", ["lengths"], ["ranges_out"])
    net.external_input.extend(["ids", "ranges", "values", "default"])
    net.external_output.extend(["dense", "ranges_out"])
    model = c2.load_net(net)
    ids = torch.tensor([1, 4, 3, 9, 3, 1])
    ranges = torch.tensor([[[0, 2], [2, 1]], [[3, 3], [0, 0]]], dtype=torch.int32)
    values = torch.arange(6, dtype=torch.float32)
    default = torch.tensor(-1.0)
    scripted = torch.jit.script(model)
    for a, b in zip(scripted(ids, ranges, values, default), model(ids, ranges, values, default)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    dense = model(ids, ranges, values, default)[0].numpy()
    exact(dense, np.array([[2.0, 0.0, 1.0], [4.0, 5.0, -1.0]], np.float32))
