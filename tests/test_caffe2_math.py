"""Caffe2 import of the math operators ranking nets use: comparisons and logic, n-ary
max/min/mean, elementwise functions, reductions (incl. ReduceFront/Back with lengths), TopK,
ArgMax/ArgMin, Slice/Tile/Shape, DotProduct, MatMul, LpNorm, RMSNorm, Normalize.

References are NumPy written from Caffe2's operator sources (caffe2/operators/top_k.cc,
arg_ops.h, reduce_ops.h, reduce_front_back_*_ops.*, slice_op.h, tile_op.h, shape_op.h,
elementwise_ops*.h, minmax_ops.h, mean_op.h, pow_op.h, mod_op.cc, logit_op.cc, gelu_op.cc,
replace_nan_op.cc, distance_op.h, matmul_op.h, lpnorm_op.cc, rms_norm_op.cc, normalize_op.cc).
float32 tolerance: rtol=1e-5, atol=1e-6 unless a test says otherwise; integer and bool results
are compared exactly.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, run_single_op_numpy as run, single_op_net  # noqa: E402,F401


def net_of(op_type, n_in, outputs, **args):
    return single_op_net(op_type, [f"in{i}" for i in range(n_in)], outputs, **args)

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"


def close(actual, expected, rtol=1e-5, atol=1e-6, dtype=None):
    expected = np.asarray(expected)
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def legacy(a, b, axis):
    """B reshaped to line up with A from `axis` (-1: trailing dims), written from Caffe2's rule."""
    if b.size == 1:
        return b.reshape(())
    if axis == -1:
        axis = a.ndim - b.ndim
    return b.reshape(b.shape + (1,) * (a.ndim - axis - b.ndim))


# --- comparisons and logic -------------------------------------------------------------------


CMP = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal, "GT": np.greater, "GE": np.greater_equal}


@pytest.mark.parametrize("op_type", sorted(CMP))
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_comparisons(op_type, dtype):
    rng = np.random.default_rng(1)
    a = rng.integers(-2, 3, (2, 3, 4)).astype(dtype)
    b_same = rng.integers(-2, 3, (2, 3, 4)).astype(dtype)
    close(run(op_type, {"a": a, "b": b_same}, ["y"])[0], CMP[op_type](a, b_same), dtype=np.bool_)
    b_numpy = rng.integers(-2, 3, (3, 1)).astype(dtype)  # broadcast=0: numpy broadcasting
    close(run(op_type, {"a": a, "b": b_numpy}, ["y"])[0], CMP[op_type](a, b_numpy))
    b_mid = rng.integers(-2, 3, (3,)).astype(dtype)
    for kwargs, axis in (({"axis": 1}, 1), ({"axis_str": "C"}, 1)):
        got = run(op_type, {"a": a, "b": b_mid}, ["y"], broadcast=1, **kwargs)[0]
        close(got, CMP[op_type](a, legacy(a, b_mid, axis)))
    b_tail = rng.integers(-2, 3, (3, 4)).astype(dtype)
    close(run(op_type, {"a": a, "b": b_tail}, ["y"], broadcast=1)[0], CMP[op_type](a, legacy(a, b_tail, -1)))


def test_comparison_argument_errors():
    with pytest.raises(c2.NetImportError, match=r"EQ .*do not specify axis"):
        c2.load_net(net_of("EQ", 2, ["y"], axis=1))
    with pytest.raises(c2.NetImportError, match=r"LT .*axis and axis_str"):
        c2.load_net(net_of("LT", 2, ["y"], broadcast=1, axis=1, axis_str="C"))
    with pytest.raises(RuntimeError, match="legacy broadcast"):
        run("GT", {"a": f32(2, 3), "b": f32(4)}, ["y"], broadcast=1)


