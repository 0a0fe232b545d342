"""torch_caffe2ops.caffe2: Caffe2 NetDef (predict + init net) import as a torch.fx.GraphModule.

Nets are built here as NetDef messages and fed to load_net as messages, binary bytes and text.
Core operators are checked against NumPy references written from Caffe2's operator semantics;
this library's operator types against direct torch.ops.caffe2ops calls (a DPER-style ranker).
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

import torch_caffe2ops  # noqa: E402,F401
from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, fill  # noqa: E402,F401  (other test files import them from here too)

ops = torch.ops.caffe2ops
FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# building nets
# --------------------------------------------------------------------------------------------


def as_format(net: Any, fmt: str) -> Any:
    if fmt == "message":
        return net
    if fmt == "binary":
        return net.SerializeToString()
    if fmt == "text":
        return c2.to_text(net)
    raise ValueError(fmt)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def run_single_op(
    op_type: str, inputs: Dict[str, np.ndarray], outputs: Sequence[str], fmt: str = "message", **args: Any
) -> List[torch.Tensor]:
    net = c2.NetDef(name="single")
    add_op(net, op_type, list(inputs), outputs, **args)
    net.external_input.extend(list(inputs))
    net.external_output.extend(outputs)
    model = c2.load_net(as_format(net, fmt))
    out = model(*[t(v) for v in inputs.values()])
    return list(out) if isinstance(out, tuple) else [out]


# --------------------------------------------------------------------------------------------
# reading NetDef
# --------------------------------------------------------------------------------------------


def _tiny_net() -> Any:
    net = c2.NetDef(name="tiny")
    add_op(net, "Relu", ["x"], ["y"])
    net.external_input.append("x")
    net.external_output.append("y")
    return net


def test_read_net_accepts_every_form(tmp_path: Path) -> None:
    net = _tiny_net()
    (tmp_path / "net.pb").write_bytes(net.SerializeToString())
    (tmp_path / "net.pbtxt").write_text(c2.to_text(net))
    forms = [
        net,
        net.SerializeToString(),
        bytearray(net.SerializeToString()),
        c2.to_text(net),
        c2.to_text(net).encode(),
        tmp_path / "net.pb",
        str(tmp_path / "net.pb"),
        tmp_path / "net.pbtxt",
    ]
    for form in forms:
        assert c2.read_net(form) == net, type(form)


def test_read_net_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="NetDef"):
        c2.read_net("this is { not a net")
    with pytest.raises(TypeError):
        c2.read_net(42)


# --------------------------------------------------------------------------------------------
# core operators against NumPy references
# --------------------------------------------------------------------------------------------

rng = np.random.default_rng(0)


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    lead = int(np.prod(x.shape[:axis]))
    x2 = x.reshape(lead, -1).astype(np.float64)
    e = np.exp(x2 - x2.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).reshape(x.shape)


def np_layer_norm(x: np.ndarray, axis: int, eps: float):
    lead = int(np.prod(x.shape[:axis]))
    x2 = x.reshape(lead, -1).astype(np.float64)
    mean = x2.mean(1, keepdims=True)
    std = np.sqrt(x2.var(1, keepdims=True) + eps)
    stat_shape = list(x.shape[:axis]) + [1]
    return ((x2 - mean) / std).reshape(x.shape), mean.reshape(stat_shape), std.reshape(stat_shape)


def np_segment(rows: np.ndarray, lengths: np.ndarray, mean: bool = False) -> np.ndarray:
    out, start = [], 0
    for n in lengths:
        seg = rows[start : start + n].astype(np.float64)
        total = seg.sum(0) if n else np.zeros(rows.shape[1:])
        out.append(total / n if (mean and n) else total)
        start += n
    return np.stack(out).astype(np.float32)


def np_legacy_broadcast(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    if axis == -1:
        axis = a.ndim - b.ndim
    return b.reshape(b.shape + (1,) * (a.ndim - axis - b.ndim))


X234 = f32(2, 3, 4)
W54 = f32(5, 4)
B5 = f32(5)
DATA = f32(10, 4)
IDX = np.array([1, 3, 3, 9, 0, 2, 5], dtype=np.int64)
LENS = np.array([2, 0, 5], dtype=np.int32)
WTS = rng.random(7).astype(np.float32)
POS = (np.abs(f32(3, 4)) + 0.1).astype(np.float32)

# (id, op type, inputs, args, output names, reference -> list of outputs)
CORE_CASES: List[tuple] = [
    ("fc", "FC", {"x": f32(3, 4), "w": W54, "b": B5}, {}, ["y"],
     lambda x, w, b: [x @ w.T + b]),
    ("fc_axis2", "FC", {"x": X234, "w": W54, "b": B5}, {"axis": 2}, ["y"],
     lambda x, w, b: [(x.reshape(6, 4) @ w.T + b).reshape(2, 3, 5)]),
    ("fc_axis_w2", "FC", {"x": f32(3, 4), "w": f32(5, 2, 2), "b": B5}, {"axis_w": 1}, ["y"],
     lambda x, w, b: [x @ w.reshape(5, 4).T + b]),
    ("fc_axis0", "FC", {"x": f32(2, 2), "w": W54, "b": B5}, {"axis": 0}, ["y"],
     lambda x, w, b: [(x.reshape(1, 4) @ w.T + b).reshape(5)]),
    ("fc_transposed", "FCTransposed", {"x": f32(3, 4), "w": f32(4, 5), "b": B5}, {}, ["y"],
     lambda x, w, b: [x @ w + b]),
    ("relu", "Relu", {"x": X234}, {}, ["y"], lambda x: [np.maximum(x, 0)]),
    ("sigmoid", "Sigmoid", {"x": X234}, {}, ["y"], lambda x: [1 / (1 + np.exp(-x))]),
    ("tanh", "Tanh", {"x": X234}, {}, ["y"], lambda x: [np.tanh(x)]),
    ("exp", "Exp", {"x": X234}, {}, ["y"], lambda x: [np.exp(x)]),
    ("log", "Log", {"x": POS}, {}, ["y"], lambda x: [np.log(x)]),
    ("sqrt", "Sqrt", {"x": POS}, {}, ["y"], lambda x: [np.sqrt(x)]),
    ("softmax_default", "Softmax", {"x": X234}, {}, ["y"], lambda x: [np_softmax(x, 1)]),
    ("softmax_axis2", "Softmax", {"x": X234}, {"axis": 2}, ["y"], lambda x: [np_softmax(x, 2)]),
    ("softmax_neg", "Softmax", {"x": X234}, {"axis": -1}, ["y"], lambda x: [np_softmax(x, 2)]),
    ("layer_norm", "LayerNorm", {"x": X234}, {}, ["y", "mean", "std"], lambda x: list(np_layer_norm(x, 1, 1e-5))),
    ("layer_norm_axis2_eps", "LayerNorm", {"x": X234}, {"axis": 2, "epsilon": 1e-2}, ["y", "mean", "std"],
     lambda x: list(np_layer_norm(x, 2, 1e-2))),
    ("layer_norm_affine", "LayerNorm", {"x": X234, "g": f32(3, 4), "b": f32(3, 4)}, {"elementwise_affine": 1},
     ["y", "mean", "std"],
     lambda x, g, b: [np_layer_norm(x, 1, 1e-5)[0] * g + b] + list(np_layer_norm(x, 1, 1e-5)[1:])),
    ("add_numpy", "Add", {"a": f32(2, 3), "b": f32(3)}, {}, ["c"], lambda a, b: [a + b]),
    ("add_legacy_axis", "Add", {"a": X234, "b": f32(3)}, {"broadcast": 1, "axis": 1}, ["c"],
     lambda a, b: [a + np_legacy_broadcast(a, b, 1)]),
    ("mul_legacy_suffix", "Mul", {"a": X234, "b": f32(3, 4)}, {"broadcast": 1}, ["c"],
     lambda a, b: [a * b]),
    ("sub_legacy_axis_str", "Sub", {"a": f32(2, 3, 4, 5), "b": f32(3)},
     {"broadcast": 1, "axis_str": "C", "order": "NCHW"}, ["c"],
     lambda a, b: [a - b.reshape(3, 1, 1)]),
    ("mul_scalar_b", "Mul", {"a": X234, "b": f32(1)}, {"broadcast": 1}, ["c"], lambda a, b: [a * b[0]]),
    ("div_float", "Div", {"a": X234, "b": POS[0]}, {}, ["c"], lambda a, b: [a / b]),
    ("div_int_truncates", "Div", {"a": np.array([-7, 7, 5], np.int32), "b": np.array([2, 2, -3], np.int32)}, {},
     ["c"], lambda a, b: [np.trunc(a / b).astype(np.int32)]),
    ("sum3", "Sum", {"a": X234, "b": X234 * 2, "c": X234 - 1}, {}, ["s"], lambda a, b, c: [a + b + c]),
    ("copy", "Copy", {"x": X234}, {}, ["y"], lambda x: [x]),
    ("alias", "Alias", {"x": X234}, {}, ["y"], lambda x: [x]),
    ("stop_gradient", "StopGradient", {"x": X234}, {}, ["y"], lambda x: [x]),
    ("cast_int64", "Cast", {"x": np.array([1.7, -1.7, 0.2], np.float32)}, {"to": 10}, ["y"],
     lambda x: [np.array([1, -1, 0], np.int64)]),
    ("cast_bool", "Cast", {"x": np.array([1.5, 0.0, -2.0], np.float32)}, {"to": 5}, ["y"],
     lambda x: [np.array([True, False, True])]),
    ("cast_float_from_int", "Cast", {"x": np.array([3, -2], np.int32)}, {"to": 1}, ["y"],
     lambda x: [x.astype(np.float32)]),
    ("cast_by_name", "Cast", {"x": np.array([3.9, -2.5], np.float32)}, {"to": "INT32"}, ["y"],
     lambda x: [np.array([3, -2], np.int32)]),
    ("clip", "Clip", {"x": X234}, {"min": -0.5, "max": 0.5}, ["y"], lambda x: [np.clip(x, -0.5, 0.5)]),
    ("clip_min_only", "Clip", {"x": X234}, {"min": 0.1}, ["y"], lambda x: [np.maximum(x, 0.1)]),
    ("scale", "Scale", {"x": X234}, {"scale": 2.5}, ["y"], lambda x: [x * 2.5]),
    ("reshape_zero_minus_one", "Reshape", {"x": X234}, {"shape": [0, -1]}, ["y", "old"],
     lambda x: [x.reshape(2, 12), np.array([2, 3, 4], np.int64)]),
    ("reshape_shape_input", "Reshape", {"x": X234, "s": np.array([4, 6], np.int64)}, {}, ["y", "old"],
     lambda x, s: [x.reshape(4, 6), np.array([2, 3, 4], np.int64)]),
    ("transpose_axes", "Transpose", {"x": X234}, {"axes": [1, 0, 2]}, ["y"], lambda x: [x.transpose(1, 0, 2)]),
    ("transpose_default_reverses", "Transpose", {"x": X234}, {}, ["y"], lambda x: [x.transpose(2, 1, 0)]),
    ("flatten", "Flatten", {"x": X234}, {}, ["y"], lambda x: [x.reshape(2, 12)]),
    ("flatten_axis2", "Flatten", {"x": X234}, {"axis": 2}, ["y"], lambda x: [x.reshape(6, 4)]),
    ("flatten_axis0", "Flatten", {"x": X234}, {"axis": 0}, ["y"], lambda x: [x.reshape(1, 24)]),
    ("flatten_to_vec", "FlattenToVec", {"x": X234}, {}, ["y"], lambda x: [x.reshape(-1)]),
    ("expand_dims", "ExpandDims", {"x": f32(2, 3)}, {"dims": [3, 0]}, ["y"], lambda x: [x.reshape(1, 2, 3, 1)]),
    ("squeeze", "Squeeze", {"x": f32(1, 3, 1, 2)}, {"dims": [2, 0]}, ["y"], lambda x: [x.reshape(3, 2)]),
    ("gather_axis0_wraps", "Gather", {"d": f32(5, 3), "i": np.array([[0, 4], [2, -1]], np.int64)}, {}, ["y"],
     lambda d, i: [np.take(d, i % 5, axis=0)]),
    ("gather_axis1", "Gather", {"d": X234, "i": np.array([2, 0], np.int32)}, {"axis": 1}, ["y"],
     lambda d, i: [np.take(d, i, axis=1)]),
    ("sparse_lengths_sum", "SparseLengthsSum", {"d": DATA, "i": IDX, "l": LENS}, {}, ["y"],
     lambda d, i, l: [np_segment(d[i], l)]),
    ("sparse_lengths_weighted_sum", "SparseLengthsWeightedSum", {"d": DATA, "w": WTS, "i": IDX, "l": LENS}, {},
     ["y"], lambda d, w, i, l: [np_segment(d[i] * w[:, None], l)]),
    ("sparse_lengths_mean", "SparseLengthsMean", {"d": DATA, "i": IDX.astype(np.int32), "l": LENS}, {}, ["y"],
     lambda d, i, l: [np_segment(d[i], l, mean=True)]),
    ("lengths_sum", "LengthsSum", {"d": f32(6, 2), "l": np.array([1, 2, 3], np.int32)}, {}, ["y"],
     lambda d, l: [np_segment(d, l)]),
    ("constant_fill_shape", "ConstantFill", {}, {"shape": [2, 3], "value": 3.5}, ["y"],
     lambda: [np.full((2, 3), 3.5, np.float32)]),
    ("constant_fill_int_value_is_int64", "ConstantFill", {}, {"shape": [2], "value": 7}, ["y"],
     lambda: [np.full((2,), 7, np.int64)]),
    ("constant_fill_like_input_extra", "ConstantFill", {"x": f32(2, 3)}, {"extra_shape": [4], "value": 2, "dtype": 2},
     ["y"], lambda x: [np.full((2, 3, 4), 2, np.int32)]),
    ("constant_fill_input_as_shape", "ConstantFill", {"s": np.array([3, 1], np.int64)},
     {"input_as_shape": 1, "value": 1.0, "dtype": 13}, ["y"], lambda s: [np.ones((3, 1), np.float64)]),
]


@pytest.mark.parametrize("case", CORE_CASES, ids=[c[0] for c in CORE_CASES])
def test_core_operator_matches_numpy(case: tuple) -> None:
    _, op_type, inputs, args, outputs, reference = case
    got = run_single_op(op_type, inputs, outputs, **args)
    expected = reference(*inputs.values())
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        e = np.asarray(e)
        assert tuple(g.shape) == e.shape
        if e.dtype.kind in "fc":
            assert g.dtype == torch.from_numpy(e.astype(e.dtype if e.dtype != np.float64 or g.dtype == torch.float64 else np.float32)).dtype
            np.testing.assert_allclose(g.detach().double().numpy(), e.astype(np.float64), rtol=1e-5, atol=1e-6)
        else:
            assert g.dtype == torch.from_numpy(e).dtype
            np.testing.assert_array_equal(g.numpy(), e)


def test_core_operators_via_text_and_binary() -> None:
    x = {"x": X234}
    for fmt in ("binary", "text"):
        (y,) = run_single_op("Softmax", x, ["y"], fmt=fmt, axis=2)
        np.testing.assert_allclose(y.numpy(), np_softmax(X234, 2), rtol=1e-5)


def test_legacy_broadcast_rejects_mismatch() -> None:
    with pytest.raises(RuntimeError, match="legacy broadcast"):
        run_single_op("Add", {"a": X234, "b": f32(4)}, ["c"], broadcast=1, axis=1)


def test_squeeze_of_non_unit_dim_fails() -> None:
    with pytest.raises(RuntimeError, match="Squeeze"):
        run_single_op("Squeeze", {"x": X234}, ["y"], dims=[1])


# --------------------------------------------------------------------------------------------
# init-net fills
# --------------------------------------------------------------------------------------------


def test_init_net_given_tensor_fills_parameters_and_buffers() -> None:
    init = c2.NetDef(name="init")
    values = {
        "w": f32(3, 2),
        "wd": rng.standard_normal((2, 2)),
        "i32": np.array([1, -2, 0], np.int32),
        "i64": np.array([[5, 6]], np.int64),
        "flags": np.array([True, False]),
    }
    for name, v in values.items():
        fill(init, name, v)
    add_op(init, "ConstantFill", [], ["c_default"], shape=[2])
    add_op(init, "ConstantFill", [], ["c_int"], shape=[1], value=4)
    blobs = c2.run_init_net(init)
    for name, v in values.items():
        expected = v.astype(np.float32).astype(np.float64) if v.dtype == np.float64 else v
        assert blobs[name].dtype == torch.from_numpy(expected).dtype
        np.testing.assert_array_equal(blobs[name].numpy(), expected)
    assert blobs["c_default"].dtype == torch.float32 and blobs["c_default"].eq(0).all()
    assert blobs["c_int"].dtype == torch.int64 and blobs["c_int"].item() == 4

    pred = c2.NetDef(name="pred")
    add_op(pred, "Mul", ["w", "x"], ["y"], broadcast=1)
    add_op(pred, "Gather", ["w", "i32"], ["g"])
    # i32 is not an external input, so no caller feeds it: a buffer. (Listed, it would be a
    # placeholder input: Gather reads it where data goes, and Caffe2's Predictor fed listed blobs.)
    pred.external_input.extend(["w", "x"])
    pred.external_output.extend(["y", "g"])
    model = c2.load_net(pred, init)
    assert dict(model.named_parameters()).keys() == {"w"}
    assert model.w.requires_grad and dict(model.named_buffers()).keys() == {"i32"}
    y, g = model(torch.tensor([2.0]))
    np.testing.assert_allclose(y.detach().numpy(), values["w"] * 2)
    np.testing.assert_allclose(g.detach().numpy(), np.take(values["w"], [1, 1, 0], axis=0))


def test_random_fills_follow_caffe2_shapes_and_scales() -> None:
    init = c2.NetDef(name="init")
    add_op(init, "XavierFill", [], ["xavier"], shape=[64, 300])
    add_op(init, "MSRAFill", [], ["msra"], shape=[300, 50])
    add_op(init, "GaussianFill", [], ["gauss"], shape=[200, 100], mean=1.0, std=0.5)
    add_op(init, "UniformFill", [], ["unif"], shape=[100, 100], min=-2.0, max=-1.0)
    torch.manual_seed(0)
    blobs = c2.run_init_net(init)
    torch.manual_seed(0)
    again = c2.run_init_net(init)
    for k in blobs:
        assert torch.equal(blobs[k], again[k]), "fills must come from torch's generator"
    s = (3.0 / 300) ** 0.5  # fan_in = numel / dim 0
    assert blobs["xavier"].shape == (64, 300) and blobs["xavier"].abs().max() <= s
    assert blobs["xavier"].abs().max() > 0.9 * s
    std = (2.0 / 300) ** 0.5  # fan_out = numel / dim 1
    assert abs(blobs["msra"].std().item() - std) < 0.05 * std and abs(blobs["msra"].mean().item()) < 0.01
    assert abs(blobs["gauss"].mean().item() - 1.0) < 0.02 and abs(blobs["gauss"].std().item() - 0.5) < 0.02
    assert blobs["unif"].min() >= -2.0 and blobs["unif"].max() <= -1.0


# --------------------------------------------------------------------------------------------
# this library's operator types
# --------------------------------------------------------------------------------------------


def test_caffe2ops_types_map_to_the_ops() -> None:
    x = f32(4, 3)
    idx = np.array([2, 0, 3, 1], np.int32)
    (y,) = run_single_op("BatchPermutation", {"x": x, "i": idx}, ["y"])
    torch.testing.assert_close(y, ops.batch_permutation(t(x), t(idx)))

    lengths = np.array([2, 1], np.int32)
    indices = np.array([0, 3, 1], np.int64)
    values = f32(3)
    (dense,) = run_single_op("BatchSparseToDense", {"l": lengths, "i": indices, "v": values}, ["d"],
                             dense_last_dim=5, default_value=-1.0)
    torch.testing.assert_close(dense, ops.batch_sparse_to_dense(t(lengths), t(indices), t(values), None, 5, -1.0))
    (back,) = run_single_op("BatchDenseToSparse", {"l": lengths, "i": indices, "d": dense.numpy()}, ["v"])
    torch.testing.assert_close(back, t(values))

    x3 = f32(2, 3, 4)
    mu, var = run_single_op("BatchMoments", {"x": x3}, ["mu", "var"], order="NCHW")
    emu, evar = ops.batch_moments(t(x3))
    torch.testing.assert_close(mu, emu)
    torch.testing.assert_close(var, evar)

    x1, x2 = f32(5), f32(5)
    lab = np.array([1, -1, 1, 1, -1], np.int32)
    (loss,) = run_single_op("MarginRankingCriterion", {"a": x1, "b": x2, "y": lab}, ["loss"], margin=0.3)
    torch.testing.assert_close(loss, ops.margin_ranking_criterion(t(x1), t(x2), t(lab), 0.3))

    param = f32(4, 3) * 3
    rows = np.array([0, 2], np.int64)
    (normed,) = run_single_op("SparseNormalize", {"p": param, "i": rows}, ["p2"], use_max_norm=0, norm=2.0)
    torch.testing.assert_close(normed, ops.sparse_normalize(t(param), t(rows), None, False, 2.0))
    half = param.astype(np.float16)
    (normed16,) = run_single_op("Float16SparseNormalize", {"p": half, "i": rows}, ["p2"])
    torch.testing.assert_close(normed16, ops.float16_sparse_normalize(t(half), t(rows)))

    a, b = f32(2, 3, 4), f32(2, 5, 4)
    (c,) = run_single_op("BatchMatMul", {"a": a, "b": b}, ["c"], trans_b=1)
    torch.testing.assert_close(c, ops.batch_mat_mul(t(a), t(b), False, True))
    a, b = f32(3, 2), f32(2, 3, 4)
    (c,) = run_single_op("BatchMatMul", {"a": a, "b": b}, ["c"], trans_a=1, broadcast=1)
    torch.testing.assert_close(c, ops.batch_mat_mul(t(a), t(b), True, False, True))

    data, gi = f32(3, 5, 2), np.array([[4, 0], [1, 1], [2, 3]], np.int64)
    (g,) = run_single_op("BatchGather", {"d": data, "i": gi}, ["g"], match_outer=1)
    torch.testing.assert_close(g, ops.batch_gather(t(data), t(gi), True))


def test_concat_split_family() -> None:
    a, b = f32(2, 3), f32(2, 1)
    out, info = run_single_op("Concat", {"a": a, "b": b}, ["out", "info"])  # no axis: order NCHW -> 1
    torch.testing.assert_close(out, t(np.concatenate([a, b], 1)))
    assert info.dtype == torch.int32 and info.tolist() == [3, 1]
    (stacked,) = run_single_op("DepthConcat", {"a": a, "b": a}, ["s"], axis=1, add_axis=1)
    torch.testing.assert_close(stacked, t(np.stack([a, a], 1)))
    (nhwc,) = run_single_op("Concat", {"a": f32(1, 2, 2, 3), "b": f32(1, 2, 2, 1)}, ["o"], order="NHWC")
    assert nhwc.shape == (1, 2, 2, 4)

    x = f32(2, 6)
    p0, p1 = run_single_op("Split", {"x": x}, ["p0", "p1"], split=[4, 2])
    torch.testing.assert_close(p0, t(x[:, :4]))
    torch.testing.assert_close(p1, t(x[:, 4:]))
    q = run_single_op("DepthSplit", {"x": x, "s": np.array([1, 5], np.int32)}, ["q0", "q1"], axis=1)
    assert [tuple(v.shape) for v in q] == [(2, 1), (2, 5)]
    r = run_single_op("Split", {"x": x}, ["r0", "r1", "r2"], axis=1)
    assert all(tuple(v.shape) == (2, 2) for v in r)
    u = run_single_op("Split", {"x": x}, ["u0", "u1"], axis=0, add_axis=1)
    torch.testing.assert_close(u[1], t(x[1]))
    s = run_single_op("SplitByLengths", {"x": f32(6, 2), "l": np.array([1, 2, 1, 2], np.int32)}, ["s0", "s1"],
                      axis=0)
    assert [v.shape[0] for v in s] == [3, 3]


def test_dropout_is_test_and_training_mode() -> None:
    x = f32(50, 40) + 5
    y, mask = run_single_op("Dropout", {"x": x}, ["y", "mask"], ratio=0.4, is_test=1)
    torch.testing.assert_close(y, t(x))
    assert mask.dtype == torch.bool and bool(mask.all())

    # is_test=0: a forward op like any other; it drops while the module trains and is the
    # identity after .eval() (what a Caffe2 inference net would have asked for with is_test=1).
    net = c2.NetDef(name="drop")
    add_op(net, "Dropout", ["x"], ["y"], ratio=0.5)
    net.external_input.append("x")
    net.external_output.append("y")
    model = c2.load_net(net)
    torch.manual_seed(1)
    dropped = model(t(x))
    assert 0.3 < float((dropped == 0).float().mean()) < 0.7
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], t(x)[kept] * 2)
    model.eval()
    torch.testing.assert_close(model(t(x)), t(x))


# --------------------------------------------------------------------------------------------
# a DPER-style ranker
# --------------------------------------------------------------------------------------------

B = 4
D = 5  # dense features
E = 4  # embedding dim


def ranker_params() -> Dict[str, np.ndarray]:
    r = np.random.default_rng(7)
    p = {
        "emb_user": r.standard_normal((20, E)).astype(np.float32) * 0.3,
        "emb_item": r.standard_normal((30, E)).astype(np.float32) * 0.3,
        "box_l1": np.array([0.0, 0.5, 1.0, 0.25, 0.0], np.float32),
        "box_l2": np.array([0.5, 0.5, 0.1, 1.0, 2.0], np.float32),
        "bucket_idx": np.array([0, 2, 4], np.int32),
        "bucket_bounds": np.array([0.5, 1.0, 1.5, 2.5, 3.5, 2.5], np.float32),
        "bucket_lens": np.array([2, 3, 1], np.int32),
        "onehot_lens": np.array([1, 2, 1, 1, 2], np.int32),
        "onehot_bounds": np.array([1.0, 0.5, 2.0, 1.5, 0.7, 1.0, 3.0], np.float32),
        "dense_w": r.standard_normal((E, D)).astype(np.float32) * 0.4,
        "dense_b": r.standard_normal(E).astype(np.float32) * 0.1,
        "pair_idx": np.array([1, 2, 5], np.int32),
        "pair_idx2": np.array([0, 4, 7], np.int32),
    }
    feat = E + 3 + 3 + 3 + (int(p["onehot_lens"].sum()) + D)
    p["out_w"] = r.standard_normal((1, feat)).astype(np.float32) * 0.2
    p["out_b"] = np.zeros(1, np.float32)
    return p


def ranker_nets(with_cbmmbg: bool = True):
    init = c2.NetDef(name="ranker_init")
    params = ranker_params()
    for name, v in params.items():
        fill(init, name, v)
    net = c2.NetDef(name="ranker")
    add_op(net, "BatchBoxCox", ["dense", "box_l1", "box_l2"], ["dense_bc"])
    add_op(net, "BatchBucketize", ["dense", "bucket_idx", "bucket_bounds", "bucket_lens"], ["buckets"])
    add_op(net, "Cast", ["buckets"], ["buckets_f"], to=1)
    add_op(net, "BatchBucketOneHot", ["dense", "onehot_lens", "onehot_bounds"], ["onehot"])
    add_op(net, "FC", ["dense_bc", "dense_w", "dense_b"], ["dense_h"])
    add_op(net, "Relu", ["dense_h"], ["dense_h"])  # in place, as Caffe2 nets do
    add_op(net, "SparseLengthsSum", ["emb_user", "user_ids", "user_lengths"], ["user_emb"])
    add_op(net, "SparseLengthsSum", ["emb_item", "item_ids", "item_lengths"], ["item_emb"])
    add_op(net, "Concat", ["dense_h", "user_emb", "item_emb"], ["stacked", "stacked_info"], axis=1, add_axis=1)
    add_op(net, "BatchMatMul", ["stacked", "stacked"], ["inter"], trans_b=1)
    add_op(net, "Reshape", ["inter"], ["inter_flat", "inter_old_shape"], shape=[0, -1])
    add_op(net, "BatchGather", ["inter_flat", "pair_idx"], ["pairs"])
    feats = ["dense_h", "pairs"]
    if with_cbmmbg:
        add_op(net, "ConcatBatchMatMulBatchGatherOp", ["pair_idx2", "dense_h", "user_emb", "item_emb"], ["pairs2"])
        feats.append("pairs2")
    else:  # that op has no gradient: the fine-tuning variant repeats `pairs` instead
        feats.append("pairs")
    add_op(net, "Concat", feats + ["buckets_f", "onehot"], ["features"], axis=1)  # no split_info output
    add_op(net, "Dropout", ["features"], ["features_d"], ratio=0.3, is_test=1)  # no mask output
    add_op(net, "FC", ["features_d", "out_w", "out_b"], ["logit"])
    add_op(net, "Sigmoid", ["logit"], ["prob"])
    net.external_input.extend(list(params) + ["dense", "user_ids", "user_lengths", "item_ids", "item_lengths"])
    net.external_output.extend(["prob"])
    return net, init, params


def ranker_inputs(batch: int = B, seed: int = 3):
    r = np.random.default_rng(seed)
    dense = np.abs(r.standard_normal((batch, D))).astype(np.float32) * 2
    ul = r.integers(0, 4, batch).astype(np.int32)
    il = r.integers(1, 3, batch).astype(np.int32)
    uids = r.integers(0, 20, int(ul.sum())).astype(np.int64)
    iids = r.integers(0, 30, int(il.sum())).astype(np.int64)
    return tuple(t(v) for v in (dense, uids, ul, iids, il))


def ranker_reference(p: Dict[str, torch.Tensor], dense, uids, ul, iids, il, with_cbmmbg: bool = True):
    """The same computation written directly with torch.ops.caffe2ops."""
    dense_bc = ops.batch_box_cox(dense, p["box_l1"], p["box_l2"])
    buckets = ops.batch_bucketize(dense, p["bucket_idx"], p["bucket_bounds"], p["bucket_lens"]).float()
    onehot = ops.batch_bucket_one_hot(dense, p["onehot_lens"], p["onehot_bounds"])
    h = torch.relu(dense_bc @ p["dense_w"].t() + p["dense_b"])
    user = torch.stack([p["emb_user"][uids[s:e]].sum(0) for s, e in _spans(ul)])
    item = torch.stack([p["emb_item"][iids[s:e]].sum(0) for s, e in _spans(il)])
    stacked, _ = ops.concat([h, user, item], 1, None, True)
    inter = ops.batch_mat_mul(stacked, stacked, False, True)
    pairs = ops.batch_gather(inter.reshape(inter.shape[0], -1), p["pair_idx"])
    feats = [h, pairs]
    feats.append(ops.concat_batch_mat_mul_batch_gather(p["pair_idx2"], [h, user, item]) if with_cbmmbg else pairs)
    features, _ = ops.concat(feats + [buckets, onehot], 1)
    features, _ = ops.dropout(features, 0.3, True)
    return torch.sigmoid(features @ p["out_w"].t() + p["out_b"])


def _spans(lengths: torch.Tensor):
    ends = torch.cumsum(lengths.long(), 0).tolist()
    return [(e - int(n), e) for e, n in zip(ends, lengths.tolist())]


@pytest.mark.parametrize("fmt", ["message", "binary", "text"])
def test_dper_ranker_matches_direct_op_calls(fmt: str) -> None:
    net, init, params = ranker_nets()
    model = c2.load_net(as_format(net, fmt), as_format(init, fmt))
    inputs = ranker_inputs()
    expected = ranker_reference({k: t(v) for k, v in params.items()}, *inputs)
    got = model(*inputs)
    assert got.shape == (B, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the forward signature is the predict net's non-init external inputs, in order
    assert [n.name for n in model.graph.nodes if n.op == "placeholder"] == [
        "dense", "user_ids", "user_lengths", "item_ids", "item_lengths"
    ]
    # node names follow the blob names
    names = {n.name for n in model.graph.nodes}
    assert {"dense_bc", "user_emb", "inter_flat", "pairs", "logit", "prob"} <= names
    # floating init blobs read only by ops Caffe2 never differentiates are buffers
    assert set(dict(model.named_parameters())) == {"emb_user", "emb_item", "dense_w", "dense_b", "out_w", "out_b"}


def test_ranker_export_compile_script_and_fine_tune(tmp_path: Path) -> None:
    net, init, params = ranker_nets(with_cbmmbg=False)
    model = c2.load_net(net, init)
    inputs = ranker_inputs()
    expected = model(*inputs).detach()

    batch = torch.export.Dim("batch", min=2)
    n_user, n_item = torch.export.Dim("n_user", min=2), torch.export.Dim("n_item", min=2)
    dyn = ({0: batch}, {0: n_user}, {0: batch}, {0: n_item}, {0: batch})
    ep = torch.export.export(model, inputs, dynamic_shapes=dyn)
    torch.export.save(ep, tmp_path / "ranker.pt2")
    loaded = torch.export.load(tmp_path / "ranker.pt2").module()
    torch.testing.assert_close(loaded(*inputs), expected)
    bigger = ranker_inputs(batch=7, seed=11)
    torch.testing.assert_close(loaded(*bigger), model(*bigger).detach(), rtol=1e-5, atol=1e-6)

    compiled = torch.compile(model, backend="aot_eager", dynamic=False)
    torch.testing.assert_close(compiled(*inputs), expected)

    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(*inputs), expected)
    scripted.save(str(tmp_path / "ranker_scripted.pt"))
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "ranker_scripted.pt"))(*inputs), expected)

    # fine-tuning: gradients reach the init-net parameters and SGD lowers the loss
    labels = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(model(*inputs), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.emb_user.grad is not None and model.dense_w.grad.abs().sum() > 0
    assert losses[-1] < 0.8 * losses[0], losses


def test_compile_with_inductor_on_a_dense_net() -> None:
    init = c2.NetDef(name="init")
    fill(init, "w", f32(3, 4))
    fill(init, "b", f32(3))
    net = c2.NetDef(name="mlp")
    add_op(net, "FC", ["x", "w", "b"], ["h"])
    add_op(net, "Relu", ["h"], ["h"])
    add_op(net, "Softmax", ["h"], ["p"])
    net.external_input.extend(["x", "w", "b"])
    net.external_output.append("p")
    model = c2.load_net(net, init)
    x = torch.randn(5, 4)
    torch.testing.assert_close(torch.compile(model)(x), model(x))


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unsupported_types_are_listed_with_counts_before_building() -> None:
    init = c2.NetDef(name="init")
    add_op(init, "WeirdFill", [], ["w"])
    net = c2.NetDef(name="vision")
    add_op(net, "WeirdConv", ["x", "w"], ["c1"], kernel=3)
    add_op(net, "Relu", ["c1"], ["c1"])
    add_op(net, "WeirdPool", ["c1"], ["p1"], kernel=2)
    add_op(net, "WeirdConv", ["p1", "w"], ["c2"], kernel=3)
    net.external_input.extend(["x", "w"])
    net.external_output.append("c2")
    with pytest.raises(c2.UnsupportedOperatorError) as info:
        c2.load_net(net, init)
    msg = str(info.value)
    assert "3 operator type(s)" in msg
    assert "WeirdConv: 2 (predict net)" in msg and "WeirdPool: 1 (predict net)" in msg and "WeirdFill: 1 (init net)" in msg
    assert "register_converter" in msg and "Relu" not in msg


def test_unknown_argument_names_op_argument_and_value() -> None:
    net = c2.NetDef(name="n")
    add_op(net, "FC", ["x", "w", "b"], ["y"], axis=1, use_bias_trick=3)
    net.external_input.extend(["x", "w", "b"])
    with pytest.raises(c2.UnknownArgumentError, match=r"FC .*'use_bias_trick' = i: 3"):
        c2.load_net(net, strict=True)
    # Without strict, Caffe2's rule: an argument the operator does not read is ignored, and recorded.
    model = c2.load_net(net)
    assert model.caffe2_ignored_arguments == {"FC.use_bias_trick": 1}


def test_argument_of_the_wrong_type_is_an_error() -> None:
    net = c2.NetDef(name="n")
    add_op(net, "Softmax", ["x"], ["y"], axis="one")
    net.external_input.append("x")
    with pytest.raises(c2.InvalidArgumentError, match="axis"):
        c2.load_net(net)


@pytest.mark.parametrize("op_type, flag", [("FCGradient", False), ("DropoutGrad", False), ("Relu", True), ("SGD", False)])
def test_gradient_and_training_ops_are_refused(op_type: str, flag: bool) -> None:
    net = c2.NetDef(name="train")
    add_op(net, "Relu", ["x"], ["y"])
    op = add_op(net, op_type, ["y"], ["z"])
    op.is_gradient_op = flag
    net.external_input.append("x")
    with pytest.raises(c2.TrainingNetError, match="export the predict net"):
        c2.load_net(net)


def test_undeclared_blob_is_an_input_and_a_missing_one_an_error() -> None:
    net = c2.NetDef(name="n")
    add_op(net, "Relu", ["x"], ["h"])
    add_op(net, "Add", ["h", "nowhere"], ["y"])
    net.external_input.append("x")
    # Read but provided by nothing: an input the writer did not declare, after the listed ones.
    model = c2.load_net(net)
    assert model.caffe2_inputs == ["x", "nowhere"]
    torch.testing.assert_close(model(-torch.ones(2), torch.ones(2)), torch.ones(2))
    with pytest.raises(c2.NetImportError, match="nowhere"):
        c2.load_net(net, inputs=["x"])


def test_user_registered_converter() -> None:
    @c2.register_converter("MyLeakyRelu", args={"alpha": 0.01}, inputs=(1, 1), outputs=(1, 1))
    def leaky(ctx, op):
        return ctx.call(torch.nn.functional.leaky_relu, op.inputs[0], op.args["alpha"])

    try:
        (y,) = run_single_op("MyLeakyRelu", {"x": X234}, ["y"], alpha=0.2)
        torch.testing.assert_close(y, torch.nn.functional.leaky_relu(t(X234), 0.2))
        with pytest.raises(ValueError, match="already registered"):
            c2.register_converter("MyLeakyRelu")(leaky)
    finally:
        c2.unregister_converter("MyLeakyRelu")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    # the torch_caffe2ops this process imported (editable checkout or installed wheel)
    env = dict(os.environ, PYTHONPATH=str(Path(torch_caffe2ops.__file__).resolve().parent.parent))
    return subprocess.run(
        [sys.executable, "-m", "torch_caffe2ops.caffe2", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_inspect_and_convert(tmp_path: Path) -> None:
    net, init, params = ranker_nets(with_cbmmbg=False)
    add_op(net, "NoSuchOp", ["prob"], ["unused"])  # unsupported: inspect reports it and fails, as load_net
    (tmp_path / "predict_net.pbtxt").write_text(c2.to_text(net))
    (tmp_path / "init_net.pb").write_bytes(init.SerializeToString())
    res = _cli("inspect", str(tmp_path / "predict_net.pbtxt"), str(tmp_path / "init_net.pb"))
    assert res.returncode == 1, res.stderr
    assert "SparseLengthsSum" in res.stdout and "NoSuchOp" in res.stdout and "NOT SUPPORTED" in res.stdout
    assert "the conversion fails" in res.stdout and "1 operator type(s) in this net have no converter" in res.stdout

    del net.op[-1]
    (tmp_path / "predict_net.pbtxt").write_text(c2.to_text(net))
    res = _cli("inspect", str(tmp_path / "predict_net.pbtxt"), str(tmp_path / "init_net.pb"))
    assert res.returncode == 0, res.stderr
    assert "dense" in res.stdout and "emb_user" in res.stdout and "[20, 4]" in res.stdout
    assert "the conversion succeeds" in res.stdout
    (tmp_path / "predict_net.pb").write_bytes(net.SerializeToString())
    torch.save(ranker_inputs(), tmp_path / "inputs.pt")
    out = tmp_path / "model.pt2"
    res = _cli("convert", str(tmp_path / "predict_net.pb"), str(tmp_path / "init_net.pb"), "-o", str(out),
               "--example-inputs", str(tmp_path / "inputs.pt"), "--dynamic-batch")
    assert res.returncode == 0, res.stderr
    program = torch.export.load(out).module()
    model = c2.load_net(net, init)
    bigger = ranker_inputs(batch=6, seed=5)
    torch.testing.assert_close(program(*bigger), model(*bigger).detach(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# published nets (fixtures; each file names its source)
# --------------------------------------------------------------------------------------------


def test_published_fc_net_from_glow_fixtures() -> None:
    model = c2.load_net(FIXTURES / "glow_fc_predict_net.pbtxt", FIXTURES / "glow_fc_init_net.pbtxt")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    w = np.arange(1, 13, dtype=np.float32).reshape(4, 3)
    b = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    np.testing.assert_allclose(model(t(x)).detach().numpy(), x @ w.T + b, rtol=1e-6)


def test_published_batch_box_cox_net_from_glow_fixtures() -> None:
    model = c2.load_net(FIXTURES / "glow_batch_box_cox_predict_net.pbtxt")
    data = np.abs(f32(4, 3)) + 0.5
    l1, l2 = np.array([0.0, 0.5, 1.0], np.float32), np.array([0.1, 0.0, 2.0], np.float32)
    torch.testing.assert_close(model(t(data), t(l1), t(l2)), ops.batch_box_cox(t(data), t(l1), t(l2)))


def test_runtime_error_names_the_caffe2_operator() -> None:
    net = c2.NetDef(name="n")
    add_op(net, "Relu", ["x"], ["x_relu"])
    add_op(net, "FC", ["x_relu", "w", "b"], ["fc1"])
    net.op[-1].name = "hidden"
    net.external_input.extend(["x", "w", "b"])
    net.external_output.append("fc1")
    model = c2.load_net(net)
    assert model(torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4)).shape == (2, 4)
    with pytest.raises(RuntimeError, match=r"^FC \(predict net operator #1 'hidden', outputs \['fc1'\]\): .*mat1"):
        model(torch.ones(2, 3), torch.ones(4, 5), torch.zeros(4))


def test_relu_and_sum_in_place_only_on_fresh_unshared_values() -> None:
    net = c2.NetDef(name="n")
    add_op(net, "Relu", ["x"], ["x"])  # reads the caller's tensor: must not write into it
    add_op(net, "FC", ["x", "w", "b"], ["h"])
    add_op(net, "Relu", ["h"], ["h"])  # fresh FC output read once: in place, as Caffe2 did
    add_op(net, "FC", ["h", "w2", "b2"], ["g"])
    add_op(net, "Relu", ["g"], ["g_relu"])  # g is read again below: not in place
    add_op(net, "FC", ["h", "w2", "b2"], ["k"])
    add_op(net, "Sum", ["k", "g"], ["k"])  # fresh k read once: accumulated in place
    add_op(net, "Sum", ["g_relu", "k"], ["out"])
    net.external_input.extend(["x", "w", "b", "w2", "b2"])
    net.external_output.append("out")
    model = c2.load_net(net)
    targets = [n.target for n in model.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.relu_) == 1 and targets.count(torch.relu) == 2
    x = torch.randn(3, 4)
    w, b, w2, b2 = torch.randn(5, 4), torch.randn(5), torch.randn(5, 5), torch.randn(5)
    before = x.clone()
    out = model(x, w, b, w2, b2)
    torch.testing.assert_close(x, before)  # the input is untouched
    h = torch.relu(torch.relu(x) @ w.t() + b)
    g = h @ w2.t() + b2
    torch.testing.assert_close(out, torch.relu(g) + (h @ w2.t() + b2 + g))
