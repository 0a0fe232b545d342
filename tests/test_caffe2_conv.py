"""torch_caffe2ops.caffe2: convolution and pooling operators (Conv*, ConvRelu, ConvFusion,
ConvTranspose, MaxPool*, AveragePool*, LpPool).

References are NumPy loops written from Caffe2's sources: conv_pool_op_base.h (argument
spellings, ComputeSizeAndPad for every legacy_pad mode), conv_op_impl.h (filter layouts),
pool_op_util.cc (window clipping, AveragePool's divisor), lp_pool_op.cc and
conv_transpose_unpool_op_base.h / conv_transpose_op_impl.h (output size, col2im placement).
They share no code with the converters. float32 tolerances: rtol=1e-5, atol=1e-5 for outputs of
scale about 1 (sums of a few dozen products of standard-normal numbers: atol 1e-4).
"""
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, fill  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"
RTOL, ATOL = 1e-5, 1e-4


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


# --------------------------------------------------------------------------------------------
# NumPy references (Caffe2's formulas)
# --------------------------------------------------------------------------------------------


def ref_size_and_pad(in_size: int, k: int, s: int, d: int, head: int, tail: int, legacy: int) -> Tuple[int, int, int]:
    """ComputeSizeAndPad: (out, head, tail)."""
    dk = d * (k - 1) + 1
    if legacy == 1:  # VALID
        return int((in_size - dk) / s) + 1, 0, 0
    if legacy == 2:  # SAME
        target = (in_size + s - 1) // s
        needed = (target - 1) * s + k - in_size
        h = int(needed / 2)  # C++ division
        return int((in_size + needed - dk) / s) + 1, h, needed - h
    if legacy == 3:  # CAFFE_LEGACY_POOLING
        out = int(math.ceil(np.float32(in_size + 2 * head - k) / np.float32(s) + 1))
        if head > 0 and (out - 1) * s >= in_size + head:
            out -= 1
        std = int(np.float32(in_size + 2 * head - k) / np.float32(s) + 1)
        return out, head, head + s * (out - std)
    assert in_size + head + tail >= dk
    return int(np.float32(in_size + head + tail - dk) / np.float32(s) + 1), head, tail


def ref_conv(x, w, b, stride, dil, head, tail, group, legacy=0, global_pooling=False):
    """Caffe2's Conv, NCHW, any spatial rank: im2col reads zeros outside the input."""
    n_sp = x.ndim - 2
    N, C = x.shape[:2]
    M = w.shape[0]
    ks = list(w.shape[2:])
    if global_pooling:
        stride, dil, head, tail, legacy = [1] * n_sp, [1] * n_sp, [0] * n_sp, [0] * n_sp, 0
    outs, heads = [], []
    for i in range(n_sp):
        o, h, _ = ref_size_and_pad(x.shape[2 + i], ks[i], stride[i], dil[i], head[i], tail[i], legacy)
        outs.append(o)
        heads.append(h)
    big = max(ks) * max(dil) + max(stride) * 4 + 8
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(big, big)] * n_sp)
    y = np.zeros([N, M] + outs)
    cg, mg = C // group, M // group
    for m in range(M):
        g = m // mg
        for pos in np.ndindex(*outs):
            acc = np.zeros(N)
            for kpos in np.ndindex(*ks):
                idx = tuple(big + pos[i] * stride[i] - heads[i] + kpos[i] * dil[i] for i in range(n_sp))
                acc += (xp[(slice(None), slice(g * cg, (g + 1) * cg)) + idx] * w[(m, slice(None)) + kpos]).sum(1)
            y[(slice(None), m) + pos] = acc + (b[m] if b is not None else 0.0)
    return y


def ref_pool(x, kind, ks, stride, head, tail, legacy=0, count_include_pad=False, p=2.0, global_pooling=False):
    """Caffe2's PoolOp (pool_op_util.cc), NCHW: windows clipped to the input; MaxPool starts from
    lowest(); AveragePool divides by the clipped window (or by the whole kernel)."""
    n_sp = x.ndim - 2
    if global_pooling:
        ks, stride, head, tail, legacy = list(x.shape[2:]), [1] * n_sp, [0] * n_sp, [0] * n_sp, 0
    outs, heads = [], []
    for i in range(n_sp):
        o, h, _ = ref_size_and_pad(x.shape[2 + i], ks[i], stride[i], 1, head[i], tail[i], legacy)
        outs.append(o)
        heads.append(h)
    y = np.zeros(list(x.shape[:2]) + outs)
    for pos in np.ndindex(*outs):
        sl, count = [], 1
        for i in range(n_sp):
            start = pos[i] * stride[i] - heads[i]
            end = min(start + ks[i], x.shape[2 + i])
            start = max(start, 0)
            sl.append(slice(start, max(start, end)))
            count *= end - start  # negative for a window wholly in the tail pad, as in Caffe2
        win = x[(slice(None), slice(None)) + tuple(sl)].astype(np.float64).reshape(x.shape[0], x.shape[1], -1)
        if kind == "max":
            lowest = np.finfo(np.float32).min
            v = np.maximum(win.max(-1), lowest) if win.shape[-1] else np.full(x.shape[:2], lowest)
        elif kind == "avg":
            v = win.sum(-1) / (np.prod(ks) if count_include_pad else count)
        else:
            v = (np.abs(win) ** p).sum(-1) ** (1.0 / p)
        y[(slice(None), slice(None)) + pos] = v
    return y