def test_logic_and_where():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2, (3, 4)).astype(bool)
    b = rng.integers(0, 2, (3, 4)).astype(bool)
    close(run("And", {"a": a, "b": b}, ["y"])[0], a & b, dtype=np.bool_)
    close(run("Or", {"a": a, "b": b}, ["y"])[0], a | b)
    close(run("Xor", {"a": a, "b": b}, ["y"])[0], a ^ b)
    close(run("Not", {"a": a}, ["y"])[0], ~a)
    col = rng.integers(0, 2, (3,)).astype(bool)
    close(run("And", {"a": a, "b": col}, ["y"], broadcast=1, axis=0)[0], a & col[:, None])
    x, y = f32(3, 4, seed=3), f32(3, 4, seed=4)
    close(run("Where", {"c": a, "x": x, "y": y}, ["o"])[0], np.where(a, x, y))
    close(run("Where", {"c": col, "x": x, "y": y}, ["o"], broadcast_on_rows=1)[0], np.where(col[:, None], x, y))
    with pytest.raises(RuntimeError, match="Where: condition of shape"):
        run("Where", {"c": col, "x": x, "y": y}, ["o"])


# --- n-ary and unary -------------------------------------------------------------------------


def test_nary_max_min_mean():
    xs = {f"x{i}": f32(4, 5, seed=i) for i in range(3)}
    stack = np.stack(list(xs.values()))
    close(run("Max", xs, ["y"])[0], stack.max(0))
    close(run("Min", xs, ["y"])[0], stack.min(0))
    close(run("Mean", xs, ["y"])[0], stack.sum(0) / 3)
    close(run("Max", {"x": xs["x0"]}, ["y"])[0], xs["x0"])
    with pytest.raises(RuntimeError, match=r"Mean: input 1 has shape \[5\]"):
        run("Mean", {"a": f32(4, 5), "b": f32(5)}, ["y"])


def test_glow_mean_net():
    model = c2.load_net(FIXTURES / "glow_mean_3inputs.pbtxt")
    xs = [f32(5, 6, seed=i) for i in range(3)]
    close(model(*map(torch.from_numpy, xs)).numpy(), (xs[0] + xs[1] + xs[2]) / 3, rtol=1e-5, atol=1e-5)


def np_gelu(x):
    return np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.reshape(-1)], np.float64).reshape(x.shape)


UNARY = {
    "Abs": np.abs,
    "Sqr": lambda x: x * x,
    "Negative": np.negative,
    "Sign": np.sign,
    "Log1p": lambda x: np.log1p(np.abs(x)),
    "Cos": np.cos,
    "Sin": np.sin,
    "Ceil": np.ceil,
    "Floor": np.floor,
    "Reciprocal": lambda x: 1 / x,
    "Rsqrt": lambda x: 1 / np.sqrt(np.abs(x)),
    "Cube": lambda x: x ** 3,
    "Swish": lambda x: x / (1 + np.exp(-x)),
    "Gelu": np_gelu,
}


@pytest.mark.parametrize("op_type", sorted(UNARY))
def test_unary(op_type):
    x = f32(3, 7, seed=5) * 3
    x[0, 0] = 0.0
    if op_type in ("Log1p", "Rsqrt"):
        x = np.abs(x) + 0.01
    if op_type == "Reciprocal":
        x[0, 0] = 0.5
    close(run(op_type, {"x": x}, ["y"])[0], UNARY[op_type](x.astype(np.float64)).astype(np.float32), rtol=1e-5, atol=1e-5)


