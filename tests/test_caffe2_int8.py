"""torch_caffe2ops.caffe2: Caffe2's Int8 operators (caffe2/operators/quantized), DNNLOWP's Int8FC
options and fbgemm's FbFCPacked.

References are NumPy / Python integers written from Caffe2's kernels: QNNPACK's scalar Q31
requantization (multiplier = the float32 scale's mantissa << 7, shift = 126 - exponent; a
rounding high multiply, then a right shift with the remainder test), TensorFlow Lite's Int8Add
with gemmlowp's SaturatingRoundingDoublingHighMul / RoundingDivideByPOT, QNNPACK's average
pooling requantization, and QuantizeUint8 (nearbyint of the float32 quotient). Integer outputs
are compared exactly unless a test says otherwise.
"""
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402
from utils import add_op, fill  # noqa: E402

# PyTorch announces the end of quantized dtypes; they still carry Caffe2's Int8 blobs whole.
pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"


# --------------------------------------------------------------------------------------------
# NumPy / integer references
# --------------------------------------------------------------------------------------------

def f32(v):
    return float(np.float32(v))


def q31_requantize(n: int, scale: float, zp: int, lo: int, hi: int) -> int:
    """QNNPACK's scalar Q31 requantization of one accumulator. QNNPACK refuses scales >= 1; the
    import applies them as the exact product rounded half away from zero."""
    if scale >= 1.0:
        exact = Fraction(n) * Fraction(scale)
        out = int(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
        return min(max(out + zp, lo), hi)
    bits = struct.unpack("<I", struct.pack("<f", scale))[0]
    multiplier = ((bits & 0x007FFFFF) | 0x00800000) << 7
    shift = 127 + 31 - 32 - (bits >> 23)
    assert 0 <= shift < 32
    product = n * multiplier
    q31 = (product + (1 << 30)) >> 31
    mask = (1 << shift) - 1
    remainder = (q31 & mask) - (1 if q31 < 0 else 0)
    out = (q31 >> shift) + (1 if remainder > (mask >> 1) else 0)
    return min(max(out, lo - zp), hi - zp) + zp


def quantize_ref(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    r = np.rint(x.astype(np.float32) / np.float32(scale)).astype(np.int64) + zp
    return np.clip(r, 0, 255).astype(np.uint8)


def qt(values, scale, zp):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.asarray(values, np.uint8)), scale, zp)


def qt32(values, scale, zp):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.asarray(values, np.int32)), scale, zp)


def int8_fill(init, name, value: np.ndarray, scale, zp):
    op = add_op(init, "Int8GivenTensorFill", [], [name], shape=list(value.shape), Y_scale=scale, Y_zero_point=zp)
    op.arg.add(name="values").s = np.ascontiguousarray(value, np.uint8).tobytes()


def int8_int_fill(init, name, value: np.ndarray, scale, zp):
    add_op(init, "Int8GivenIntTensorFill", [], [name], shape=list(value.shape), values=[int(v) for v in value.ravel()],
           Y_scale=scale, Y_zero_point=zp)


def net_of(op_type, data, params=None, outputs=("y",), **args):
    """A one-operator net: `data` names are inputs; `params` (name -> (kind, array, scale, zp))
    come from an init net."""
    net, init = c2.NetDef(name="n"), c2.NetDef(name="i")
    names = []
    for name, spec in (params or {}).items():
        kind = spec[0]
        if kind == "u8":
            int8_fill(init, name, spec[1], spec[2], spec[3])
        elif kind == "i32":
            int8_int_fill(init, name, spec[1], spec[2], spec[3])
        else:
            fill(init, name, spec[1])
        names.append(name)
    order = list(data) + names if not args.pop("params_first", False) else names + list(data)
    add_op(net, op_type, order, list(outputs), **args)
    net.external_input.extend(list(data) + names)
    net.external_output.extend(outputs)
    return c2.load_net(net, init, inputs=list(data))


def ints(x):
    return x.int_repr().numpy().astype(np.int64)


# --------------------------------------------------------------------------------------------
# quantize / dequantize
# --------------------------------------------------------------------------------------------