def ref_conv_transpose(x, w, b, stride, head, tail, adj, group):
    """Caffe2's ConvTranspose, NCHW 2-D: col2im places X[i] * W[k] at i*s + k - head."""
    N, Cin, H, W = x.shape
    kh, kw = w.shape[2:]
    cout_g = w.shape[1]
    cin_g = Cin // group
    oh = (H - 1) * stride[0] + kh + adj[0] - head[0] - tail[0]
    ow = (W - 1) * stride[1] + kw + adj[1] - head[1] - tail[1]
    y = np.zeros((N, cout_g * group, oh, ow))
    for c in range(Cin):
        g = c // cin_g
        for i in range(H):
            for j in range(W):
                for a in range(kh):
                    for bb in range(kw):
                        r, q = i * stride[0] + a - head[0], j * stride[1] + bb - head[1]
                        if 0 <= r < oh and 0 <= q < ow:
                            y[:, g * cout_g:(g + 1) * cout_g, r, q] += x[:, c, i, j][:, None] * w[c, :, a, bb][None]
    if b is not None:
        y += b[None, :, None, None]
    return y


def nchw_to_nhwc(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1)


def nhwc_to_nchw(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, -1, 1)


# --------------------------------------------------------------------------------------------
# building and running one-operator nets
# --------------------------------------------------------------------------------------------


def run_op(op_type: str, x: np.ndarray, params: Dict[str, np.ndarray] = None, extra_inputs: Sequence[str] = (),
           extra_values: Sequence[np.ndarray] = (), strict: bool = True, **args: Any) -> torch.Tensor:
    """One operator reading X, then the init-net parameters, then extra fed inputs."""
    params = params or {}
    net, init = c2.NetDef(name="one"), c2.NetDef(name="one_init")
    for name, value in params.items():
        fill(init, name, value)
    add_op(net, op_type, ["X", *params, *extra_inputs], ["Y"], **args)
    net.external_input.extend(["X", *params, *extra_inputs])
    net.external_output.append("Y")
    model = c2.load_net(net, init if params else None, strict=strict)
    return model(t(x), *[t(v) for v in extra_values])


def check(actual: torch.Tensor, expected: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> None:
    actual = actual.detach().numpy()
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# argument spellings
# --------------------------------------------------------------------------------------------

# (arguments, kernel, stride, dilation, head pads, tail pads) -- 2-D
SPELLINGS = [
    (dict(kernel=3), [3, 3], [1, 1], [1, 1], [0, 0], [0, 0]),
    (dict(kernels=[3, 2]), [3, 2], [1, 1], [1, 1], [0, 0], [0, 0]),
    (dict(kernel_h=2, kernel_w=3), [2, 3], [1, 1], [1, 1], [0, 0], [0, 0]),
    (dict(kernel=3, stride=2, pad=1), [3, 3], [2, 2], [1, 1], [1, 1], [1, 1]),
    (dict(kernel=3, strides=[2, 1], pads=[1, 0, 1, 0]), [3, 3], [2, 1], [1, 1], [1, 0], [1, 0]),
    (dict(kernel=3, stride_h=1, stride_w=2, pad_t=1, pad_l=2, pad_b=0, pad_r=1), [3, 3], [1, 2], [1, 1], [1, 2],
     [0, 1]),
    (dict(kernel=2, dilation=2, pad=1), [2, 2], [1, 1], [2, 2], [1, 1], [1, 1]),
    (dict(kernel=2, dilations=[1, 2]), [2, 2], [1, 1], [1, 2], [0, 0], [0, 0]),
    (dict(kernel=2, dilation_h=2, dilation_w=1, pads=[0, 1, 2, 1]), [2, 2], [1, 1], [2, 1], [0, 1], [2, 1]),
    # Only complete _h/_w and pad_* sets count: a lone kernel_h or pad_t is ignored, as in Caffe2.
    (dict(kernel=3, stride_h=2, pad_t=1), [3, 3], [1, 1], [1, 1], [0, 0], [0, 0]),
    # `kernel` resizes an existing `kernels` list to 2 entries without overwriting them.
    (dict(kernels=[2], kernel=3), [2, 3], [1, 1], [1, 1], [0, 0], [0, 0]),
]


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: ",".join(s[0]) if isinstance(s, tuple) else str(s))
def test_conv_argument_spellings(spelling, order: str) -> None:
    args, k, s, d, head, tail = spelling
    rng = np.random.default_rng(0)
    x = f32(rng, 2, 3, 7, 8)
    w = f32(rng, 4, 3, *k)
    b = f32(rng, 4)
    expected = ref_conv(x, w, b, s, d, head, tail, 1)
    if order == "NHWC":
        y = run_op("Conv", nchw_to_nhwc(x), {"w": np.ascontiguousarray(np.moveaxis(w, 1, -1)), "b": b},
                   order="NHWC", **args)
        check(y, nchw_to_nhwc(expected))
    else:
        check(run_op("Conv", x, {"w": w, "b": b}, **args), expected)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("spelling", [s for s in SPELLINGS if s[3] == [1, 1] and all(
    h < k and tt < k for h, tt, k in zip(s[4], s[5], s[1]))], ids=lambda s: ",".join(s[0]))