def test_gelu_fast_logit_replace_nan_mod_pow():
    x = np.linspace(-6, 6, 25, dtype=np.float32)
    fast = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    close(run("Gelu", {"x": x}, ["y"], fast_gelu=1)[0], fast, atol=1e-5)
    p = np.array([0.0, 1e-9, 0.3, 0.5, 0.9, 1.0], np.float32)
    for eps in (1e-6, 0.01):
        # float32 arithmetic, as Caffe2's kernel: 1 - eps rounds in float32
        z = np.clip(p, np.float32(eps), np.float32(1) - np.float32(eps))
        kw = {"eps": eps} if eps != 1e-6 else {}
        close(run("Logit", {"x": p}, ["y"], **kw)[0], np.log((z / (np.float32(1) - z)).astype(np.float64)),
              rtol=1e-4, atol=1e-4)
    n = np.array([1.0, np.nan, -2.0, np.inf, np.nan], np.float32)
    close(run("ReplaceNaN", {"x": n}, ["y"])[0], np.array([1.0, 0.0, -2.0, np.inf, 0.0], np.float32))
    close(run("ReplaceNaN", {"x": n}, ["y"], value=1.5)[0], np.array([1.0, 1.5, -2.0, np.inf, 1.5], np.float32))
    for dtype in (np.int32, np.int64):
        d = np.array([-7, -4, -1, 0, 3, 8], dtype)
        for divisor in (3, -3):
            trunc = np.array([int(math.fmod(v, divisor)) for v in d], dtype)
            follow = np.array([r + divisor if r != 0 and (r > 0) != (divisor > 0) else r for r in trunc], dtype)
            close(run("Mod", {"d": d}, ["y"], divisor=divisor)[0], trunc, dtype=dtype)
            close(run("Mod", {"d": d}, ["y"], divisor=divisor, sign_follow_divisor=1)[0], follow, dtype=dtype)
    with pytest.raises(c2.NetImportError, match=r"Mod .*divisor"):
        c2.load_net(net_of("Mod", 1, ["y"]))
    b = np.abs(f32(2, 3, seed=6)) + 0.5
    close(run("Pow", {"x": b}, ["y"], exponent=2.5)[0], b.astype(np.float64) ** 2.5, rtol=1e-5)
    e = f32(2, 3, seed=7)
    close(run("Pow", {"x": b, "e": e}, ["y"])[0], b.astype(np.float64) ** e, rtol=1e-5)
    e_col = f32(2, seed=8)
    close(run("Pow", {"x": b, "e": e_col}, ["y"], broadcast=1, axis=0)[0], b.astype(np.float64) ** e_col[:, None], rtol=1e-5)
    with pytest.raises(RuntimeError, match="Pow: exponent of shape"):
        run("Pow", {"x": b, "e": e_col}, ["y"])
    with pytest.raises(c2.NetImportError, match=r"Pow .*exponent"):
        c2.load_net(net_of("Pow", 1, ["y"]))


@pytest.mark.parametrize(
    "fixture, inputs, reference, tol",
    [
        ("glow_sign.pbtxt", [f32(20, 50, seed=9)], np.sign, 0),
        ("glow_negative.pbtxt", [f32(5, 6, seed=10)], np.negative, 1e-5),
        ("glow_swish_op_net.pbtxt", [f32(10, seed=11)], lambda x: x / (1 + np.exp(-x)), 1e-5),
        ("glow_gelu.pbtxt", [f32(10, 30, seed=12) * 10], np_gelu, 1e-4),  # Caffe2's erf form (Glow: tanh, tol 1e-3)
        ("glow_log1p.pbtxt", [np.array([0.5, 0.1, 0.01, 1, 2, 3, 10, 20, 30, 1.1, 1.01, 1.001], np.float32).reshape(3, 4)],
         np.log1p, 1e-5),
        ("glow_logit_op_net.pbtxt", [np.linspace(0, 1, 10, dtype=np.float32)],
         lambda x: np.log(np.clip(x, 1e-6, 1 - 1e-6) / (1 - np.clip(x, 1e-6, 1 - 1e-6))), 1e-3),
        ("glow_replace_nan_predict_net.pbtxt", [np.where(f32(10, 10, seed=13) > 0.5, np.nan, 2.0).astype(np.float32)],
         lambda x: np.where(np.isnan(x), 1.0, x), 0),
        ("glow_lpnorm_p1.pbtxt", [f32(5, 6, seed=14)], lambda x: np.abs(x).sum().reshape(1), 1e-5),
        ("glow_lpnorm_p2.pbtxt", [f32(5, 6, seed=15)], lambda x: (x * x).sum().reshape(1), 1e-5),  # no sqrt
        ("glow_reducebackmean.pbtxt", [np.arange(1, 13, dtype=np.float32).reshape(3, 4)], lambda x: x.mean(-1), 1e-6),
        ("glow_reduce_back_sum.pbtxt", [f32(11, 13, 17, seed=16)], lambda x: x.sum(-1), 1e-5),
        ("glow_argmin.pbtxt", [f32(1, 50, seed=17)], lambda x: x.argmin(1), 0),
        ("glow_dot_product_predict_net.pbtxt", [f32(10, 20, seed=18), f32(10, 20, seed=19)],
         lambda x, y: (x * y).sum(1), 1e-5),
        ("glow_dot_product_predict_net.pbtxt", [f32(10, seed=20), f32(10, seed=21)], lambda x, y: x * y, 1e-6),
        ("glow_eq_op_net.pbtxt", [np.array([1, 2, 3, 4], np.float32), np.array([1, 0, 3, 5], np.float32)], np.equal, 0),
        ("glow_modulo_op_net.pbtxt", [np.array([-3, -2, -1, 0, 1, 5, 7], np.int64)],
         lambda x: np.array([int(math.fmod(v, 2)) for v in x], np.int64), 0),
    ],
)
def test_glow_elementwise_nets(fixture, inputs, reference, tol):
    model = c2.load_net(FIXTURES / fixture)
    got = model(*[torch.from_numpy(x) for x in inputs]).numpy()
    close(got, reference(*inputs), rtol=tol, atol=tol)