def test_quantize_and_dequantize() -> None:
    x = np.random.default_rng(0).normal(0, 3, (3, 7)).astype(np.float32)
    x[0, :4] = [0.25, 0.75, -0.25, 1000.0]  # ties to even, clamping
    m = net_of("Int8Quantize", {"x": x}, Y_scale=0.5, Y_zero_point=3)
    q = m(torch.from_numpy(x))
    assert q.dtype == torch.quint8 and q.q_scale() == 0.5 and q.q_zero_point() == 3
    np.testing.assert_array_equal(ints(q), quantize_ref(x, 0.5, 3))
    d = net_of("Int8Dequantize", {"q": None})(q)
    ref = (quantize_ref(x, 0.5, 3).astype(np.int32) - 3).astype(np.float32) * np.float32(0.5)
    assert d.dtype == torch.float32
    np.testing.assert_array_equal(d.numpy(), ref)


def test_zero_point_outside_uint8_is_refused() -> None:
    with pytest.raises(c2.NetImportError, match="Y_zero_point"):
        net_of("Int8Quantize", {"x": None}, Y_scale=0.5, Y_zero_point=300)


# --------------------------------------------------------------------------------------------
# Int8FC
# --------------------------------------------------------------------------------------------

def fc_ref(xq, xs, xz, wq, ws, wz, bias_int, ys, yz, relu=False):
    scale = f32(f32(f32(xs) * f32(ws)) / f32(ys))
    m, k = xq.shape
    out = np.zeros((m, wq.shape[0]), np.int64)
    for i in range(m):
        for j in range(wq.shape[0]):
            acc = int(bias_int[j])
            for kk in range(k):
                acc += (int(xq[i, kk]) - xz) * (int(wq[j, kk]) - wz)
            out[i, j] = q31_requantize(acc, scale, yz, yz if relu else 0, 255)
    return out


@pytest.mark.parametrize("op_type", ["Int8FC", "Int8FCRelu"])
@pytest.mark.parametrize("ys,yz", [(0.7, 128), (3.3, 10), (0.9, 0)])
def test_int8_fc_matches_qnnpack(op_type, ys, yz) -> None:
    g = np.random.default_rng(1)
    xq = g.integers(0, 256, (5, 9)).astype(np.uint8)
    wq = g.integers(0, 256, (4, 9)).astype(np.uint8)
    b = g.integers(-3000, 3000, 4).astype(np.int32)
    xs, xz, ws, wz = 0.05, 120, 0.02, 131
    m = net_of(op_type, {"x": None}, {"w": ("u8", wq, ws, wz), "b": ("i32", b, xs * ws, 0)}, Y_scale=ys, Y_zero_point=yz)
    y = m(qt(xq, xs, xz))
    assert y.q_scale() == pytest.approx(ys) and y.q_zero_point() == yz
    np.testing.assert_array_equal(ints(y), fc_ref(xq, xs, xz, wq, ws, wz, b, ys, yz, op_type == "Int8FCRelu"))


def test_int8_fc_axis_and_dequantize_output() -> None:
    g = np.random.default_rng(2)
    xq = g.integers(0, 256, (2, 3, 4)).astype(np.uint8)
    wq = g.integers(0, 256, (5, 4)).astype(np.uint8)
    b = g.normal(0, 1, 5).astype(np.float32)
    xs, xz, ws, wz = 0.1, 7, 0.03, 100
    m = net_of("Int8FC", {"x": None}, {"w": ("u8", wq, ws, wz), "b": ("f", b)}, axis=2, dequantize_output=1)
    y = m(qt(xq, xs, xz))
    acc = (xq.astype(np.int64) - xz) @ (wq.astype(np.int64) - wz).T
    ref = acc.astype(np.float32) * np.float32(f32(xs) * f32(ws)) + b
    assert y.shape == (2, 3, 5)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6, atol=1e-5)  # float32 rounding only


def test_int8_fc_float_bias_is_quantized_to_the_accumulator_scale() -> None:
    g = np.random.default_rng(3)
    xq = g.integers(0, 256, (3, 6)).astype(np.uint8)
    wq = g.integers(0, 256, (2, 6)).astype(np.uint8)
    b = np.array([1.234, -0.5], np.float32)
    xs, ws = 0.1, 0.05
    m = net_of("Int8FC", {"x": None}, {"w": ("u8", wq, ws, 128), "b": ("f", b)}, Y_scale=0.8, Y_zero_point=50)
    bias_int = np.rint(b.astype(np.float64) / f32(f32(xs) * f32(ws))).astype(np.int64)
    np.testing.assert_array_equal(ints(m(qt(xq, xs, 3))), fc_ref(xq, xs, 3, wq, ws, 128, bias_int, 0.8, 50))