def test_pool_argument_spellings(spelling, kind: str, order: str) -> None:
    args, k, s, _, head, tail = spelling
    x = f32(np.random.default_rng(1), 2, 3, 7, 8)
    expected = ref_pool(x, "max" if kind == "MaxPool" else "avg", k, s, head, tail)
    if order == "NHWC":
        check(run_op(kind, nchw_to_nhwc(x), order="NHWC", **args), nchw_to_nhwc(expected), atol=1e-5)
    else:
        check(run_op(kind, x, **args), expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Conv: groups, ranks, bias, orders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("group,cin,cout", [(1, 4, 6), (2, 4, 6), (4, 4, 4), (4, 4, 8)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_groups_and_depthwise(group: int, cin: int, cout: int, bias: bool, order: str) -> None:
    rng = np.random.default_rng(group * 10 + cout)
    x = f32(rng, 2, cin, 6, 5)
    w = f32(rng, cout, cin // group, 3, 3)
    b = f32(rng, cout) if bias else None
    expected = ref_conv(x, w, b, [1, 2], [1, 1], [1, 1], [1, 1], group)
    params = {"w": w if order == "NCHW" else np.ascontiguousarray(np.moveaxis(w, 1, -1))}
    if bias:
        params["b"] = b
    xin = x if order == "NCHW" else nchw_to_nhwc(x)
    y = run_op("Conv", xin, params, kernel=3, stride_h=1, stride_w=2, pad=1, group=group, order=order)
    check(y, expected if order == "NCHW" else nchw_to_nhwc(expected))


@pytest.mark.parametrize("op_type", ["Conv", "Conv1D", "Conv3D"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_conv_1d_and_3d(op_type: str, order: str) -> None:
    rng = np.random.default_rng(5)
    if op_type == "Conv1D":
        x, k, s, d, pads = f32(rng, 2, 4, 9), [3], [2], [2], [1, 2]
    else:
        x, k, s, d, pads = f32(rng, 1, 4, 5, 6, 4), [2, 3, 2], [1, 2, 1], [1, 1, 2], [1, 0, 1, 0, 1, 1]
    n = len(k)
    w = f32(rng, 6, 2, *k)
    b = f32(rng, 6)
    expected = ref_conv(x, w, b, s, d, pads[:n], pads[n:], 2)
    if order == "NHWC":
        y = run_op(op_type, nchw_to_nhwc(x), {"w": np.ascontiguousarray(np.moveaxis(w, 1, -1)), "b": b},
                   kernels=k, strides=s, dilations=d, pads=pads, group=2, order="NHWC")
        check(y, nchw_to_nhwc(expected))
    else:
        y = run_op(op_type, x, {"w": w, "b": b}, kernels=k, strides=s, dilations=d, pads=pads, group=2)
        check(y, expected)


def test_nchw_and_nhwc_agree_after_transposes() -> None:
    rng = np.random.default_rng(9)
    x = f32(rng, 3, 4, 8, 8)
    w = f32(rng, 6, 2, 3, 3)
    b = f32(rng, 6)
    a = run_op("Conv", x, {"w": w, "b": b}, kernel=3, stride=2, pads=[1, 0, 2, 1], group=2)
    c = run_op("Conv", nchw_to_nhwc(x), {"w": np.ascontiguousarray(np.moveaxis(w, 1, -1)), "b": b},
               kernel=3, stride=2, pads=[1, 0, 2, 1], group=2, order="NHWC")
    torch.testing.assert_close(c.permute(0, 3, 1, 2), a, rtol=1e-5, atol=1e-5)
    for kind in ("MaxPool", "AveragePool"):
        a = run_op(kind, x, kernel=3, stride=2, pads=[1, 0, 2, 1])
        c = run_op(kind, nchw_to_nhwc(x), kernel=3, stride=2, pads=[1, 0, 2, 1], order="NHWC")
        torch.testing.assert_close(c.permute(0, 3, 1, 2), a, rtol=1e-6, atol=1e-6)


def test_common_conv_is_one_aten_call_without_permutes() -> None:
    net, init = c2.NetDef(name="n"), c2.NetDef(name="i")
    fill(init, "w", np.ones((8, 3, 3, 3), np.float32))
    add_op(net, "Conv", ["data", "w"], ["conv1"], kernel=3, stride=2, pad=1, order="NCHW",
           exhaustive_search=1, ws_nbytes_limit=1 << 20, shared_buffer=1)
    add_op(net, "MaxPool", ["conv1"], ["pool1"], kernel=3, stride=2, pad=1)
    add_op(net, "AveragePool", ["pool1"], ["pool2"], kernel=0, global_pooling=1)
    net.external_input.extend(["data", "w"])
    net.external_output.append("pool2")
    model = c2.load_net(net, init, strict=True)
    calls = [n for n in model.graph.nodes if n.op in ("call_function", "call_method")]
    assert [n.target for n in calls] == [torch.conv2d, torch.max_pool2d, torch.mean]
    assert model(torch.ones(2, 3, 16, 16)).shape == (2, 8, 1, 1)


def test_bad_arguments_are_reported() -> None:
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = {"w": np.zeros((2, 2, 3, 3), np.float32)}
    cases = [
        ("Conv", w, dict(kernel=3, legacy_pad=1, pad=1), "computes the padding itself"),
        ("Conv", w, dict(kernel=3, legacy_pad=2, pads=[1, 1, 1, 1]), "computes the padding itself"),
        ("Conv", w, dict(kernel=3, legacy_pad=7), "legacy_pad"),
        ("Conv", w, dict(kernel=3, strides=[1, 1, 1]), "strides"),
        ("Conv", w, dict(kernel=3, pads=[1, 1]), "pads"),
        ("Conv", w, dict(kernel=3, order="CHWN"), "order"),
        ("Conv", w, dict(), "kernel"),
        ("Conv", w, dict(kernel=3, legacy_pad=2, dilation=2), "dilation"),
        ("MaxPool", {}, dict(kernel=2, pad=2), "smaller than the kernel"),
        ("MaxPool", {}, dict(kernel=2, dilation=2), "dilation"),
        ("AveragePool", {}, dict(kernel=0, global_pooling=1, stride=2), "global_pooling"),
        ("ConvTranspose", w, dict(kernel=3, legacy_pad=3), "CAFFE_LEGACY_POOLING"),
        ("ConvTranspose", w, dict(kernel=3, stride=1, adj=2), "adjs"),
        ("ConvFusion", w, dict(kernel=3), "fusion_type"),
    ]
    for op_type, params, args, needle in cases:
        with pytest.raises(c2.NetImportError, match=needle) as info:
            run_op(op_type, x, params, **args)
        assert op_type in str(info.value)


# --------------------------------------------------------------------------------------------
# legacy_pad
# --------------------------------------------------------------------------------------------

# (legacy_pad, in, kernel, stride, pad) -> hand-computed (out, head, tail) per Caffe2's rules
LEGACY_SIZES = [
    (0, 7, 3, 2, 1, (4, 1, 1)),
    (1, 7, 3, 2, 0, (3, 0, 0)),
    (1, 8, 3, 3, 0, (2, 0, 0)),
    (2, 7, 3, 2, 0, (4, 1, 1)),   # target 4, 2 pads needed
    (2, 8, 3, 2, 0, (4, 0, 1)),   # 1 pad needed: it goes to the tail
    (2, 8, 4, 2, 0, (4, 1, 1)),
    (2, 5, 1, 2, 0, (3, 0, 0)),   # none needed
    (3, 13, 3, 2, 0, (6, 0, 0)),  # squeezenet's pools: (13-3)/2 is exact
    (3, 14, 3, 2, 0, (7, 0, 2)),  # ceil(5.5)+1 = 7 windows, 6 without ceil: tail 0 + 2*1
    (3, 6, 3, 2, 1, (4, 1, 3)),   # ceil(2.5)+1 = 4; the last window starts at 5 < 6+1: kept
    (3, 5, 2, 2, 1, (3, 1, 1)),   # ceil(2.5)+1 = 4, but (4-1)*2 >= 5+1: dropped
    (3, 7, 2, 2, 1, (4, 1, 1)),   # ceil(3.5)+1 = 5, (5-1)*2 >= 8: dropped; 4 = int(4.5)
    (3, 5, 1, 3, 0, (3, 0, 3)),   # no head pad: the last window, wholly in the tail, is kept
]


def test_legacy_size_table_is_caffe2s() -> None:
    for legacy, n, k, s, p, expected in LEGACY_SIZES:
        assert ref_size_and_pad(n, k, s, 1, p, p, legacy) == expected, (legacy, n, k, s, p)


@pytest.mark.parametrize("case", LEGACY_SIZES, ids=lambda c: f"legacy{c[0]}-in{c[1]}-k{c[2]}-s{c[3]}-p{c[4]}")
@pytest.mark.parametrize("op_type", ["Conv", "MaxPool", "AveragePool"])
def test_legacy_pad_output_sizes_and_values(case, op_type: str) -> None:
    legacy, n, k, s, p, _ = case
    out, head, tail = ref_size_and_pad(n, k, s, 1, p, p, legacy)
    rng = np.random.default_rng(n * 7 + k)
    x = f32(rng, 2, 3, n, n + 1)
    args = dict(kernel=k, stride=s, legacy_pad=legacy)
    if p:
        args["pad"] = p
    if op_type == "Conv":
        w, b = f32(rng, 2, 3, k, k), f32(rng, 2)
        y = run_op("Conv", x, {"w": w, "b": b}, **args)
        expected = ref_conv(x, w, b, [s, s], [1, 1], [p, p], [p, p], 1, legacy)
    else:
        if p >= k:
            pytest.skip("pooling needs pads below the kernel")
        y = run_op(op_type, x, **args)
        expected = ref_pool(x, "max" if op_type == "MaxPool" else "avg", [k, k], [s, s], [p, p], [p, p], legacy)
    assert y.shape[2] == out
    check(y, expected, atol=1e-4 if op_type == "Conv" else 1e-5)


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("legacy", [2, 3])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_average_pool_divisor_under_legacy_padding(count_include_pad: bool, legacy: int, order: str) -> None:
    x = f32(np.random.default_rng(3), 1, 2, 7, 6)
    args = dict(kernel=3, stride=2, legacy_pad=legacy, count_include_pad=int(count_include_pad))
    if legacy == 3:
        args["pad"] = 1
    p = 1 if legacy == 3 else 0
    expected = ref_pool(x, "avg", [3, 3], [2, 2], [p, p], [p, p], legacy, count_include_pad)
    if order == "NHWC":
        check(run_op("AveragePool", nchw_to_nhwc(x), order="NHWC", **args), nchw_to_nhwc(expected), atol=1e-5)
    else:
        check(run_op("AveragePool", x, **args), expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count_include_pad", [None, 0, 1])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 0, 1, 1], [2, 1, 0, 2], [0, 1, 2, 0]])
def test_average_pool_divisor_with_uneven_pads(count_include_pad: Optional[int], pads: List[int]) -> None:
    x = f32(np.random.default_rng(4), 2, 3, 6, 7)
    args = dict(kernel=3, stride=2, pads=pads)
    if count_include_pad is not None:
        args["count_include_pad"] = count_include_pad
    expected = ref_pool(x, "avg", [3, 3], [2, 2], pads[:2], pads[2:], 0, bool(count_include_pad))
    check(run_op("AveragePool", x, **args), expected, atol=1e-5)


@pytest.mark.parametrize("pads", [[0, 0, 1, 1], [2, 1, 0, 2]])
def test_max_pool_uneven_pads_never_pick_the_pad(pads: List[int]) -> None:
    x = -np.abs(f32(np.random.default_rng(6), 2, 3, 6, 7)) - 1.0
    expected = ref_pool(x, "max", [3, 3], [2, 2], pads[:2], pads[2:])
    y = run_op("MaxPool", x, kernel=3, stride=2, pads=pads)
    assert (y < 0).all()
    check(y, expected, atol=1e-6)


@pytest.mark.parametrize("suffix,shape,k", [("1D", (2, 3, 9), [3]), ("2D", (2, 3, 6, 7), [3, 2]),
                                              ("3D", (1, 2, 5, 6, 4), [2, 3, 2]), ("", (1, 2, 5, 6, 4), [3, 2, 2])])
@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_pool_ranks(suffix: str, shape, k: List[int], kind: str, order: str) -> None:
    x = f32(np.random.default_rng(len(shape)), *shape)
    n = len(k)
    s = [2] + [1] * (n - 1)
    pads = [1] + [0] * (n - 1) + [0] * (n - 1) + [1]
    expected = ref_pool(x, "max" if kind == "MaxPool" else "avg", k, s, pads[:n], pads[n:])
    xin = x if order == "NCHW" else nchw_to_nhwc(x)
    y = run_op(kind + suffix, xin, kernels=k, strides=s, pads=pads, order=order)
    check(y, expected if order == "NCHW" else nchw_to_nhwc(expected), atol=1e-5)


@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_global_pooling_with_kernel_zero(kind: str, order: str) -> None:
    x = f32(np.random.default_rng(8), 2, 3, 5, 4)
    ref_kind = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[kind]
    expected = ref_pool(x, ref_kind, [0, 0], [1, 1], [0, 0], [0, 0], global_pooling=True)
    xin = x if order == "NCHW" else nchw_to_nhwc(x)
    # densenet121 carries kernel: 0 next to global_pooling: 1
    y = run_op(kind, xin, kernel=0, global_pooling=1, order=order)
    check(y, expected if order == "NCHW" else nchw_to_nhwc(expected), atol=1e-5)


@pytest.mark.parametrize("p", [2.0, 3.0, 1.0])
@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 0, 1, 1]])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_lp_pool(p: float, pads: List[int], order: str) -> None:
    x = f32(np.random.default_rng(10), 2, 3, 6, 5)
    expected = ref_pool(x, "lp", [2, 2], [2, 1], pads[:2], pads[2:], p=p)
    xin = x if order == "NCHW" else nchw_to_nhwc(x)
    y = run_op("LpPool", xin, kernel=2, stride_h=2, stride_w=1, pads=pads, p=p, order=order)
    check(y, expected if order == "NCHW" else nchw_to_nhwc(expected), atol=1e-5)


# --------------------------------------------------------------------------------------------
# ConvTranspose, ConvRelu, ConvFusion
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,k,s,head,tail,adj", [
    (dict(kernel=3), [3, 3], [1, 1], [0, 0], [0, 0], [0, 0]),
    (dict(kernel=3, stride=2, pad=1, adj=1), [3, 3], [2, 2], [1, 1], [1, 1], [1, 1]),
    (dict(kernels=[3, 2], strides=[2, 3], pads=[1, 0, 0, 1], adjs=[1, 2]), [3, 2], [2, 3], [1, 0], [0, 1], [1, 2]),
    (dict(kernel_h=2, kernel_w=3, stride_h=2, stride_w=1, pad_t=1, pad_l=1, pad_b=1, pad_r=1, adj_h=2, adj_w=0),
     [2, 3], [2, 1], [1, 1], [1, 1], [2, 0]),
    (dict(kernel=3, stride=2, adj=2), [3, 3], [2, 2], [0, 0], [0, 0], [2, 2]),  # adj == stride
    (dict(kernel=3, stride=2, legacy_pad=1), [3, 3], [2, 2], [0, 0], [0, 0], [0, 0]),
    (dict(kernel=3, stride=2, legacy_pad=2, adj=1), [3, 3], [2, 2], [0, 0], [0, 0], [1, 1]),
], ids=lambda v: ",".join(v) if isinstance(v, dict) else None)
@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose(args, k, s, head, tail, adj, group: int, order: str, bias: bool) -> None:
    rng = np.random.default_rng(11)
    x = f32(rng, 2, 4, 3, 4)
    w = f32(rng, 4, 3, *k)  # [C_in, C_out / group, kH, kW]
    b = f32(rng, 3 * group) if bias else None
    expected = ref_conv_transpose(x, w, b, s, head, tail, adj, group)
    params = {"w": w if order == "NCHW" else np.ascontiguousarray(np.moveaxis(w, 1, -1))}
    if bias:
        params["b"] = b
    xin = x if order == "NCHW" else nchw_to_nhwc(x)
    y = run_op("ConvTranspose", xin, params, group=group, order=order, **args)
    check(y, expected if order == "NCHW" else nchw_to_nhwc(expected))


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_conv_relu(order: str) -> None:
    rng = np.random.default_rng(12)
    x, w, b = f32(rng, 2, 3, 5, 5), f32(rng, 4, 3, 3, 3), f32(rng, 4)
    expected = np.maximum(ref_conv(x, w, b, [1, 1], [1, 1], [1, 1], [1, 1], 1), 0)
    if order == "NHWC":
        y = run_op("ConvRelu", nchw_to_nhwc(x), {"w": np.ascontiguousarray(np.moveaxis(w, 1, -1)), "b": b},
                   kernel=3, pad=1, order="NHWC")
        check(y, nchw_to_nhwc(expected))
    else:
        check(run_op("ConvRelu", x, {"w": w, "b": b}, kernel=3, pad=1), expected)


@pytest.mark.parametrize("fusion_type", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_fusion(fusion_type: int, bias: bool) -> None:
    rng = np.random.default_rng(13)
    x, w, b, summand = f32(rng, 2, 3, 5, 5), f32(rng, 4, 3, 3, 3), f32(rng, 4), f32(rng, 2, 4, 5, 5)
    conv = ref_conv(x, w, b if bias else None, [1, 1], [1, 1], [1, 1], [1, 1], 1)
    params = {"w": w, **({"b": b} if bias else {})}
    if fusion_type == 1:
        y = run_op("ConvFusion", x, params, kernel=3, pad=1, fusion_type=1)
        check(y, np.maximum(conv, 0))
        return
    y = run_op("ConvFusion", x, params, ["S"], [summand], kernel=3, pad=1, fusion_type=fusion_type,
               training_mode=0, conv_algorithm=0)
    expected = conv + summand
    check(y, np.maximum(expected, 0) if fusion_type == 3 else expected)


# --------------------------------------------------------------------------------------------
# real nets (Glow's importer tests): Caffe2 semantics, not Glow's defaults
# --------------------------------------------------------------------------------------------


def glow(predict: str, init: Optional[str], inputs: List[str]):
    return c2.load_net(FIXTURES / predict, FIXTURES / init if init else None, inputs=inputs)


def test_glow_conv_nets() -> None:
    x = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3)
    y = glow("glow_predict_net.pbtxt", "glow_init_net.pbtxt", ["gpu_0/data_0"])(x)
    assert y.shape == (1, 1, 3, 3)
    assert y.flatten().tolist() == [6, 10, 6, 10, 18, 10, 6, 10, 6]
    y = glow("glow_convrelu_pred_net.pbtxt", "glow_convrelu_init_net.pbtxt", ["gpu_0/data_0"])(x)
    assert y.shape == (1, 1, 4, 4)
    assert y.flatten().tolist() == [2, 3, 5, 4, 5, 10, 14, 9, 11, 22, 26, 15, 8, 15, 17, 10]
    # Glow's NHWC conv net (a structure-only test there) stores a [1, 1, 2, 2] filter: read as
    # Caffe2's NHWC layout [M, kH, kW, C/G] it has 2 input channels and a 1x2 kernel, which does
    # not fit its 1-channel input and kernel 2. Caffe2 refused to run it; so does the import.
    model = glow("glow_conv_nhwc_predict_net.pbtxt", "glow_conv_nhwc_init_net.pbtxt", ["inputs"])
    with pytest.raises(RuntimeError, match="channels"):
        model(torch.zeros(1, 3, 3, 1))


def test_glow_conv_transpose_nets() -> None:
    x = torch.tensor([2.0, 3.0, 4.0, 5.0]).reshape(1, 1, 2, 2)
    y = glow("glow_convtranspose.pbtxt", "glow_convtranspose_init.pbtxt", ["gpu_0/data_0"])(x)
    assert y.flatten().tolist() == [5, 13, 18, 13, 19, 50, 64, 42, 37, 92, 106, 66, 33, 77, 86, 51]
    y = glow("glow_convtranspose_pads.pbtxt", "glow_convtranspose_init.pbtxt", ["gpu_0/data_0"])(x)
    assert y.shape == (1, 1, 2, 2) and y.flatten().tolist() == [50, 64, 92, 106]
    # Glow's NHWC variant (structure-only there) stores the same [1, 1, 3, 3] filter, which in
    # Caffe2's NHWC layout [C_in, kH, kW, C_out/G] is a 1x3 kernel with 3 output channels, not
    # the kernel 3 the net declares, and its 1-element bias does not fit: Caffe2 refused it.
    model = glow("glow_convtranspose_nhwc.pbtxt", "glow_convtranspose_nhwc_init.pbtxt", ["inputs"])
    with pytest.raises(RuntimeError, match="bias"):
        model(x.reshape(1, 2, 2, 1))


def test_glow_pool_nets() -> None:
    xs = f32(np.random.default_rng(14), 1, 3, 3, 1)
    # maxpool / avgpool without order: NCHW, i.e. C=3, H=3, W=1
    y = glow("glow_maxpool_predict_net.pbtxt", None, ["inputs"])(t(xs))
    check(y, ref_pool(xs, "max", [2, 2], [1, 1], [1, 1], [1, 1]), atol=1e-6)
    y = glow("glow_maxpool_nhwc_predict_net.pbtxt", None, ["inputs"])(t(xs))
    assert y.shape == (1, 4, 4, 1)
    check(y, nchw_to_nhwc(ref_pool(nhwc_to_nchw(xs), "max", [2, 2], [1, 1], [1, 1], [1, 1])), atol=1e-6)
    # Glow rejects legacy_pad 3; Caffe2 runs it in Caffe's ceil mode
    y = glow("glow_maxpool_legacy_padding_predict_net.pbtxt", None, ["inputs"])(t(xs))
    check(y, ref_pool(xs, "max", [2, 2], [1, 1], [1, 1], [1, 1], legacy=3), atol=1e-6)
    # Caffe2's AveragePool defaults to count_include_pad=0 (Glow's importer to 1)
    y = glow("glow_avgpool_predict_net.pbtxt", None, ["inputs"])(t(xs))
    check(y, ref_pool(xs, "avg", [2, 2], [1, 1], [1, 1], [1, 1], count_include_pad=False), atol=1e-6)
    y = glow("glow_avgpool_nhwc_predict_net.pbtxt", None, ["inputs"])(t(xs))
    check(y, nchw_to_nhwc(ref_pool(nhwc_to_nchw(xs), "avg", [2, 2], [1, 1], [1, 1], [1, 1])), atol=1e-6)


# --------------------------------------------------------------------------------------------
# script / export
# --------------------------------------------------------------------------------------------


def _mixed_net():
    """Every code path: ATen fast paths, uneven pads, legacy padding, NHWC, ConvTranspose."""
    rng = np.random.default_rng(15)
    net, init = c2.NetDef(name="mixed"), c2.NetDef(name="mixed_init")
    fill(init, "w1", f32(rng, 4, 3, 3, 3))
    fill(init, "b1", f32(rng, 4))
    fill(init, "w3", f32(rng, 4, 4, 3, 3))
    fill(init, "wt", f32(rng, 4, 2, 3, 3))
    add_op(net, "Conv", ["data", "w1", "b1"], ["c1"], kernel=3, pad=1)
    add_op(net, "MaxPool", ["c1"], ["p1"], kernel=3, stride=2, legacy_pad=3)
    add_op(net, "AveragePool", ["p1"], ["p2"], kernel=2, pads=[0, 1, 1, 0])
    add_op(net, "Conv", ["c1", "w3"], ["c2"], kernel=3, stride=2, legacy_pad=2)
    add_op(net, "ConvTranspose", ["c2", "wt"], ["ct"], kernel=3, stride=2, adj=2)
    add_op(net, "MaxPool", ["ct"], ["p3"], kernel=2, stride=2, pads=[1, 0, 0, 1])
    net.external_input.extend(["data", "w1", "b1", "w3", "wt"])
    net.external_output.extend(["p2", "p3"])
    return net, init


def test_script_of_imported_net() -> None:
    net, init = _mixed_net()
    model = c2.load_net(net, init)
    x = torch.randn(2, 3, 9, 10)
    scripted = torch.jit.script(model)
    for a, b in zip(scripted(x), model(x)):
        torch.testing.assert_close(a, b)


def test_export_with_dynamic_batch() -> None:
    net, init = _mixed_net()
    model = c2.load_net(net, init)
    x = torch.randn(2, 3, 9, 10)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    x5 = torch.randn(5, 3, 9, 10)
    for a, b in zip(ep.module()(x5), model(x5)):
        torch.testing.assert_close(a, b)


def test_nhwc_conv_script_and_gradients() -> None:
    rng = np.random.default_rng(16)
    net, init = c2.NetDef(name="nhwc"), c2.NetDef(name="nhwc_init")
    fill(init, "w", f32(rng, 4, 3, 3, 2))
    fill(init, "b", f32(rng, 4))
    add_op(net, "Conv", ["data", "w", "b"], ["y"], kernel=3, pad=1, group=1, order="NHWC")
    net.external_input.extend(["data", "w", "b"])
    net.external_output.append("y")
    model = c2.load_net(net, init)
    x = torch.randn(2, 5, 5, 2)
    torch.testing.assert_close(torch.jit.script(model)(x), model(x))
    model(x).sum().backward()
    assert model.w.grad is not None and model.w.grad.shape == (4, 3, 3, 2)