def test_glow_sqr_net():
    # The net's external_input says "inputs" while the operator reads "input".
    model = c2.load_net(FIXTURES / "glow_sqr_predict_net.pbtxt", inputs=["input"])
    x = f32(4, 2, seed=22)
    close(model(torch.from_numpy(x)).numpy(), x * x)


def test_glow_argmin_keeps_int64():
    model = c2.load_net(FIXTURES / "glow_argmin.pbtxt")
    x = f32(1, 50, seed=23)
    out = model(torch.from_numpy(x)).numpy()
    close(out, np.array([x.argmin()]), dtype=np.int64)


# --- reductions ------------------------------------------------------------------------------


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1], [2, 0]])
def test_reduce(keepdims, axes):
    x = f32(3, 4, 5, seed=24)
    np_axes = tuple(range(3)) if axes is None else tuple(a % 3 for a in axes)
    kw = {"keepdims": keepdims} if keepdims == 0 else {}
    if axes is not None:
        kw["axes"] = axes
    for op_type, ref in (
        ("ReduceSum", lambda v: v.sum(np_axes, keepdims=bool(keepdims))),
        ("ReduceMean", lambda v: v.mean(np_axes, keepdims=bool(keepdims))),
        ("ReduceMax", lambda v: v.max(np_axes, keepdims=bool(keepdims))),
        ("ReduceMin", lambda v: v.min(np_axes, keepdims=bool(keepdims))),
        ("ReduceL1", lambda v: np.abs(v).sum(np_axes, keepdims=bool(keepdims))),
        ("ReduceL2", lambda v: np.sqrt((v * v).sum(np_axes, keepdims=bool(keepdims)))),
    ):
        close(run(op_type, {"x": x}, ["y"], **kw)[0], ref(x.astype(np.float64)).astype(np.float32), rtol=1e-5, atol=1e-5)


def test_reduce_sum_keeps_int_dtype_and_rejects_bad_axes():
    xi = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    close(run("ReduceSum", {"x": xi}, ["y"], axes=[1])[0], xi.sum(1, keepdims=True), dtype=np.int32)
    with pytest.raises(RuntimeError, match="ReduceSum: axis 3 is out of range"):
        run("ReduceSum", {"x": xi}, ["y"], axes=[3])


