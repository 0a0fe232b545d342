"""torch_caffe2ops.caffe2: Caffe2's row-wise quantized and half-precision embedding operators.

References are NumPy, written from Caffe2's operators (fused_rowwise_8bit_conversion_ops,
fused_nbit_rowwise_conversion, lengths_reducer_fused_{8bit,nbit}_rowwise_ops,
lengths_reducer_rowwise_8bit_ops, the AVX2 embedding lookups): quantization with lrint
(round half to even) and float16 scale/bias rounded to nearest even; lookups accumulating
``out = fma(w * scale, q, out + w * bias)`` in index order and means multiplying by the float
reciprocal of the length. The fma is evaluated in float64 (the product of a float32 and an
8-bit integer is exact there) and rounded once to float32. Unless a test says otherwise the
comparisons are bit for bit.
"""
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402
from utils import add_op, fill  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"


# --------------------------------------------------------------------------------------------
# NumPy references
# --------------------------------------------------------------------------------------------


def np_quantize_8bit(x: np.ndarray) -> np.ndarray:
    """FloatToFused8BitRowwiseQuantized (perfkernels base): values, then float32 scale, bias."""
    x = x.astype(np.float32)
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros((rows.shape[0], rows.shape[1] + 8), np.uint8)
    for r, row in enumerate(rows):
        mn, mx = np.float32(row.min()), np.float32(row.max())
        rng = np.float32(mx - mn)
        scale = np.float32(rng / np.float32(255.0))
        inv = np.float32(np.float32(255.0) / np.float32(rng + np.float32(1e-8)))
        out[r, :-8] = np.rint(((row - mn).astype(np.float32) * inv).astype(np.float32)).astype(np.uint8)
        out[r, -8:] = np.array([scale, mn], np.float32).view(np.uint8)
    return out.reshape(x.shape[:-1] + (x.shape[-1] + 8,))