# --------------------------------------------------------------------------------------------
# Int8Conv
# --------------------------------------------------------------------------------------------

def conv_ref_nhwc(xq, xz, wq, wz, bias, stride, pads, group, scale, yz, relu):
    """pads = (t, l, b, r); x [N, H, W, C], w [M, kH, kW, C/G]."""
    n, h, wd, c = xq.shape
    m, kh, kw, cg = wq.shape
    t, l, bt, r = pads
    oh = (h + t + bt - kh) // stride + 1
    ow = (wd + l + r - kw) // stride + 1
    out = np.zeros((n, oh, ow, m), np.int64)
    mg = m // group
    for b_ in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(m):
                    g_ = oc // mg
                    acc = int(bias[oc])
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride - t + ky, ox * stride - l + kx
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue
                            for ci in range(cg):
                                acc += (int(xq[b_, iy, ix, g_ * cg + ci]) - xz) * (int(wq[oc, ky, kx, ci]) - wz)
                    out[b_, oy, ox, oc] = q31_requantize(acc, scale, yz, yz if relu else 0, 255)
    return out


@pytest.mark.parametrize("op_type", ["Int8Conv", "Int8ConvRelu"])
@pytest.mark.parametrize("group,stride,pad_args,pads", [
    (1, 1, {"pad": 1}, (1, 1, 1, 1)),
    (2, 2, {"pad_t": 0, "pad_l": 1, "pad_b": 2, "pad_r": 0}, (0, 1, 2, 0)),
    (4, 1, {"pads": [1, 0, 0, 1]}, (1, 0, 0, 1)),
])
def test_int8_conv_nhwc_matches_qnnpack(op_type, group, stride, pad_args, pads) -> None:
    g = np.random.default_rng(4)
    xq = g.integers(0, 256, (2, 5, 6, 4)).astype(np.uint8)
    wq = g.integers(0, 256, (8, 3, 2, 4 // group)).astype(np.uint8)
    b = g.integers(-500, 500, 8).astype(np.int32)
    xs, xz, ws, wz, ys, yz = 0.04, 125, 0.01, 128, 0.05, 120
    m = net_of(op_type, {"x": None}, {"w": ("u8", wq, ws, wz), "b": ("i32", b, xs * ws, 0)},
               kernel_h=3, kernel_w=2, stride=stride, group=group, order="NHWC", Y_scale=ys, Y_zero_point=yz, **pad_args)
    y = m(qt(xq, xs, xz))
    scale = f32(f32(f32(xs) * f32(ws)) / f32(ys))
    ref = conv_ref_nhwc(xq, xz, wq, wz, b, stride, pads, group, scale, yz, op_type == "Int8ConvRelu")
    np.testing.assert_array_equal(ints(y), ref)


def test_int8_conv_nchw_uses_the_float_conv_layouts() -> None:
    # Caffe2 refuses NCHW (QNNPACK is NHWC only); the import takes it as the float Conv would.
    g = np.random.default_rng(5)
    xq = g.integers(0, 256, (1, 2, 4, 4)).astype(np.uint8)
    wq = g.integers(0, 256, (3, 2, 2, 2)).astype(np.uint8)
    b = np.zeros(3, np.int32)
    m = net_of("Int8Conv", {"x": None}, {"w": ("u8", wq, 0.02, 128), "b": ("i32", b, 1.0, 0)},
               kernel=2, Y_scale=0.5, Y_zero_point=100)
    y = m(qt(xq, 0.1, 10))
    scale = f32(f32(f32(0.1) * f32(0.02)) / f32(0.5))
    ref = conv_ref_nhwc(xq.transpose(0, 2, 3, 1), 10, wq.transpose(0, 2, 3, 1), 128, b, 1, (0, 0, 0, 0), 1, scale, 100, False)
    np.testing.assert_array_equal(ints(y), ref.transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------------------------
# Int8Add / Int8Sum
# --------------------------------------------------------------------------------------------

def _qmul_smaller_than_one(real):
    if real == 0:
        return 0, 0
    q, e = np.frexp(real)
    shift = -int(e)
    fixed = int(np.rint(q * 2.0**31))
    if fixed == 2**31:
        fixed //= 2
        shift -= 1
    return fixed, shift


def _srdhm(a, b):
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return abs(v) // (1 << 31) * (1 if v >= 0 else -1)


def _rdbypot(x, e):
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def add_ref(a, sa, za, b, sb, zb, ys, yz, relu):
    twice = 2 * max(f32(sa), f32(sb))
    m0, s0 = _qmul_smaller_than_one(f32(sa) / twice)
    m1, s1 = _qmul_smaller_than_one(f32(sb) / twice)
    my, sy = _qmul_smaller_than_one(twice / f32((1 << 20) * f32(ys)))
    out = np.zeros(a.shape, np.int64)
    for i in np.ndindex(a.shape):
        v0 = _rdbypot(_srdhm((int(a[i]) - za) << 20, m0), s0)
        v1 = _rdbypot(_srdhm((int(b[i]) - zb) << 20, m1), s1)
        raw = _rdbypot(_srdhm(v0 + v1, my), sy) + yz
        out[i] = min(255, max(yz if relu else 0, raw))
    return out


@pytest.mark.parametrize("op_type", ["Int8Add", "Int8Sum", "Int8AddRelu", "Int8SumRelu"])
def test_int8_add_matches_tflite_arithmetic(op_type) -> None:
    g = np.random.default_rng(6)
    a = g.integers(0, 256, (3, 5, 4)).astype(np.uint8)
    b = g.integers(0, 256, (3, 5, 4)).astype(np.uint8)
    m = net_of(op_type, {"a": None, "b": None}, Y_scale=0.07, Y_zero_point=90)
    y = m(qt(a, 0.03, 100), qt(b, 0.05, 20))
    np.testing.assert_array_equal(ints(y), add_ref(a, 0.03, 100, b, 0.05, 20, 0.07, 90, op_type.endswith("Relu")))


# --------------------------------------------------------------------------------------------
# Relu, pooling, sigmoid, layout
# --------------------------------------------------------------------------------------------

def test_int8_relu_clamps_at_the_zero_point() -> None:
    a = np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)
    y = net_of("Int8Relu", {"a": None}, Y_scale=0.5, Y_zero_point=77)(qt(a, 0.5, 77))
    np.testing.assert_array_equal(ints(y), np.maximum(a, 77))
    with pytest.raises(RuntimeError, match="must equal the input's"):
        net_of("Int8Relu", {"a": None}, Y_scale=0.25, Y_zero_point=77)(qt(a, 0.5, 77))


def _windows(h, k, s, head, tail):
    out = (h + head + tail - k) // s + 1
    return [(o * s - head, o * s - head + k) for o in range(out)]


@pytest.mark.parametrize("relu", [False, True])
def test_int8_max_pool(relu) -> None:
    g = np.random.default_rng(7)
    a = g.integers(0, 256, (2, 5, 6, 3)).astype(np.uint8)
    m = net_of("Int8MaxPoolRelu" if relu else "Int8MaxPool", {"a": None}, kernel=3, stride=2, pad=1, order="NHWC",
               Y_scale=0.1, Y_zero_point=128)
    y = m(qt(a, 0.1, 128))
    ref = np.zeros((2, 3, 3, 3), np.int64)
    for i, (y0, y1) in enumerate(_windows(5, 3, 2, 1, 1)):
        for j, (x0, x1) in enumerate(_windows(6, 3, 2, 1, 1)):
            ref[:, i, j, :] = a[:, max(y0, 0):y1, max(x0, 0):x1, :].max(axis=(1, 2))
    if relu:
        ref = np.maximum(ref, 128)
    np.testing.assert_array_equal(ints(y), ref)


def avgpool_requantize(acc, scale, yz, lo, hi):
    bits = struct.unpack("<I", struct.pack("<f", scale))[0]
    multiplier = (bits & 0x007FFFFF) | 0x00800000
    shift = 127 + 23 - (bits >> 23)
    product = acc * multiplier
    n = (product - (1 if product < 0 else 0) + (1 << (shift - 1))) >> shift
    return min(max(n + yz, lo), hi)


def test_int8_average_pool_counts_pads_as_zero_point() -> None:
    g = np.random.default_rng(8)
    a = g.integers(0, 256, (1, 4, 5, 2)).astype(np.uint8)
    xs, xz, ys, yz = 0.2, 30, 0.15, 60
    m = net_of("Int8AveragePool", {"a": None}, kernel=2, stride=2, pad_t=1, pad_l=0, pad_b=1, pad_r=1, order="NHWC",
               Y_scale=ys, Y_zero_point=yz)
    y = m(qt(a, xs, xz))
    scale = f32(f32(f32(xs) / f32(ys)) / 4.0)
    ref = np.zeros((1, 3, 3, 2), np.int64)
    for i, (y0, y1) in enumerate(_windows(4, 2, 2, 1, 1)):
        for j, (x0, x1) in enumerate(_windows(5, 2, 2, 0, 1)):
            for c in range(2):
                acc = int((a[0, max(y0, 0):y1, max(x0, 0):x1, c].astype(np.int64) - xz).sum())
                ref[0, i, j, c] = avgpool_requantize(acc, scale, yz, 0, 255)
    np.testing.assert_array_equal(ints(y), ref)


def test_int8_pooling_refuses_nchw() -> None:
    with pytest.raises(c2.NetImportError, match="NHWC"):
        net_of("Int8MaxPool", {"a": None}, kernel=2)


def test_int8_sigmoid_table() -> None:
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    y = net_of("Int8Sigmoid", {"a": None}, Y_scale=1 / 256, Y_zero_point=0)(qt(a, 0.05, 128))
    x = np.float32(0.05) * (np.arange(256) - 128).astype(np.float32)
    ref = np.rint(np.clip(np.float32(256) / (np.float32(1) + np.exp(-x)), 0, 255)).astype(np.int64)
    np.testing.assert_array_equal(ints(y), ref.reshape(16, 16))


def test_int8_reshape_flatten_concat() -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    y = net_of("Int8Reshape", {"a": None}, outputs=("y", "old"), shape=[0, -1], Y_scale=0.5, Y_zero_point=2)(qt(a, 0.5, 2))
    np.testing.assert_array_equal(ints(y[0]), a.reshape(2, 12).astype(np.int64))
    np.testing.assert_array_equal(y[1].numpy(), [2, 3, 4])
    assert y[0].q_scale() == 0.5 and y[0].q_zero_point() == 2
    y = net_of("Int8Flatten", {"a": None}, axis=2, Y_scale=0.5, Y_zero_point=2)(qt(a, 0.5, 2))
    np.testing.assert_array_equal(ints(y), a.reshape(6, 4).astype(np.int64))
    b = np.arange(8, dtype=np.uint8).reshape(2, 1, 4)
    y = net_of("Int8Concat", {"a": None, "b": None}, axis=1, Y_scale=0.5, Y_zero_point=2)(qt(a, 0.5, 2), qt(b, 9.0, 7))
    # Caffe2 copies every input's bytes and gives the result the first input's qparams.
    np.testing.assert_array_equal(ints(y), np.concatenate([a, b], 1).astype(np.int64))
    assert y.q_scale() == 0.5 and y.q_zero_point() == 2


# --------------------------------------------------------------------------------------------
# FbFCPacked
# --------------------------------------------------------------------------------------------

def test_fb_fc_packed_uses_float16_weights() -> None:
    g = np.random.default_rng(9)
    x = g.normal(0, 1, (3, 5)).astype(np.float32)
    w = g.normal(0, 1, (4, 5)).astype(np.float32)
    b = g.normal(0, 1, 4).astype(np.float32)
    net, init = c2.NetDef(), c2.NetDef()
    fill(init, "w", w)
    fill(init, "b", b)
    add_op(net, "FbGemmPack", ["w"], ["wp"])
    add_op(net, "FbFCPacked", ["x", "wp", "b"], ["y"])
    net.external_input.extend(["x", "w", "b"])
    net.external_output.append("y")
    y = c2.load_net(net, init)(torch.from_numpy(x))
    ref = x.astype(np.float64) @ w.astype(np.float16).astype(np.float64).T + b
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-5, atol=1e-5)  # float32 accumulation


# --------------------------------------------------------------------------------------------
# Glow's quantized test nets
# --------------------------------------------------------------------------------------------

def glow(pred, init):
    return c2.load_net(FIXTURES / f"glow_{pred}.pbtxt", FIXTURES / f"glow_{init}.pbtxt")


def test_glow_int8fc_3d_second_axis() -> None:
    # Caffe2's QNNPACK Int8FC ignores `axis`, refuses a uint8 bias and a requantization scale of
    # 1; DNNLOWP reads axis, and the bias is requantized to x_scale * w_scale (Glow does the same).
    m = glow("int8fc_3d_second_axis_predict", "int8fc_3d_second_axis_init")
    y = m(qt(np.arange(12).reshape(2, 2, 3), 1.0, 0))
    glow_expected = [[[4.956894, 14.890197], [14.003877, 51.125492]], [[22.921618, 86.84314], [31.9686, 123.07844]]]
    np.testing.assert_allclose(y.numpy(), glow_expected, atol=0.2)
    np.testing.assert_array_equal(y.numpy(), [[[5, 15], [14, 51]], [[23, 87], [32, 123]]])  # exact integers


def test_glow_int8fc_4d_first_axis_dims() -> None:
    m = glow("int8fc_4d_first_axis_predict_net", "int8fc_4d_first_axis_init_net")
    assert m(qt(np.arange(5).reshape(1, 5, 1, 1), 1.0, 0)).shape == (1, 3)
    # Glow feeds float32: DNNLOWP quantizes a float input with qparams from its range.
    assert m(torch.arange(5.0).reshape(1, 5, 1, 1)).shape == (1, 3)


def test_glow_dynamic_quantized_fc() -> None:
    m = glow("dynamic_quantized_fc_predict_net", "dynamic_quantized_fc_init")
    # Glow feeds float16 and expects float16; DNNLOWP takes float32, so the output is float32.
    y = m(torch.arange(1, 7, dtype=torch.float16).reshape(2, 3))
    np.testing.assert_allclose(y.numpy(), [[8, 27, 46, 65], [17, 63, 109, 155]], atol=0.3)


@pytest.mark.parametrize("pred,init,shape,expected", [
    ("fbfcpacked_3d_second_axis_predict", "fbfcpacked_3d_second_axis_init", (2, 3, 4),
     [[[14, 39, 64, 89, 114], [38, 127, 216, 305, 394], [62, 215, 368, 521, 674]],
      [[86, 303, 520, 737, 954], [110, 391, 672, 953, 1234], [134, 479, 824, 1169, 1514]]]),
    ("fbfcpacked_4d_first_axis_predict_net", "fbfcpacked_4d_first_axis_init_net", (1, 5, 1, 1), None),
])
def test_glow_fbfcpacked(pred, init, shape, expected) -> None:
    m = glow(pred, init)
    y = m(torch.arange(float(np.prod(shape))).reshape(shape))
    if expected is None:
        assert y.shape == (1, 3)
    else:
        np.testing.assert_array_equal(y.detach().numpy(), expected)


def test_glow_int8convrelu_qparams_and_values() -> None:
    m = glow("int8convrelu_pred_net", "int8convrelu_init_net")
    w, b = m.conv_w, m.conv_b
    # Glow shows the uint8 zero points shifted by -128 (7-128, 10-128); Caffe2's are 7 and 10.
    assert (w.q_scale(), w.q_zero_point(), w.dtype) == (2.0, 10, torch.quint8)
    assert (b.q_scale(), b.q_zero_point(), b.dtype) == (10.0, 4, torch.qint32)
    xq = np.arange(9).reshape(1, 1, 3, 3)
    y = m(qt(xq, 1.0, 0))
    assert (y.q_scale(), y.q_zero_point(), tuple(y.shape)) == (1.5, 7, (1, 1, 4, 4))
    # The net has no order (NCHW), which Caffe2's Int8ConvRelu refuses; the bias is added as stored (2).
    scale = f32(f32(1.0 * 2.0) / f32(1.5))
    ref = conv_ref_nhwc(xq.transpose(0, 2, 3, 1), 0, np.ones((1, 2, 2, 1), np.uint8), 10, [2], 1, (1, 1, 1, 1), 1,
                        scale, 7, True)
    np.testing.assert_array_equal(ints(y), ref.transpose(0, 3, 1, 2))


def test_glow_conv_group_quantized() -> None:
    m = glow("conv_group_quantized_pred_net", "conv_group_quantized_init_net")
    w = m.conv_w
    # Caffe2 keeps the filter's one scale/zero point (1.0, 0); the conv_w_loaded_scales/offsets
    # blobs (6.0, 5) are Glow's convention for per-channel qparams and no Caffe2 operator reads them.
    assert (w.q_scale(), w.q_zero_point()) == (1.0, 0)
    np.testing.assert_array_equal(ints(w).ravel() - 128, np.arange(8) % 2)  # Glow's int8 view: i % 2
    xq = np.arange(4).reshape(1, 1, 1, 4)
    y = m(qt(xq, 1.0, 0))
    assert (y.q_scale(), y.q_zero_point(), tuple(y.shape)) == (pytest.approx(3.14), 5, (1, 3, 3, 4))
    bias = np.rint(np.full(4, 7.0) / 1.0).astype(np.int64)  # float bias at x_scale * w_scale (DNNLOWP)
    scale = f32(f32(1.0) / f32(3.14))
    ref = conv_ref_nhwc(xq, 0, ints(w).reshape(4, 1, 1, 2), 0, bias, 1, (1, 1, 1, 1), 2, scale, 5, False)
    np.testing.assert_array_equal(ints(y), ref)


def test_glow_int8sumrelu_nets() -> None:
    m = glow("int8sumrelu_pred_net", "int8sumrelu_init_net")
    a = np.arange(8).reshape(4, 2)
    y = m(qt(a, 1.0, 0))
    np.testing.assert_array_equal(ints(y), add_ref(a, 1.0, 0, np.ones((4, 2)), 1.0, 0, 1.0, 0, True))
    np.testing.assert_array_equal(y.dequantize().numpy(), a + 1)

    m = glow("int8sumrelu_large_range_pred_net", "int8sumrelu_large_range_init_net")
    assert (m.rhs.q_scale(), m.rhs.q_zero_point()) == (600.0, 127)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    y = m(torch.from_numpy(x))
    ref = add_ref(quantize_ref(x, 1.0, 0), 1.0, 0, np.ones((4, 2)), 600.0, 127, 575.0, 120, True)
    assert (y.q_scale(), y.q_zero_point()) == (575.0, 120)
    np.testing.assert_array_equal(ints(y), ref)

    m = glow("int8sumrelu_tiny_scale_pred_net", "int8sumrelu_tiny_scale_init_net")
    assert (m.rhs.q_scale(), m.rhs.q_zero_point()) == (pytest.approx(7e-10), 13)
    # The output scale 1e-11 is far below the inputs' (Glow clips it to float16's range);
    # Caffe2's QuantizeMultiplierSmallerThanOne CHECK-fails on it.
    with pytest.raises(RuntimeError, match="must lie in"):
        m(qt(a, 1.0, 0))


# --------------------------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------------------------

def test_int8_net_scripts() -> None:
    g = np.random.default_rng(10)
    net, init = c2.NetDef(), c2.NetDef()
    int8_fill(init, "w", g.integers(0, 256, (2, 2, 2, 3)).astype(np.uint8), 0.02, 128)
    int8_int_fill(init, "b", np.array([5, -5], np.int32), 0.002, 0)
    add_op(net, "Int8Quantize", ["x"], ["xq"], Y_scale=0.1, Y_zero_point=128)
    add_op(net, "Int8ConvRelu", ["xq", "w", "b"], ["c"], kernel=2, order="NHWC", Y_scale=0.05, Y_zero_point=10)
    add_op(net, "Int8AveragePool", ["c"], ["p"], kernel=2, order="NHWC", Y_scale=0.05, Y_zero_point=10)
    add_op(net, "Int8Flatten", ["p"], ["f"], Y_scale=0.05, Y_zero_point=10)
    add_op(net, "Int8Dequantize", ["f"], ["y"])
    net.external_input.extend(["x", "w", "b"])
    net.external_output.append("y")
    m = c2.load_net(net, init)
    x = torch.from_numpy(g.normal(0, 1, (1, 4, 4, 3)).astype(np.float32))
    scripted = torch.jit.script(m)
    torch.testing.assert_close(scripted(x), m(x), rtol=0, atol=0)