def np_front_back(x, n, front, kind, lengths=None):
    """Written from reduce_front_back_{sum_mean,max}_ops: rows x cols view, optional lengths
    per kept column (front) / row (back); the first entry seeds the accumulator."""
    shape = x.shape
    if front:
        rows, cols = int(np.prod(shape[:n])), int(np.prod(shape[n:]))
        out_shape = shape[n:]
        mat = x.reshape(rows, cols)
        get = lambda i, j: mat[j, i]  # noqa: E731  (kept column i, reduced entry j)
        batch, extent = cols, rows
    else:
        rows, cols = int(np.prod(shape[: len(shape) - n])), int(np.prod(shape[len(shape) - n:]))
        out_shape = shape[: len(shape) - n]
        mat = x.reshape(rows, cols)
        get = lambda i, j: mat[i, j]  # noqa: E731
        batch, extent = rows, cols
    out = np.zeros(batch, x.dtype)
    if rows == 0 or cols == 0:
        return out.reshape(out_shape)
    for i in range(batch):
        length = extent if lengths is None else int(lengths[i])
        acc = get(i, 0)
        for j in range(1, length):
            acc = max(acc, get(i, j)) if kind == "max" else acc + get(i, j)
        if kind == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):
                acc = acc / np.float32(length)
        out[i] = acc
    return out.reshape(out_shape)


@pytest.mark.parametrize("front", [True, False])
@pytest.mark.parametrize("kind", ["sum", "mean", "max"])
@pytest.mark.parametrize("len_dtype", [np.int32, np.int64])
def test_reduce_front_back(front, kind, len_dtype):
    op_type = f"Reduce{'Front' if front else 'Back'}{kind.capitalize()}"
    x = f32(3, 4, 5, seed=25)
    for n in (0, 1, 2, 3):
        close(run(op_type, {"x": x}, ["y"], num_reduce_dim=n)[0], np_front_back(x, n, front, kind), rtol=1e-5, atol=1e-5)
    x2 = f32(4, 6, seed=26)
    lengths = np.array([4, 0, 2, 1, 3, 4], len_dtype) if front else np.array([6, 0, 3, 1], len_dtype)
    got = run(op_type, {"x": x2, "l": lengths}, ["y"])[0]
    close(got, np_front_back(x2, 1, front, kind, lengths), rtol=1e-5, atol=1e-5)
    close(run(op_type, {"x": np.zeros((0, 3), np.float32)}, ["y"])[0],
          np.zeros((3,) if front else (0,), np.float32))
    with pytest.raises(RuntimeError, match="lengths for a batch of"):
        run(op_type, {"x": x2, "l": lengths[:2]}, ["y"])
    with pytest.raises(RuntimeError, match=f"{op_type}: every length must be in"):
        run(op_type, {"x": x2, "l": lengths + 7}, ["y"])
    with pytest.raises(c2.NetImportError, match=f"{op_type} .*num_reduce_dim must be 1"):
        c2.load_net(net_of(op_type, 2, ["y"], num_reduce_dim=2))


# --- TopK, ArgMax/ArgMin ---------------------------------------------------------------------


def np_top_k(x, k, axis):
    """Caffe2's GetTopK per (outer, inner) line: larger first, lower index on ties; past the
    axis size value 0 and index -1; flattened index into X."""
    ax = x.ndim - 1 if axis == -1 else axis
    n = x.shape[ax]
    prev, nxt = int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax + 1:]))
    xv = x.reshape(prev, n, nxt)
    vals = np.zeros((prev, k, nxt), x.dtype)
    idx = np.full((prev, k, nxt), -1, np.int64)
    flat = np.full((prev, k, nxt), -1, np.int64)
    for i in range(prev):
        for j in range(nxt):
            order = sorted(range(n), key=lambda t: (-xv[i, t, j], t))[:k]
            for r, t in enumerate(order):
                vals[i, r, j] = xv[i, t, j]
                idx[i, r, j] = t
                flat[i, r, j] = i * n * nxt + t * nxt + j
    out_shape = list(x.shape)
    out_shape[ax] = k
    return vals.reshape(out_shape), idx.reshape(out_shape), flat.reshape(-1)