def np_quantize_nbit(x: np.ndarray, bits: int, divide: bool = False) -> np.ndarray:
    """FloatToFusedNBitRowwiseQuantizedSBHalf (and the float16-input helper with ``divide``)."""
    per = 8 // bits
    x = x.astype(np.float32)
    rows = x.reshape(-1, x.shape[-1])
    nbytes = rows.shape[1] // per
    out = np.zeros((rows.shape[0], nbytes + 4), np.uint8)
    for r, row in enumerate(rows):
        mn = np.float32(np.float16(row.min()))
        rng = np.float32(np.float32(row.max()) - mn)
        scale = np.float16(1.0) if rng == 0 else np.float16(np.float32(rng / np.float32((1 << bits) - 1)))
        if scale == 0:
            scale = np.float16(1.0)
        s32 = np.float32(scale)
        if divide:
            q = np.rint(((row - mn).astype(np.float32) / s32).astype(np.float32))
        else:
            inv = np.float32(np.float32(1.0) / s32)
            q = np.rint(((row - mn).astype(np.float32) * inv).astype(np.float32))
        q = np.clip(q, 0, (1 << bits) - 1).astype(np.uint8)
        for c in range(rows.shape[1]):
            out[r, c // per] |= np.uint8(q[c] << ((c % per) * bits))
        out[r, -4:] = np.array([scale, np.float16(mn)], np.float16).view(np.uint8)
    return out.reshape(x.shape[:-1] + (nbytes + 4,))


def np_rows(packed: np.ndarray, bits: int, half_sb: bool = False):
    """(q float32 [rows, D], scale, bias) of a fused table."""
    packed = packed.reshape(-1, packed.shape[-1])
    tail = 8 if bits == 8 and not half_sb else 4
    sb = packed[:, -tail:].copy().view(np.float32 if tail == 8 else np.float16).astype(np.float32)
    body = packed[:, :-tail]
    per = 8 // bits
    q = np.zeros((packed.shape[0], body.shape[1] * per), np.float32)
    for c in range(q.shape[1]):
        q[:, c] = (body[:, c // per] >> ((c % per) * bits)) & ((1 << bits) - 1)
    return q, sb[:, 0], sb[:, 1]


def np_dequantize(packed: np.ndarray, bits: int, half_sb: bool = False) -> np.ndarray:
    q, s, b = np_rows(packed, bits, half_sb)
    out = ((q * s[:, None]).astype(np.float32) + b[:, None]).astype(np.float32)
    return out.reshape(packed.shape[:-1] + (q.shape[1],))


def np_fma(a, x, c):
    return (np.float64(a) * np.asarray(x, np.float64) + np.asarray(c, np.float64)).astype(np.float32)


def np_sls_quantized(q, s, b, idx, lengths, w=None, mean=False, mapping=None):
    """Caffe2's fused lookup: out = fma(w * scale, q, out + w * bias) per id, in order."""
    out = np.zeros((len(lengths), q.shape[1]), np.float32)
    cur = 0
    for m, n in enumerate(lengths):
        acc = np.zeros(q.shape[1], np.float32)
        for _ in range(int(n)):
            row = int(idx[cur]) if mapping is None else int(mapping[int(idx[cur])])
            wt = np.float32(1.0) if w is None else np.float32(w[cur])
            cur += 1
            if row == -1:
                continue
            sc, bi = np.float32(wt * s[row]), np.float32(wt * b[row])
            acc = np_fma(sc, q[row], (acc + bi).astype(np.float32))
        if mean and n:
            acc = (acc * (np.float32(1.0) / np.float32(n))).astype(np.float32)
        out[m] = acc
    return out


def np_sls_float(data, idx, lengths, w=None, mean=False):
    """Caffe2's float lookup: out = fma(w, row, out) (a plain sum without weights)."""
    rows = data.reshape(data.shape[0], -1).astype(np.float32)
    out = np.zeros((len(lengths), rows.shape[1]), np.float32)
    cur = 0
    for m, n in enumerate(lengths):
        acc = np.zeros(rows.shape[1], np.float32)
        for _ in range(int(n)):
            row = rows[int(idx[cur])]
            acc = (acc + row).astype(np.float32) if w is None else np_fma(np.float32(w[cur]), row, acc)
            cur += 1
        if mean and n:
            acc = (acc * (np.float32(1.0) / np.float32(n))).astype(np.float32)
        out[m] = acc
    return out.reshape((len(lengths),) + data.shape[1:])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def byte_fill(init, name: str, value: np.ndarray) -> None:
    """GivenTensorByteStringToUInt8Fill, as Caffe2's exporters write a uint8 blob."""
    op = add_op(init, "GivenTensorByteStringToUInt8Fill", [], [name], shape=list(value.shape))
    op.arg.add(name="values").strings.append(np.ascontiguousarray(value, np.uint8).tobytes())


def single(op_type: str, inputs: dict, outputs=("y",), init: Optional[dict] = None, **args):
    """A one-operator net; ``init`` blobs come from an init net (uint8 ones as byte strings)."""
    net, init_net = c2.NetDef(name="q"), c2.NetDef(name="q_init")
    for name, value in (init or {}).items():
        if value.dtype == np.uint8:
            byte_fill(init_net, name, value)
        else:
            fill(init_net, name, value)
    names = list(inputs)
    add_op(net, op_type, list(init or {}) + names, list(outputs), **args)
    net.external_input.extend(list(init or {}) + names)
    net.external_output.extend(outputs)
    return c2.load_net(net, init_net), [torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()]


def run(op_type: str, inputs: dict, outputs=("y",), **args):
    model, feeds = single(op_type, inputs, outputs, **args)
    out = model(*feeds)
    return [o.numpy() for o in out] if isinstance(out, tuple) else out.numpy()


def lookup(seed: int, rows: int, segments: int, idx_dtype=np.int64, len_dtype=np.int32):
    r = np.random.default_rng(seed)
    lengths = r.integers(0, 5, segments).astype(len_dtype)
    lengths[0] = 0  # an empty segment
    lengths[-1] = 0
    idx = r.integers(0, rows, int(lengths.sum())).astype(idx_dtype)
    w = r.standard_normal(len(idx)).astype(np.float32)
    return idx, lengths, w


def table(seed: int, rows: int, cols: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = (r.standard_normal((rows, cols)) * r.uniform(0.01, 3.0, (rows, 1))).astype(np.float32)
    x[1] = 0.5  # a constant row (zero range)
    return x


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(17, 12), (3, 5, 8)])
def test_float_to_fused_8bit_and_back(shape) -> None:
    x = table(1, int(np.prod(shape[:-1])), shape[-1]).reshape(shape)
    packed = run("FloatToFused8BitRowwiseQuantized", {"x": x})
    np.testing.assert_array_equal(packed, np_quantize_8bit(x))
    # the layout PyTorch's own prepacking writes
    torch.testing.assert_close(
        torch.from_numpy(packed.reshape(-1, shape[-1] + 8)),
        torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(x.reshape(-1, shape[-1]))),
        rtol=0, atol=0,
    )
    np.testing.assert_array_equal(run("Fused8BitRowwiseQuantizedToFloat", {"p": packed}), np_dequantize(packed, 8))
    half = run("Fused8BitRowwiseQuantizedToHalfFloat", {"p": packed})
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, np_dequantize(packed, 8).astype(np.float16))
    xh = x.astype(np.float16)
    np.testing.assert_array_equal(
        run("HalfFloatToFused8BitRowwiseQuantized", {"x": xh}), np_quantize_8bit(xh.astype(np.float32))
    )


def test_fused_8bit_with_half_scale_bias() -> None:
    x = table(2, 9, 10)
    packed = run("FloatToFused8BitRowwiseQuantizedHalfScaleBias", {"x": x})
    np.testing.assert_array_equal(packed, np_quantize_nbit(x, 8))
    packed_h = run("HalfFloatToFused8BitRowwiseQuantizedHalfScaleBias", {"x": x.astype(np.float16)})
    np.testing.assert_array_equal(packed_h, np_quantize_nbit(x.astype(np.float16).astype(np.float32), 8))
    ref = np_dequantize(packed, 8, half_sb=True)
    np.testing.assert_array_equal(run("Fused8BitRowwiseQuantizedHalfScaleBiasToFloat", {"p": packed}), ref)
    # registered by Caffe2 with a float32 output despite the name
    out = run("Fused8BitRowwiseQuantizedHalfScaleBiasToHalfFloat", {"p": packed})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("bits", [4, 2])