@pytest.mark.parametrize("k, axis", [(1, -1), (3, -1), (2, 0), (2, 1), (6, 1)])
def test_top_k(k, axis):
    x = np.round(f32(3, 5, 4, seed=27), 1)  # rounding creates ties
    kw = {"k": k} if axis == -1 else {"k": k, "axis": axis}
    vals, idx, flat = run("TopK", {"x": x}, ["v", "i", "f"], **kw)
    rv, ri, rf = np_top_k(x, k, axis)
    close(vals, rv)
    close(idx, ri, dtype=np.int64)
    close(flat, rf, dtype=np.int64)
    with pytest.raises(c2.NetImportError, match=r"TopK .*'k' must be >= 1"):
        c2.load_net(net_of("TopK", 1, ["v", "i"]))


def test_glow_topk_net():
    model = c2.load_net(FIXTURES / "glow_topk_k2.pbtxt")
    x = f32(20, 50, seed=28)
    vals, idx = model(torch.from_numpy(x))
    rv, ri, _ = np_top_k(x, 2, -1)
    close(vals.numpy(), rv)
    close(idx.numpy(), ri, dtype=np.int64)  # Caffe2's int64 (Glow emits int32)


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_arg_max_min(axis, keepdims):
    x = np.round(f32(3, 4, 5, seed=29), 0)  # ties: the first index wins
    ax = 2 if axis == -1 else axis
    for op_type, fn in (("ArgMax", np.argmax), ("ArgMin", np.argmin)):
        ref = fn(x, axis=ax)
        if keepdims:
            ref = np.expand_dims(ref, ax)
        kw = {"axis": axis, "keepdims": keepdims}
        close(run(op_type, {"x": x}, ["y"], **kw)[0], ref.astype(np.int64), dtype=np.int64)
    with pytest.raises(c2.NetImportError, match=r"ArgMax .*'axis' must be -1 or non-negative"):
        c2.load_net(net_of("ArgMax", 1, ["y"], axis=-2))


# --- Slice, Tile, Shape ----------------------------------------------------------------------


def np_slice(x, starts, ends):
    index = []
    for i in range(x.ndim):
        size = x.shape[i]
        if i >= len(starts):
            index.append(slice(None))
            continue
        s, e = starts[i], ends[i]
        s = size + 1 + s if s < 0 else s
        e = size + 1 + e if e < 0 else e
        index.append(slice(min(s, size), min(e, size)))
    return x[tuple(index)]


@pytest.mark.parametrize("starts, ends", [([0, 1], [-1, 3]), ([1], [-1]), ([0, 0, 2], [-1, -1, -2]), ([2], [100]),
                                          ([-3], [-1])])
@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
def test_slice(starts, ends, idx_dtype):
    x = f32(4, 5, 6, seed=30)
    ref = np_slice(x, starts, ends)
    close(run("Slice", {"x": x}, ["y"], starts=starts, ends=ends)[0], ref)
    got = run("Slice", {"x": x, "s": np.array(starts, idx_dtype), "e": np.array(ends, idx_dtype)}, ["y"])[0]
    close(got, ref)


def test_slice_errors():
    x = f32(4, 5, seed=31)
    with pytest.raises(RuntimeError, match="Slice: only one dimension"):
        run("Slice", {"x": x}, ["y"], starts=[1, 1], ends=[3, 3])
    with pytest.raises(RuntimeError, match="Slice: dim 0 of size 4"):
        run("Slice", {"x": x}, ["y"], starts=[3], ends=[1])
    with pytest.raises(c2.NetImportError, match=r"Slice .*differ in length"):
        c2.load_net(net_of("Slice", 1, ["y"], starts=[0, 1], ends=[2]))


@pytest.mark.parametrize("tiles, axis", [(1, 0), (3, 0), (2, 1), (2, -1), (0, 2)])
def test_tile(tiles, axis):
    x = f32(2, 3, 4, seed=32)
    reps = [1, 1, 1]
    reps[axis % 3] = tiles
    ref = np.tile(x, reps)
    kw = {"tiles": tiles, "axis": axis}
    close(run("Tile", {"x": x}, ["y"], **kw)[0], ref)
    for dtype in (np.int32, np.int64):
        got = run("Tile", {"x": x, "t": np.array([tiles], dtype), "a": np.array([axis], dtype)}, ["y"])[0]
        close(got, ref)


def test_shape_and_glow_gather_const_fold():
    x = f32(2, 3, 4, seed=33)
    close(run("Shape", {"x": x}, ["y"])[0], np.array([2, 3, 4], np.int64), dtype=np.int64)
    close(run("Shape", {"x": x}, ["y"], axes=[2, 0])[0], np.array([4, 2], np.int64))
    with pytest.raises(RuntimeError, match="Shape: axis 3 is out of range"):
        run("Shape", {"x": x}, ["y"], axes=[3])
    model = c2.load_net(FIXTURES / "glow_gather_const_fold.pbtxt", FIXTURES / "glow_gather_const_fold_init.pbtxt",
                        inputs=["data"])
    data = f32(1, 2, 4, 3, seed=34)
    close(model(torch.from_numpy(data)).numpy(), data.reshape(1, 4, 3, 2))


# --- products and norms ----------------------------------------------------------------------


def test_dot_product_and_errors():
    x, y = f32(4, 2, 3, seed=35), f32(4, 2, 3, seed=36)
    close(run("DotProduct", {"x": x, "y": y}, ["o"])[0], (x * y).reshape(4, -1).sum(1), rtol=1e-5, atol=1e-5)
    close(run("DotProduct", {"x": np.zeros((0, 3), np.float32), "y": np.zeros((0, 3), np.float32)}, ["o"])[0],
          np.zeros(0, np.float32))
    with pytest.raises(RuntimeError, match="DotProduct: X of shape"):
        run("DotProduct", {"x": x, "y": y[:3]}, ["o"])


@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_matmul(trans_a, trans_b):
    a = f32(3, 2, 4, seed=37)  # axis_a=1: [3, 8]
    b = f32(8, 5, seed=38)
    a2 = a.reshape(3, 8)
    if trans_a:
        a = np.ascontiguousarray(a2.T).reshape(8, 3)
        a2 = a
    if trans_b:
        b = np.ascontiguousarray(b.T)
    ref = (a2.T if trans_a else a2) @ (b.T if trans_b else b)
    got = run("MatMul", {"a": a, "b": b}, ["y"], trans_a=trans_a, trans_b=trans_b)[0]
    close(got, ref, rtol=1e-5, atol=1e-5)
    c = f32(2, 4, 5, seed=39)  # axis_b=2: [8, 5]
    close(run("MatMul", {"a": f32(3, 8, seed=40), "b": c}, ["y"], axis_b=2)[0], f32(3, 8, seed=40) @ c.reshape(8, 5),
          rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="MatMul: inner dimensions differ"):
        run("MatMul", {"a": f32(3, 7), "b": f32(8, 5)}, ["y"])


def test_lp_norm_normalize_rms_norm():
    x = f32(4, 6, seed=41)
    close(run("LpNorm", {"x": x}, ["y"], p=1)[0], np.abs(x).sum().reshape(1))
    close(run("LpNorm", {"x": x}, ["y"])[0], (x * x).sum().reshape(1), rtol=1e-5)
    close(run("LpNorm", {"x": x}, ["y"], p=2, average=1)[0], ((x * x).sum() / x.size).reshape(1), rtol=1e-5)
    with pytest.raises(c2.NetImportError, match=r"LpNorm .*'p' must be 1 or 2"):
        c2.load_net(net_of("LpNorm", 1, ["y"], p=3))
    for axis in (-1, 0, 1):
        norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis, keepdims=True))
        kw = {} if axis == -1 else {"axis": axis}
        close(run("Normalize", {"x": x}, ["y"], **kw)[0], x / np.maximum(norm, 1e-12), rtol=1e-5)
    z = np.zeros((2, 3), np.float32)
    close(run("Normalize", {"x": z}, ["y"])[0], z)
    x3 = f32(2, 3, 4, seed=42)
    for axis, eps in ((1, 0.0), (2, 0.5), (-1, 1.0)):
        ax = axis % 3
        n = int(np.prod(x3.shape[ax:]))
        gamma, beta = f32(n, seed=43), f32(n, seed=44)
        x2 = x3.reshape(-1, n).astype(np.float64)
        rrms = 1 / np.sqrt((x2 ** 2).mean(1) + eps)
        y = x2 * rrms[:, None] * gamma + beta
        kw = {"eps": eps, "axis": axis} if eps else {"axis": axis}
        got_y, got_r = run("RMSNorm", {"x": x3, "g": gamma, "b": beta}, ["y", "r"], **kw)
        close(got_y, y.reshape(x3.shape).astype(np.float32), rtol=1e-5, atol=1e-5)
        close(got_r, rrms.reshape(x3.shape[:ax]).astype(np.float32), rtol=1e-5)