def test_float_to_fused_nbit_and_back(bits: int) -> None:
    x = table(3, 21, 16)
    packed = run(f"FloatToFused{bits}BitRowwiseQuantized", {"x": x})
    np.testing.assert_array_equal(packed, np_quantize_nbit(x, bits))
    prepack = torch.ops.quantized.embedding_bag_4bit_prepack if bits == 4 else torch.ops.quantized.embedding_bag_2bit_prepack
    assert torch.equal(torch.from_numpy(packed), prepack(torch.from_numpy(x)))
    xh = x.astype(np.float16)
    np.testing.assert_array_equal(
        run(f"HalfToFused{bits}BitRowwiseQuantized", {"x": xh}), np_quantize_nbit(xh.astype(np.float32), bits, divide=True)
    )
    np.testing.assert_array_equal(run(f"Fused{bits}BitRowwiseQuantizedToFloat", {"p": packed}), np_dequantize(packed, bits))
    half = run(f"Fused{bits}BitRowwiseQuantizedToHalf", {"p": packed})
    np.testing.assert_array_equal(half, np_dequantize(packed, bits).astype(np.float16))
    with pytest.raises(Exception, match="multiple of"):
        run(f"FloatToFused{bits}BitRowwiseQuantized", {"x": x[:, :15]})


def test_greedy_engine_is_refused() -> None:
    net = c2.NetDef(name="g")
    op = add_op(net, "FloatToFused4BitRowwiseQuantized", ["x"], ["y"])
    op.engine = "GREEDY"
    net.external_input.append("x")
    net.external_output.append("y")
    with pytest.raises(c2.NetImportError, match="GREEDY"):
        c2.load_net(net)


def test_float_to_rowwise_8bits_and_back() -> None:
    x = table(4, 6, 12).reshape(6, 3, 4)
    q, sb = run("FloatToRowwiseQuantized8Bits", {"x": x}, outputs=("q", "sb"))
    assert q.shape == x.shape and sb.shape == (6, 2)
    for r in range(6):
        row = x[r].reshape(-1)
        mn, mx = np.float32(row.min()), np.float32(row.max())
        if mx - mn < 1e-10:
            assert sb[r].tolist() == [1.0, mn] and not q[r].any()
            continue
        scale = np.float32((mx - mn) / np.float32(255.0))
        inv = np.float32(np.float32(1.0) / scale)
        y = ((row - mn).astype(np.float32) * inv).astype(np.float32)
        expected = np.floor(y + np.float32(0.5)).astype(np.uint8)  # halves away from zero (y >= 0)
        exact_half = (y - np.floor(y)) == 0.5
        expected[exact_half] = (np.floor(y[exact_half]) + 1).astype(np.uint8)
        np.testing.assert_array_equal(q[r].reshape(-1), expected)
        np.testing.assert_array_equal(sb[r], [scale, mn])
    back = run("Rowwise8BitQuantizedToFloat", {"q": q, "sb": sb})
    ref = ((q.reshape(6, -1).astype(np.float32) * sb[:, :1]).astype(np.float32) + sb[:, 1:]).astype(np.float32)
    np.testing.assert_array_equal(back, ref.reshape(x.shape))


def test_half_and_float() -> None:
    x = np.array([1.0, -2.5, 1e-8, 70000.0, -1e6, 0.1], np.float32)
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)  # overflows to +-inf
    np.testing.assert_array_equal(run("FloatToHalf", {"x": x}), h)
    clipped = run("FloatToHalf", {"x": x}, clip=1)
    np.testing.assert_array_equal(clipped, np.clip(x, -65504, 65504).astype(np.float16))
    np.testing.assert_array_equal(run("HalfToFloat", {"x": h}), h.astype(np.float32))
    with pytest.raises(TypeError, match="float16"):
        run("HalfToFloat", {"x": x})


# --------------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------------

MODES = [("Sum", False, False), ("WeightedSum", True, False), ("Mean", False, True)]


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("mode", MODES, ids=[m[0] for m in MODES])
@pytest.mark.parametrize("idx_dtype,len_dtype", [(np.int64, np.int32), (np.int32, np.int32), (np.int64, np.int64)])
def test_fused_lookup_matches_caffe2(bits: int, mode, idx_dtype, len_dtype) -> None:
    name, weighted, mean = mode
    x = table(5, 40, 16)
    packed = np_quantize_8bit(x) if bits == 8 else np_quantize_nbit(x, bits)
    idx, lengths, w = lookup(6, 40, 12, idx_dtype, len_dtype)
    feeds = ({"w": w} if weighted else {}) | {"i": idx, "l": lengths}
    model, tensors = single(f"SparseLengths{name}Fused{bits}BitRowwise", feeds, init={"data": packed})
    model.graph.eliminate_dead_code()
    got = model(*tensors).numpy()
    q, s, b = np_rows(packed, bits)
    np.testing.assert_array_equal(got, np_sls_quantized(q, s, b, idx, lengths, w if weighted else None, mean))
    # the quantized table stays a uint8 buffer: nothing to train
    assert not list(model.parameters())