def test_glow_rmsnorm_net():
    model = c2.load_net(FIXTURES / "glow_rmsnorm.pbtxt")
    x = torch.arange(1, 13, dtype=torch.float32).reshape(3, 4)
    gamma = beta = torch.arange(1, 5, dtype=torch.float32)
    y, rrms = model(x, gamma, beta)
    expected = [[1.3429972, 3.3719888, 6.0869746, 9.487955], [1.7495317, 3.798876, 6.148033, 8.797003],
                [1.8485281, 3.8856182, 6.11127, 8.525484]]
    close(y.numpy(), np.array(expected, np.float32), rtol=1e-5, atol=1e-5)
    assert rrms.shape == (3,)


# --- a small mixed net: script and export ----------------------------------------------------


def _mixed_net():
    net = c2.NetDef(name="mixed")
    add_op(net, "ReduceBackMean", ["x"], ["m"])
    add_op(net, "GT", ["x", "m"], ["above"], broadcast=1, axis=0)
    add_op(net, "Where", ["above", "x", "y"], ["w"])
    add_op(net, "TopK", ["w"], ["vals", "idx"], k=2)
    add_op(net, "Sqr", ["vals"], ["sq"])
    add_op(net, "ReduceSum", ["sq"], ["s"], axes=[1], keepdims=0)
    add_op(net, "Gelu", ["s"], ["g"])
    add_op(net, "Slice", ["x"], ["xs"], starts=[0, 1], ends=[-1, 3])
    add_op(net, "DotProduct", ["xs", "xs"], ["d"])
    add_op(net, "Mean", ["g", "d"], ["out"])
    net.external_input.extend(["x", "y"])
    net.external_output.extend(["out", "idx"])
    return net


def _mixed_reference(x, y):
    m = x.mean(1)
    w = np.where(x > m[:, None], x, y)
    vals, idx, _ = np_top_k(w, 2, -1)
    s = (vals.astype(np.float64) ** 2).sum(1)
    g = np_gelu(s)
    xs = x[:, 1:3]
    d = (xs.astype(np.float64) ** 2).sum(1)
    return ((g + d) / 2).astype(np.float32), idx


def test_mixed_net_matches_numpy_scripts_and_exports():
    model = c2.load_net(_mixed_net())
    x, y = f32(5, 6, seed=45), f32(5, 6, seed=46)
    out, idx = model(torch.from_numpy(x), torch.from_numpy(y))
    ref_out, ref_idx = _mixed_reference(x, y)
    close(out.numpy(), ref_out, rtol=1e-5, atol=1e-5)
    close(idx.numpy(), ref_idx, dtype=np.int64)
    scripted = torch.jit.script(model)
    for a, b in zip(scripted(torch.from_numpy(x), torch.from_numpy(y)), (out, idx)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    batch = torch.export.Dim("batch", min=2, max=64)
    exported = torch.export.export(model, (torch.from_numpy(x), torch.from_numpy(y)),
                                   dynamic_shapes=({0: batch}, {0: batch}))
    x2, y2 = f32(9, 6, seed=47), f32(9, 6, seed=48)
    out2, idx2 = exported.module()(torch.from_numpy(x2), torch.from_numpy(y2))
    ref_out2, ref_idx2 = _mixed_reference(x2, y2)
    close(out2.numpy(), ref_out2, rtol=1e-5, atol=1e-5)
    close(idx2.numpy(), ref_idx2)