def test_small_batch_offsets_memo_gives_each_call_its_own_offsets(monkeypatch) -> None:
    # Batches of 1 to 8 bags take their offsets from a bounded memo keyed by the lengths: every
    # call, whatever the memo holds (or after it was cleared), must pool its own bags.
    from torch_caffe2ops.caffe2 import functional_quantized as fq
    monkeypatch.setattr(fq, "_OFFSETS_LIMIT", 5)
    fq._OFFSETS.clear()
    x = table(9, 30, 8)
    packed = np_quantize_8bit(x)
    fused, _ = single("SparseLengthsSumFused8BitRowwise", {"i": np.zeros(1, np.int64), "l": np.ones(1, np.int32)},
                      init={"data": packed})
    flt, _ = single("SparseLengthsSum", {"i": np.zeros(1, np.int64), "l": np.ones(1, np.int32)}, init={"data": x})
    q, sc, b = np_rows(packed, 8)
    r = np.random.default_rng(3)
    for _ in range(60):
        bags = int(r.integers(1, 11))  # up to 10: past the memo's 8 bags too
        lengths = r.integers(0, 4, bags).astype(r.choice([np.int32, np.int64]))
        idx = r.integers(0, 30, int(lengths.sum())).astype(r.choice([np.int32, np.int64]))
        i, n = torch.from_numpy(idx), torch.from_numpy(lengths)
        np.testing.assert_array_equal(fused(i, n).numpy(), np_sls_quantized(q, sc, b, idx, lengths))
        np.testing.assert_allclose(flt(i, n).detach().numpy(), np_sls_float(x, idx, lengths), rtol=1e-6, atol=1e-6)
    assert 0 < len(fq._OFFSETS) <= 5
    # an entry made under inference_mode or another default device still serves a training
    # call on the CPU (its backward saves the offsets)
    fq._OFFSETS.clear()
    w = torch.randn(10, 4, dtype=torch.float64)
    ids, lens = torch.tensor([1, 2, 2]), torch.tensor([3])
    with torch.inference_mode(), torch.device("meta"):
        fq.sparse_lengths_reduce(w, ids, lens)
    w.requires_grad_()
    fq.sparse_lengths_reduce(w, ids, lens).sum().backward()
    assert w.grad[2].tolist() == [2.0] * 4
    # a short or negative length is still refused (the memo is only read after the checks)
    with pytest.raises(ValueError):
        fused(torch.tensor([1, 2]), torch.tensor([1], dtype=torch.int32))
    with pytest.raises(ValueError):
        fused(torch.tensor([1, 2]), torch.tensor([3, -1], dtype=torch.int32))


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("mode", MODES, ids=[m[0] for m in MODES])
def test_pruned_lookup_matches_caffe2(bits: int, mode) -> None:
    name, weighted, mean = mode
    x = table(7, 30, 8)
    packed = np_quantize_8bit(x) if bits == 8 else np_quantize_nbit(x, bits)
    r = np.random.default_rng(8)
    mapping = r.integers(-1, 30, 50).astype(np.int32)  # -1: a pruned row
    idx, lengths, w = lookup(9, 50, 10)
    feeds = ({"w": w} if weighted else {}) | {"i": idx, "l": lengths}
    model, tensors = single(
        f"SparseLengths{name}{bits}BitRowwiseSparse", feeds | {"map": mapping}, init={"data": packed}
    )
    q, s, b = np_rows(packed, bits)
    expected = np_sls_quantized(q, s, b, idx, lengths, w if weighted else None, mean, mapping)
    np.testing.assert_array_equal(model(*tensors).numpy(), expected)
    # a mapping of [0] means "not pruned"
    idx2, lengths2, w2 = lookup(10, 30, 10)
    feeds = ({"w": w2} if weighted else {}) | {"i": idx2, "l": lengths2, "map": np.array([0], np.int32)}
    got = model(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    np.testing.assert_array_equal(got, np_sls_quantized(q, s, b, idx2, lengths2, w2 if weighted else None, mean))
    with pytest.raises(IndexError, match="INDICES"):
        bad = idx.copy()
        bad[0] = 50
        model(*[torch.from_numpy(v) for v in (({"w": w} if weighted else {}) | {"i": bad, "l": lengths, "map": mapping}).values()])


@pytest.mark.parametrize("name,weighted,mean", [
    ("Sum", False, False), ("WeightedSum", True, False), ("Mean", False, True), ("WeightedMean", True, True)
])
def test_rowwise_8bits_lookup_matches_caffe2(name: str, weighted: bool, mean: bool) -> None:
    r = np.random.default_rng(11)
    data = r.integers(0, 256, (25, 2, 3)).astype(np.uint8)
    sb = np.stack([r.uniform(0.001, 0.1, 25), r.standard_normal(25)], 1).astype(np.float32)
    idx, lengths, w = lookup(12, 25, 9)
    feeds = ({"w": w} if weighted else {}) | {"i": idx, "l": lengths}
    model, tensors = single(f"SparseLengths{name}8BitsRowwise", feeds | {"sb": sb}, init={"data": data})
    got = model(*tensors).numpy()
    assert got.shape == (9, 2, 3)
    expected = np_sls_quantized(data.reshape(25, -1).astype(np.float32), sb[:, 0], sb[:, 1], idx, lengths,
                                w if weighted else None, mean)
    np.testing.assert_array_equal(got.reshape(9, -1), expected)


@pytest.mark.parametrize("mode", MODES, ids=[m[0] for m in MODES])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
def test_float_lookup_matches_caffe2(mode, dtype, idx_dtype) -> None:
    name, weighted, mean = mode
    data = table(13, 30, 12).reshape(30, 3, 4).astype(dtype)
    idx, lengths, w = lookup(14, 30, 11, idx_dtype)
    feeds = {"d": data} | ({"w": w} if weighted else {}) | {"i": idx, "l": lengths}
    got = run(f"SparseLengths{name}", feeds)
    assert got.dtype == np.float32 and got.shape == (11, 3, 4)
    np.testing.assert_array_equal(got, np_sls_float(data.astype(np.float32), idx, lengths, w if weighted else None, mean))


def test_float_lookup_gradients() -> None:
    data = torch.from_numpy(table(15, 10, 4)).requires_grad_()
    idx, lengths, w = lookup(16, 10, 5)
    weights = torch.from_numpy(w).requires_grad_()
    from torch_caffe2ops.caffe2 import functional_quantized as fq

    out = fq.sparse_lengths_reduce(data, torch.from_numpy(idx), torch.from_numpy(lengths), weights)
    out.sum().backward()
    # d/ddata[r] = sum of the weights of the ids equal to r; d/dw[k] = sum of data[idx[k]]
    expected = np.zeros((10, 4), np.float32)
    np.add.at(expected, idx, np.repeat(w[:, None], 4, 1))
    torch.testing.assert_close(data.grad, torch.from_numpy(expected), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(weights.grad, data.detach()[torch.from_numpy(idx)].sum(1), rtol=1e-6, atol=1e-6)


def test_lengths_sum() -> None:
    data = table(17, 9, 6).reshape(9, 2, 3)
    lengths = np.array([2, 0, 4, 3], np.int32)
    got = run("LengthsSum", {"d": data, "l": lengths})
    np.testing.assert_array_equal(got, np_sls_float(data, np.arange(9), lengths))
    with pytest.raises(ValueError, match="add up to 8, but there are 9 rows of DATA"):
        run("LengthsSum", {"d": data, "l": np.array([2, 0, 4, 2], np.int32)})


def test_sparse_lookup_drops_pruned_ids() -> None:
    mapping = np.array([3, -1, 0, 5, -1, 2], np.int32)
    idx = np.array([0, 1, 2, 4, 5, 3, 1], np.int64)
    lengths = np.array([3, 0, 2, 2], np.int32)
    w = np.arange(7, dtype=np.float32)
    out_i, out_l, out_w = run(
        "SparseLengthsSumSparseLookup", {"i": idx, "l": lengths, "m": mapping, "w": w}, outputs=("oi", "ol", "ow")
    )
    np.testing.assert_array_equal(out_i, [3, 0, 2, 5])
    assert out_i.dtype == np.int64 and out_l.dtype == np.int32
    np.testing.assert_array_equal(out_l, [2, 0, 1, 1])
    np.testing.assert_array_equal(out_w, [0, 2, 4, 5])
    oi, ol = run("SparseLengthsSumSparseLookup", {"i": idx, "l": lengths, "m": mapping}, outputs=("oi", "ol"))
    np.testing.assert_array_equal(oi, [3, 0, 2, 5])


@pytest.mark.parametrize("op_type,init", [
    ("SparseLengthsSum", False), ("SparseLengthsSumFused8BitRowwise", True), ("SparseLengthsSumFused4BitRowwise", True)
])
def test_bad_ids_and_lengths_raise_naming_the_operator(op_type: str, init: bool) -> None:
    x = table(18, 6, 8)
    packed = {"SparseLengthsSum": x, "SparseLengthsSumFused8BitRowwise": np_quantize_8bit(x),
              "SparseLengthsSumFused4BitRowwise": np_quantize_nbit(x, 4)}[op_type]
    idx = np.array([0, 5, 2], np.int64)
    lengths = np.array([1, 2], np.int32)
    model, _ = single(op_type, {"i": idx, "l": lengths}, init={"data": packed})
    model(torch.from_numpy(idx), torch.from_numpy(lengths))
    for bad_idx, bad_len, err, text in [
        ([0, 6, 2], [1, 2], IndexError, r"INDICES\[1\] = 6 is out of range for DATA with 6 rows"),
        ([0, -1, 2], [1, 2], IndexError, r"INDICES\[1\] = -1"),
        ([0, 1, 2], [1, 1], ValueError, "add up to 2, but there are 3 indices"),
        ([0, 1, 2], [4, -1], ValueError, r"LENGTHS\[1\] = -1 is negative"),
    ]:
        with pytest.raises(err, match=text) as info:
            model(torch.tensor(bad_idx), torch.tensor(bad_len, dtype=torch.int32))
        assert op_type in str(info.value) and "predict net operator #0" in str(info.value)


def test_weights_must_match_indices() -> None:
    x = np_quantize_8bit(table(19, 5, 4))
    model, _ = single("SparseLengthsWeightedSumFused8BitRowwise", {"w": np.ones(2, np.float32), "i": np.zeros(3, np.int64),
                                                                   "l": np.array([3], np.int32)}, init={"data": x})
    with pytest.raises(ValueError, match="one weight per index"):
        model(torch.ones(2), torch.zeros(3, dtype=torch.int64), torch.tensor([3], dtype=torch.int32))


def test_quantized_lookup_scripts_and_exports() -> None:
    packed = np_quantize_8bit(table(20, 12, 8))
    idx, lengths, w = lookup(21, 12, 6)
    model, tensors = single("SparseLengthsWeightedSumFused8BitRowwise", {"w": w, "i": idx, "l": lengths},
                            init={"data": packed})
    expected = model(*tensors)
    torch.testing.assert_close(torch.jit.script(model)(*tensors), expected, rtol=0, atol=0)
    ep = torch.export.export(model, tuple(tensors))
    torch.testing.assert_close(ep.module()(*tensors), expected, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# fills
# --------------------------------------------------------------------------------------------


def test_fills_of_ranking_init_nets() -> None:
    init = c2.NetDef(name="fills")
    raw = bytes(range(256))[::-1][:12]
    add_op(init, "GivenTensorByteStringToUInt8Fill", [], ["u8"], shape=[3, 4]).arg.add(name="values").strings.append(raw)
    add_op(init, "GivenTensorInt16Fill", [], ["i16"], shape=[3], values=[-32768, 7, 32767])
    add_op(init, "GivenTensorFp16Fill", [], ["f16"], shape=[2], values=[0.1, 70000.0])
    add_op(init, "GivenTensorBoolFill", [], ["b"], shape=[3], values=[1, 0, 1])
    add_op(init, "GivenTensorInt64Fill", [], ["i64"], shape=[2], values=[2**40, -3])
    add_op(init, "GivenTensorDoubleFill", [], ["f64"], shape=[2], values=[0.5, -1.25])
    add_op(init, "Float16ConstantFill", [], ["c16"], shape=[2, 2], value=1.5)
    add_op(init, "GivenTensorStringFill", [], ["names"], shape=[2], values=["a", "b\xff"])
    q = add_op(init, "Int8GivenTensorFill", [], ["w8"], shape=[2, 2], Y_scale=0.5, Y_zero_point=128)
    q.arg.add(name="values").s = bytes([0, 128, 129, 255])
    add_op(init, "Int8GivenIntTensorFill", [], ["b32"], shape=[2], values=[-5, 9], Y_scale=0.25, Y_zero_point=0)
    blobs = c2.run_init_net(init)
    assert blobs["u8"].dtype == torch.uint8 and blobs["u8"].flatten().tolist() == list(raw)
    assert blobs["i16"].dtype == torch.int16 and blobs["i16"].tolist() == [-32768, 7, 32767]
    assert blobs["f16"].dtype == torch.float16
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(blobs["f16"].numpy(), np.array([0.1, 70000.0], np.float32).astype(np.float16))
    assert blobs["b"].tolist() == [True, False, True]
    assert blobs["i64"].tolist() == [2**40, -3]
    assert blobs["f64"].dtype == torch.float64 and blobs["f64"].tolist() == [0.5, -1.25]
    assert blobs["c16"].dtype == torch.float16 and blobs["c16"].tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert list(blobs["names"]) == [b"a", "b\xff".encode()]
    w8 = blobs["w8"]
    assert w8.dtype == torch.quint8 and w8.q_scale() == 0.5 and w8.q_zero_point() == 128
    assert w8.int_repr().flatten().tolist() == [0, 128, 129, 255]
    assert w8.dequantize().flatten().tolist() == [-64.0, 0.0, 0.5, 63.5]
    b32 = blobs["b32"]
    assert b32.dtype == torch.qint32 and b32.int_repr().tolist() == [-5, 9] and b32.dequantize().tolist() == [-1.25, 2.25]


def test_string_blob_is_kept_out_unless_read() -> None:
    init = c2.NetDef(name="init")
    add_op(init, "GivenTensorStringFill", [], ["vocab"], shape=[2], values=["x", "y"])
    fill(init, "w", np.ones((2, 2), np.float32))
    net = c2.NetDef(name="n")
    add_op(net, "Relu", ["w"], ["y"])
    net.external_input.extend(["vocab", "w"])
    net.external_output.append("y")
    model = c2.load_net(net, init)
    assert "vocab" not in model.caffe2_inputs and "vocab" in model.caffe2_unused_inputs
    assert not any("vocab" in n for n, _ in model.named_buffers())
    net2 = c2.NetDef(name="n2")
    add_op(net2, "Copy", ["vocab"], ["y"])
    net2.external_output.append("y")
    with pytest.raises(c2.NetImportError, match="Copy .*'vocab' holds strings"):
        c2.load_net(net2, init)


# --------------------------------------------------------------------------------------------
# Glow's Caffe2 importer nets (tests/fixtures/caffe2_real, expected values in GLOW_EXPECTED.md)
# --------------------------------------------------------------------------------------------


def glow(predict: str, init: str, **kw):
    return c2.load_net(FIXTURES / f"glow_{predict}.pbtxt", FIXTURES / f"glow_{init}.pbtxt", **kw)


SLS_EXPECTED = [[5.5, 6.9], [0.0, 0.0], [6.8, 9.1], [1.0, 1.2], [3.0, 3.6]]


@pytest.mark.parametrize("predict,init", [
    ("fused_rowwise_quantized_sparse_lengths_sum_predict_net", "fused_rowwise_quantized_sparse_lengths_sum_init_net"),
    ("rowwise_quantized_sparse_lengths_sum_predict_net", "rowwise_quantized_sparse_lengths_sum_init_net"),
])
def test_glow_sparse_lengths_sum(predict: str, init: str) -> None:
    model = glow(predict, init)
    out = model(torch.tensor([2, 0, 1, 2, 0, 0, 0, 0]), torch.tensor([2, 0, 2, 1, 3], dtype=torch.int32))
    torch.testing.assert_close(out, torch.tensor(SLS_EXPECTED), rtol=0, atol=0.02)  # Glow's tolerance


def test_glow_sparse_lengths_sum_all_lengths_one() -> None:
    model = glow("fused_rowwise_quantized_sparse_lengths_sum_predict_net_length1",
                 "fused_rowwise_quantized_sparse_lengths_sum_init_net")
    out = model(torch.tensor([2, 0, 1, 2, 0]), torch.ones(5, dtype=torch.int32))
    expected = [[4.5, 5.7], [1.0, 1.2], [2.3, 3.4], [4.5, 5.7], [1.0, 1.2]]
    torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=0.02)
    assert model.caffe2_ignored_arguments == {"SparseLengthsSumFused8BitRowwise.length1": 1}  # a Glow-only hint


@pytest.mark.parametrize("predict,init", [
    ("fused_rowwise_quantized_sparse_lengths_weighted_sum_predict_net",
     "fused_rowwise_quantized_sparse_lengths_weighted_sum_init_net"),
    ("fused_rowwise_quantized_sparse_lengths_weighted_sum_avg_length_predict_net",
     "fused_rowwise_quantized_sparse_lengths_weighted_sum_init_net"),
    ("rowwise_quantized_sparse_lengths_weighted_sum_predict_net", "rowwise_quantized_sparse_lengths_weighted_sum_init_net"),
])
def test_glow_sparse_lengths_weighted_sum(predict: str, init: str) -> None:
    # The weights are init-net constants; the net lists them as an external input too.
    model = glow(predict, init, inputs=["indices", "lengths"])
    out = model(torch.tensor([1, 0, 2, 0, 1, 2, 2, 0]), torch.tensor([3, 0, 3, 2], dtype=torch.int32))
    torch.testing.assert_close(out, torch.tensor([[0.5], [0.0], [0.0], [25.0]]), rtol=0, atol=0)


def test_glow_4bit_sparse_lengths_sum() -> None:
    model = glow("4bit_fused_rowwise_quantized_sparse_lengths_sum_predict_net",
                 "4bit_fused_rowwise_quantized_sparse_lengths_sum_init_net")
    idx = torch.tensor([2, 0, 1, 2, 0, 0, 1, 2])
    lengths = torch.tensor([2, 0, 2, 1, 3], dtype=torch.int32)
    out = model(idx, lengths)
    assert out.shape == (5, 10)
    data = c2.run_init_net(c2.read_net(FIXTURES / "glow_4bit_fused_rowwise_quantized_sparse_lengths_sum_init_net.pbtxt"))
    q, s, b = np_rows(data["data"].numpy(), 4)
    np.testing.assert_array_equal(out.numpy(), np_sls_quantized(q, s, b, idx.numpy(), lengths.numpy()))


def test_glow_half_to_float() -> None:
    model = c2.load_net(FIXTURES / "glow_halftofloat_op_net.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    x = torch.randn(1, 2, 3, 4).half()
    out = model(x)
    assert out.dtype == torch.float32 and torch.equal(out, x.float())


def test_glow_fill_test() -> None:
    model = glow("fill_test_predict_net", "fill_test_init_net")
    assert model.caffe2_inputs == ["tensor_fill_float"]
    blobs = c2.run_init_net(c2.read_net(FIXTURES / "glow_fill_test_init_net.pbtxt"))
    assert blobs["tensor_fill_float"].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert blobs["tensor_int_fill"].dtype == torch.int32 and blobs["tensor_int_fill"].tolist() == [[0, 1], [2, 3]]
    assert blobs["tensor_int64_fill"].dtype == torch.int64 and blobs["tensor_int64_fill"].tolist() == [[0, 1], [2, 3]]
    u8 = blobs["tensor_string_to_uint8_fill"]
    assert u8.dtype == torch.uint8 and u8.tolist() == [[128, 129], [130, 131]]
    eq = model(torch.arange(4.0).reshape(2, 2))
    assert all(bool(e.all()) for e in eq)


@pytest.mark.parametrize("init", ["conv_group_quantized_init_net", "int8convrelu_init_net", "dynamic_quantized_fc_init"])
def test_glow_int8_fills_load(init: str) -> None:
    path = FIXTURES / f"glow_{init}.pbtxt"
    if not path.exists():
        pytest.skip(f"{path.name} is not among the fixtures")
    blobs = c2.run_init_net(c2.read_net(path))
    if init == "conv_group_quantized_init_net":
        w = blobs["conv_w"]
        assert w.dtype == torch.quint8 and w.shape == (4, 1, 1, 2) and w.q_scale() == 1.0
        assert w.int_repr().flatten().tolist() == [0x80, 0x81] * 4
    elif init == "int8convrelu_init_net":
        assert blobs["conv_w"].q_scale() == 2.0 and blobs["conv_w"].q_zero_point() == 10
        assert blobs["conv_b"].dtype == torch.qint32 and blobs["conv_b"].int_repr().tolist() == [2]
    else:
        assert blobs["weights"].int_repr().flatten().tolist() == list(range(12))


# --------------------------------------------------------------------------------------------
# fine-tuning: dequantize=True and quantize_tables
# --------------------------------------------------------------------------------------------


def quantized_ranker(bits: int):
    x = table(22, 20, 8)
    packed = np_quantize_8bit(x) if bits == 8 else np_quantize_nbit(x, bits)
    init, net = c2.NetDef(name="init"), c2.NetDef(name="ranker")
    byte_fill(init, "emb", packed)
    fill(init, "fc_w", np.random.default_rng(23).standard_normal((1, 8)).astype(np.float32))
    fill(init, "fc_b", np.zeros(1, np.float32))
    add_op(net, f"SparseLengthsSumFused{bits}BitRowwise", ["emb", "ids", "lengths"], ["pooled"])
    add_op(net, f"SparseLengthsMeanFused{bits}BitRowwise", ["emb", "ids", "lengths"], ["mean"])
    add_op(net, "Add", ["pooled", "mean"], ["both"])
    add_op(net, "FC", ["both", "fc_w", "fc_b"], ["logit"])
    net.external_input.extend(["emb", "fc_w", "fc_b", "ids", "lengths"])
    net.external_output.append("logit")
    return net, init, packed


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_dequantize_for_fine_tuning_and_quantize_back(bits: int) -> None:
    net, init, packed = quantized_ranker(bits)
    idx, lengths, _ = lookup(24, 20, 6)
    feeds = (torch.from_numpy(idx), torch.from_numpy(lengths))
    quantized = c2.load_net(net, init)
    model = c2.load_net(net, init, dequantize=True)
    assert set(dict(model.named_parameters())) == {"emb", "fc_w", "fc_b"}
    assert model.emb.dtype == torch.float32 and not hasattr(model, "emb_fused")
    np.testing.assert_array_equal(model.emb.detach().numpy(), np_dequantize(packed, bits))
    # float sums of the dequantized rows instead of Caffe2's fused accumulation: equal up to
    # float32 rounding of sums of at most 4 rows
    torch.testing.assert_close(model(*feeds), quantized(*feeds), rtol=1e-5, atol=1e-5)
    # untouched tables come back byte for byte
    back = c2.quantize_tables(model)
    assert list(back) == ["emb"] and torch.equal(back["emb"], torch.from_numpy(packed))
    # train: the looked-up rows change, the others keep their bytes
    opt = torch.optim.SGD(model.parameters(), lr=0.001)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = model(*feeds).pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    trained = model.emb.detach().numpy()
    assert np.isfinite(trained).all()
    back = c2.quantize_tables(model)["emb"].numpy()
    touched = np.zeros(20, bool)
    touched[idx] = True
    np.testing.assert_array_equal(back[~touched], packed[~touched])
    requantized = np_quantize_8bit(trained) if bits == 8 else np_quantize_nbit(trained, bits)
    np.testing.assert_array_equal(back[touched], requantized[touched])
    assert not np.array_equal(back[touched], packed[touched])


def test_dequantize_keeps_tables_fed_at_run_time_quantized() -> None:
    packed = np_quantize_8bit(table(25, 6, 8))
    net = c2.NetDef(name="n")
    add_op(net, "SparseLengthsSumFused8BitRowwise", ["emb", "ids", "lengths"], ["y"])
    net.external_input.extend(["emb", "ids", "lengths"])
    net.external_output.append("y")
    model = c2.load_net(net, dequantize=True)
    out = model(torch.from_numpy(packed), torch.tensor([0, 5]), torch.tensor([2], dtype=torch.int32))
    q, s, b = np_rows(packed, 8)
    np.testing.assert_array_equal(out.numpy(), np_sls_quantized(q, s, b, [0, 5], [2]))
    assert c2.quantize_tables(model) == {}


@pytest.mark.parametrize("op_type", ["SparseLengthsSum", "SparseLengthsSumFused8BitRowwise",
                                     "SparseLengthsSumFused4BitRowwise", "SparseLengthsSumFused2BitRowwise"])
def test_random_bad_lookups_raise_clear_errors(op_type: str) -> None:
    """Negative lengths that still add up, ids out of range, lengths that add up short or long:
    every one raises the same clear error, whatever path the lookup takes (PyTorch's 4-bit kernel
    crashes on a negative length, so none may reach it)."""
    x = table(31, 10, 8)
    packed = {"SparseLengthsSum": x, "SparseLengthsSumFused8BitRowwise": np_quantize_8bit(x),
              "SparseLengthsSumFused4BitRowwise": np_quantize_nbit(x, 4),
              "SparseLengthsSumFused2BitRowwise": np_quantize_nbit(x, 2)}[op_type]
    model, _ = single(op_type, {"i": np.array([0], np.int64), "l": np.array([1], np.int32)}, init={"data": packed})
    rng = np.random.default_rng(5)
    for _ in range(300):
        n, k = int(rng.integers(1, 7)), int(rng.integers(1, 5))
        lengths = rng.integers(-3, 4, k)
        kind = rng.integers(3)
        if kind == 0:  # negative lengths that add up to the number of ids
            lengths[-1] += n - lengths.sum()
            if lengths.min() >= 0:
                lengths[0] -= 1
                lengths[-1] += 1
            if lengths.min() >= 0:
                continue
        elif kind == 1:  # lengths that do not add up
            lengths = np.abs(lengths)
            if lengths.sum() == n:
                lengths[0] += 1
        ids = rng.integers(0, 10, n)
        if kind == 2:  # an id out of range, lengths fine
            lengths = np.abs(lengths)
            lengths[-1] += max(0, n - lengths.sum())
            n = int(lengths.sum())
            ids = rng.integers(0, 10, n)
            if n == 0:
                continue
            ids[rng.integers(n)] = rng.choice([-1, 10, 1000])
        with pytest.raises((ValueError, IndexError), match=r"LENGTHS\[|add up to|INDICES\[") as info:
            model(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(lengths.astype(np.int32)))
        assert op_type in str(info.value)
