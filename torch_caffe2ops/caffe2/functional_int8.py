"""Caffe2's Int8 operators (the QNNPACK / TensorFlow-Lite kernels of caffe2/operators/quantized,
and the float-input / float-output cases of the DNNLOWP Int8FC) as tensor functions.

An Int8 blob is a per-tensor affine ``torch.quint8`` tensor: its bytes, its scale and its zero
point, exactly what Caffe2's ``Int8TensorCPU`` held. The integer arithmetic is done on the
stored bytes (``int_repr``) and reproduces Caffe2's fixed-point requantization bit for bit:

- Int8FC / Int8Conv (QNNPACK): ``acc = bias + sum((x - x_zp) * (w - w_zp))`` in exact integers,
  then the Q31 requantization with the float32 scale ``x_scale * w_scale / y_scale``: a rounding
  doubling high multiply by the scale's 24-bit mantissa, then a right shift that rounds half away
  from zero, plus ``y_zp``, clamped to the activation range;
- Int8Add / Int8Sum (+Relu): TensorFlow-Lite's left shift by 20, per-input and output
  fixed-point multipliers (``QuantizeMultiplierSmallerThanOne``) and gemmlowp's rounding;
- Int8AveragePool (QNNPACK): the window sum of ``x - x_zp`` (pads count as zero, the divisor is
  the whole kernel) times ``x_scale / y_scale / area``, rounded half away from zero;
- Int8Quantize: ``zp + nearbyint(x / scale)`` clamped to [0, 255]; Int8Dequantize:
  ``(q - zp) * scale`` in float32.

Integer sums are computed in float64 (products of bytes summed: exact below 2**53) so that the
fast float kernels (``F.linear``, ``F.conv2d``) do the work, then requantized in int64.

Every function is TorchScript-compatible (no ``from __future__ import annotations`` here).
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional_conv import legacy_pad_list


def qtensor(q: Tensor, scale: float, zero_point: int) -> Tensor:
    """A quint8 tensor from its bytes (any integer tensor with values in [0, 255])."""
    return torch._make_per_tensor_quantized_tensor(q.to(torch.uint8), scale, zero_point)


def _f32(x: float) -> float:
    """``x`` rounded to float32, as Caffe2's float arithmetic on scales does."""
    return float(torch.tensor(x, dtype=torch.float32))


def _nearbyint(x: float) -> int:
    """Round half to even (std::nearbyint in the default rounding mode)."""
    f = math.floor(x)
    d = x - f
    n = int(f)
    if d > 0.5 or (d == 0.5 and n % 2 != 0):
        n += 1
    return n


def _bytes(x: Tensor, what: str) -> Tensor:
    if not x.is_quantized or x.dtype != torch.quint8:
        raise TypeError(f"{what} must be an Int8 blob (a quint8 tensor), got {x.dtype}")
    return x.int_repr()


def check_same_qparams(x: Tensor, y_scale: float, y_zero_point: int, what: str) -> None:
    """Caffe2's CHECK_EQ of Y_scale / Y_zero_point against the input's (pass-through operators)."""
    if _f32(y_scale) != _f32(x.q_scale()) or y_zero_point != x.q_zero_point():
        raise RuntimeError(
            f"{what}: Y_scale {y_scale} / Y_zero_point {y_zero_point} must equal the input's "
            f"scale {x.q_scale()} / zero point {x.q_zero_point()}"
        )


# --- quantize / dequantize ---------------------------------------------------------------------


def quantize(x: Tensor, scale: float, zero_point: int) -> Tensor:
    """Int8Quantize: zero_point + nearbyint(x / scale), clamped to [0, 255]."""
    if x.dtype != torch.float32:
        raise TypeError(f"Int8Quantize takes a float32 tensor, got {x.dtype}")
    q = torch.clamp(torch.round(x / scale) + float(zero_point), 0.0, 255.0)
    return qtensor(q, scale, zero_point)


def dequantize(x: Tensor) -> Tensor:
    """Int8Dequantize: (q - zero_point) * scale in float32."""
    q = _bytes(x, "Int8Dequantize's input")
    return (q.to(torch.int32) - x.q_zero_point()).to(torch.float32) * _f32(x.q_scale())


# --- requantization ------------------------------------------------------------------------------


def requantize_q31(acc: Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> Tensor:
    """QNNPACK's Q31 requantization of int64 accumulators by a float32 ``scale``.

    QNNPACK accepts scales in [2**-32, 1); a scale >= 1 (which it refuses) is applied here as the
    exact product rounded half away from zero."""
    if not scale > 0.0:
        raise RuntimeError(f"requantization scale {scale} must be positive")
    m, e = math.frexp(scale)
    m24 = int(m * 16777216.0)
    if scale < 1.0:
        multiplier = m24 << 7
        shift = -e
        q31 = (acc * multiplier + (1 << 30)) >> 31
        if shift > 0:
            n = (q31 - (q31 < 0).to(torch.int64) + (1 << (shift - 1))) >> shift
        else:
            n = q31
    else:
        s = 24 - e
        value = acc * m24
        if s > 0:
            n = (value - (value < 0).to(torch.int64) + (1 << (s - 1))) >> s
        else:
            n = value << (-s)
    return torch.clamp(n + zero_point, qmin, qmax)


def _requantize_avgpool(acc: Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> Tensor:
    """QNNPACK's average-pooling requantization: acc * scale (24-bit mantissa, shift in [16, 55])
    rounded half away from zero."""
    if not (scale >= 2.0 ** -32 and scale < 256.0):
        raise RuntimeError(f"average pooling scale {scale} (input scale / output scale / window) "
                           "is outside QNNPACK's range [2**-32, 256)")
    m, e = math.frexp(scale)
    multiplier = int(m * 16777216.0)
    shift = 24 - e
    product = acc * multiplier
    n = (product - (product < 0).to(torch.int64) + (1 << (shift - 1))) >> shift
    return torch.clamp(n + zero_point, qmin, qmax)


def _quantize_multiplier_smaller_than_one(real: float) -> Tuple[int, int]:
    """Caffe2's QuantizeMultiplierSmallerThanOne: (Q31 multiplier, right shift)."""
    if not (real >= 0.0 and real < 1.0):
        raise RuntimeError(f"Int8Add: the real multiplier {real} must lie in [0, 1) (Y_scale too small "
                           "for the inputs' scales)")
    if real == 0.0:
        return 0, 0
    q, exponent = math.frexp(real)
    shift = -exponent
    fixed = _nearbyint(q * 2147483648.0)
    if fixed == 2147483648:
        fixed = fixed // 2
        shift -= 1
    if shift < 0:
        raise RuntimeError(f"Int8Add: multiplier {real} gives a negative shift")
    return fixed, shift


def _mul_by_multiplier(x: Tensor, multiplier: int, shift: int) -> Tensor:
    """gemmlowp's RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, multiplier), shift)."""
    ab = x * multiplier
    nudge = torch.where(ab >= 0, torch.full_like(ab, 1 << 30), torch.full_like(ab, 1 - (1 << 30)))
    high = torch.div(ab + nudge, 2147483648, rounding_mode="trunc")
    mask = (1 << shift) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0).to(torch.int64)
    return (high >> shift) + (remainder > threshold).to(torch.int64)


# --- FC ------------------------------------------------------------------------------------------


def _canonical(axis: int, ndim: int) -> int:
    if axis < -ndim or axis >= ndim:
        raise RuntimeError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis + ndim if axis < 0 else axis


def _prod(sizes: List[int]) -> int:
    p = 1
    for s in sizes:
        p *= s
    return p


def choose_qparams(x: Tensor) -> Tuple[float, int]:
    """DNNLOWP's qparams of a float input (fbgemm's ChooseQuantizationParams over [min, max]
    extended to hold 0, uint8, no sparsity preservation)."""
    lo = min(float(x.min()), 0.0) if x.numel() > 0 else 0.0
    hi = max(float(x.max()), 0.0) if x.numel() > 0 else 0.0
    lo = _f32(lo)
    hi = _f32(hi)
    scale = _f32((hi - lo) / 255.0)
    if scale == 0.0 or math.isinf(_f32(1.0 / scale)):
        scale = _f32(0.1)
    small = _f32(6.1e-5)
    if scale < small:
        org = scale
        scale = small
        if lo == 0.0:
            hi = _f32(small * 255.0)
        elif hi == 0.0:
            lo = _f32(-small * 255.0)
        else:
            amp = _f32(small / org)
            lo = _f32(lo * amp)
            hi = _f32(hi * amp)
    from_min = 0.0 - lo / scale
    from_max = 255.0 - hi / scale
    err_min = abs(lo / scale)
    err_max = 255.0 + abs(hi / scale)
    initial = from_min if err_min < err_max else from_max
    if initial < 0.0:
        zp = 0
    elif initial > 255.0:
        zp = 255
    else:
        zp = _nearbyint(initial)
    return scale, zp


def quantize_dynamic(x: Tensor, scale: float, zero_point: int) -> Tensor:
    """fbgemm's Quantize<uint8_t>: nearbyint(zero_point + x * (1 / scale)) clamped (float32)."""
    inv = _f32(1.0 / scale)
    return torch.clamp(torch.round(x.to(torch.float32) * inv + float(zero_point)), 0.0, 255.0).to(torch.int64)


def _bias_real(b: Tensor) -> Tensor:
    """The real value of a bias blob: float as is, an Int8 blob dequantized."""
    if b.is_quantized:
        return (b.int_repr().to(torch.float64) - b.q_zero_point()) * b.q_scale()
    return b.to(torch.float64)


def _bias_int(b: Tensor, acc_scale: float) -> Tensor:
    """The int32 bias QNNPACK adds to the accumulators.

    A qint32 blob (Int8GivenIntTensorFill) is added as stored, as QNNPACK did (it reads the
    integers and ignores the blob's scale). A float bias (DNNLOWP) is quantized to
    ``x_scale * w_scale`` with nearbyint; a uint8 Int8 bias, which Caffe2 refused, is dequantized
    and quantized the same way."""
    if b.is_quantized and b.dtype == torch.qint32:
        return b.int_repr().to(torch.int64)
    return torch.round(_bias_real(b) / acc_scale).to(torch.int64)


def fc(
    x: Tensor,
    w: Tensor,
    b: Tensor,
    axis: int,
    axis_w: int,
    y_scale: float,
    y_zero_point: int,
    dequantize_output: bool,
    relu: bool = False,
) -> Tensor:
    """Int8FC: Y = X2 @ W2^T + b with X flattened at ``axis`` and W at ``axis_w``; a quint8 Y
    with (y_scale, y_zero_point), or float32 with ``dequantize_output``. A float X is quantized
    with qparams chosen from its range (DNNLOWP's dynamic quantization)."""
    wq = _bytes(w, "Int8FC's weight")
    ax = _canonical(axis, x.dim())
    axw = _canonical(axis_w, w.dim())
    if x.is_quantized:
        xq = _bytes(x, "Int8FC's input").to(torch.int64)
        x_scale = x.q_scale()
        x_zp = x.q_zero_point()
    else:
        xf = x.to(torch.float32)
        x_scale, x_zp = choose_qparams(xf)
        xq = quantize_dynamic(xf, x_scale, x_zp)
    out_shape: List[int] = list(x.shape[:ax])
    k = _prod(list(x.shape[ax:]))
    n = _prod(list(w.shape[:axw]))
    if _prod(list(w.shape[axw:])) != k:
        raise RuntimeError(f"Int8FC: the input has {k} features per row, the weight {list(w.shape)} "
                           f"flattened at axis_w {axis_w} has {_prod(list(w.shape[axw:]))}")
    if b.numel() != n:
        raise RuntimeError(f"Int8FC: the bias has {b.numel()} values for {n} outputs")
    out_shape.append(n)
    xc = (xq - x_zp).to(torch.float64).reshape(-1, k)
    wc = (wq.to(torch.float64) - w.q_zero_point()).reshape(n, k)
    acc = F.linear(xc, wc)
    acc_scale = _f32(_f32(x_scale) * _f32(w.q_scale()))
    if dequantize_output:
        y = acc.to(torch.float32) * acc_scale + _bias_real(b).to(torch.float32).reshape(-1)
        if relu:
            y = torch.relu(y)
        return y.reshape(out_shape)
    total = acc.to(torch.int64) + _bias_int(b, acc_scale).reshape(-1)
    scale = _f32(acc_scale / _f32(y_scale))
    qmin = y_zero_point if relu else 0
    yq = requantize_q31(total, scale, y_zero_point, qmin, 255)
    return qtensor(yq.reshape(out_shape), y_scale, y_zero_point)


def fc_fp16(x: Tensor, w: Tensor, b: Tensor, axis: int, axis_w: int) -> Tensor:
    """FbFCPacked: float32 FC whose weight holds float16 values (fbgemm widens them to float32
    and accumulates in float32)."""
    ax = _canonical(axis, x.dim())
    axw = _canonical(axis_w, w.dim())
    w2 = w.to(torch.float16).to(torch.float32).reshape(_prod(list(w.shape[:axw])), -1)
    return F.linear(x.flatten(ax), w2, b.to(torch.float32))


# --- Conv ------------------------------------------------------------------------------------------


def conv(
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor],
    kernel: List[int],
    stride: List[int],
    dilation: List[int],
    pad: List[int],
    pad_head: List[int],
    legacy: int,
    group: int,
    nhwc: bool,
    y_scale: float,
    y_zero_point: int,
    relu: bool,
) -> Tensor:
    """Int8Conv / Int8ConvRelu (2-D): QNNPACK's convolution of quint8 X by a quint8 filter
    ([M, kH, kW, C/G] for NHWC, [M, C/G, kH, kW] for NCHW) plus the bias, requantized to
    (y_scale, y_zero_point); ``relu`` clamps at the output zero point. Pads hold the input's
    zero point (a real zero). ``pad`` are ``F.pad`` amounts, unless ``legacy`` (SAME or
    CAFFE_LEGACY_POOLING) derives them from the input size."""
    xq = _bytes(x, "Int8Conv's input")
    wq = _bytes(w, "Int8Conv's filter")
    xc = xq.to(torch.float64) - x.q_zero_point()
    wc = wq.to(torch.float64) - w.q_zero_point()
    if nhwc:
        xc = xc.permute(0, 3, 1, 2)
        wc = wc.permute(0, 3, 1, 2)
    if xc.size(1) % group != 0 or wc.size(0) % group != 0:
        raise RuntimeError(f"Int8Conv: {xc.size(1)} input and {wc.size(0)} output channels must be "
                           f"divisible by group {group}")
    if legacy == 2 or legacy == 3:
        pad = legacy_pad_list([xc.size(2), xc.size(3)], kernel, stride, dilation, pad_head, legacy)
    acc = F.conv2d(F.pad(xc, pad), wc, None, stride, [0, 0], dilation, group)
    acc_scale = _f32(_f32(x.q_scale()) * _f32(w.q_scale()))
    total = acc.to(torch.int64)
    if b is not None:
        total = total + _bias_int(b, acc_scale).reshape(1, -1, 1, 1)
    scale = _f32(acc_scale / _f32(y_scale))
    yq = requantize_q31(total, scale, y_zero_point, y_zero_point if relu else 0, 255)
    if nhwc:
        yq = yq.permute(0, 2, 3, 1)
    return qtensor(yq.contiguous(), y_scale, y_zero_point)


# --- elementwise -------------------------------------------------------------------------------------


def add(x0: Tensor, x1: Tensor, y_scale: float, y_zero_point: int, relu: bool) -> Tensor:
    """Int8Add / Int8Sum (+Relu): TensorFlow Lite's quantized addition of two same-shaped
    quint8 tensors."""
    a = _bytes(x0, "Int8Add's first input").to(torch.int64)
    c = _bytes(x1, "Int8Add's second input").to(torch.int64)
    if a.numel() != c.numel():
        raise RuntimeError(f"Int8Add: the inputs have shapes {list(x0.shape)} and {list(x1.shape)}; "
                           "Int8Add does not broadcast")
    s0 = _f32(x0.q_scale())
    s1 = _f32(x1.q_scale())
    twice_max = 2.0 * max(s0, s1)
    m0, sh0 = _quantize_multiplier_smaller_than_one(s0 / twice_max)
    m1, sh1 = _quantize_multiplier_smaller_than_one(s1 / twice_max)
    my, shy = _quantize_multiplier_smaller_than_one(twice_max / _f32(1048576.0 * _f32(y_scale)))
    v0 = _mul_by_multiplier((a - x0.q_zero_point()) * 1048576, m0, sh0)
    v1 = _mul_by_multiplier((c.reshape(a.shape) - x1.q_zero_point()) * 1048576, m1, sh1)
    raw = _mul_by_multiplier(v0 + v1, my, shy) + y_zero_point
    return qtensor(torch.clamp(raw, y_zero_point if relu else 0, 255), y_scale, y_zero_point)


def relu(x: Tensor, y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Relu: the bytes clamped below at the zero point (QNNPACK's clamp)."""
    check_same_qparams(x, y_scale, y_zero_point, "Int8Relu")
    q = _bytes(x, "Int8Relu's input")
    return qtensor(torch.clamp(q, min=x.q_zero_point()), x.q_scale(), x.q_zero_point())


def sigmoid(x: Tensor, y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Sigmoid: QNNPACK's 256-entry table lrintf(256 * sigmoid(x_scale * (i - x_zp)))
    (float32), clamped to [0, 255]; the output scale must be 1/256 and its zero point 0."""
    if y_zero_point != 0 or _f32(y_scale) != 0.00390625:
        raise RuntimeError(f"Int8Sigmoid: Y_scale must be 1/256 and Y_zero_point 0, got {y_scale} / {y_zero_point}")
    q = _bytes(x, "Int8Sigmoid's input")
    i = torch.arange(256, dtype=torch.int32, device=q.device)
    v = _f32(x.q_scale()) * (i - x.q_zero_point()).to(torch.float32)
    scaled = 256.0 / (1.0 + torch.exp(-v))
    table = torch.round(torch.clamp(scaled, 0.0, 255.0)).to(torch.uint8)
    return qtensor(table[q.to(torch.int64)], y_scale, y_zero_point)


# --- pooling -----------------------------------------------------------------------------------------


def _pool_pads(x: Tensor, kernel: List[int], stride: List[int], pad: List[int], pad_head: List[int],
               legacy: int) -> List[int]:
    if legacy == 2 or legacy == 3:
        return legacy_pad_list([x.size(2), x.size(3)], kernel, stride, [1, 1], pad_head, legacy)
    return pad


def max_pool(
    x: Tensor, kernel: List[int], stride: List[int], pad: List[int], pad_head: List[int], legacy: int,
    global_pooling: bool, y_scale: float, y_zero_point: int, relu: bool,
) -> Tensor:
    """Int8MaxPool (NHWC): the largest byte of each window (pads never win), clamped at the zero
    point with ``relu``; the output keeps the input's scale and zero point."""
    check_same_qparams(x, y_scale, y_zero_point, "Int8MaxPool")
    q = _bytes(x, "Int8MaxPool's input").to(torch.float32).permute(0, 3, 1, 2)
    if global_pooling:
        y = torch.amax(q, [2, 3], True)
    else:
        p = _pool_pads(q, kernel, stride, pad, pad_head, legacy)
        y = torch.max_pool2d(F.pad(q, p, value=-1.0), kernel, stride, [0, 0], [1, 1], False)
    if relu:
        y = torch.clamp(y, min=float(x.q_zero_point()))
    return qtensor(y.permute(0, 2, 3, 1).contiguous(), x.q_scale(), x.q_zero_point())


def average_pool(
    x: Tensor, kernel: List[int], stride: List[int], pad: List[int], pad_head: List[int], legacy: int,
    global_pooling: bool, y_scale: float, y_zero_point: int, relu: bool,
) -> Tensor:
    """Int8AveragePool (NHWC): QNNPACK's average of each window, pads counting as the zero point
    and the divisor the whole kernel, requantized to (y_scale, y_zero_point)."""
    q = _bytes(x, "Int8AveragePool's input")
    xc = (q.to(torch.float64) - x.q_zero_point()).permute(0, 3, 1, 2)
    io_scale = _f32(_f32(x.q_scale()) / _f32(y_scale))
    h = xc.size(2)
    wd = xc.size(3)
    p = _pool_pads(xc, kernel, stride, pad, pad_head, legacy)
    is_global = global_pooling or (
        p[0] == 0 and p[1] == 0 and p[2] == 0 and p[3] == 0 and stride[0] == 1 and stride[1] == 1
        and h == kernel[0] and wd == kernel[1]
    )
    if is_global:
        area = h * wd
        acc = xc.sum([2, 3], keepdim=True)
        # QNNPACK's global pooling folds the window into the output scale first.
        scale = _f32(_f32(x.q_scale()) / _f32(_f32(y_scale) * float(area)))
    else:
        area = kernel[0] * kernel[1]
        acc = F.avg_pool2d(F.pad(xc, p), kernel, stride, [0, 0], False, True) * float(area)
        scale = _f32(io_scale / float(area))
    acc = torch.round(acc).to(torch.int64)
    yq = _requantize_avgpool(acc, scale, y_zero_point, y_zero_point if relu else 0, 255)
    return qtensor(yq.permute(0, 2, 3, 1).contiguous(), y_scale, y_zero_point)


# --- layout ------------------------------------------------------------------------------------------


def reshape(x: Tensor, shape: List[int], y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Reshape: Caffe2's Reshape of the bytes (0 copies a dim, one -1 is inferred)."""
    check_same_qparams(x, y_scale, y_zero_point, "Int8Reshape")
    q = _bytes(x, "Int8Reshape's input")
    new_shape: List[int] = []
    for i in range(len(shape)):
        if shape[i] == 0:
            if i >= x.dim():
                raise RuntimeError(f"Int8Reshape: shape {shape} copies dim {i} of a rank-{x.dim()} input")
            new_shape.append(x.size(i))
        else:
            new_shape.append(shape[i])
    return qtensor(q.reshape(new_shape), x.q_scale(), x.q_zero_point())


def reshape_from_tensor(x: Tensor, shape: Tensor, y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Reshape with the new shape in a 1-D integer tensor."""
    if shape.dim() != 1:
        raise RuntimeError("Int8Reshape: the shape input should be 1-D")
    values: List[int] = shape.tolist()
    return reshape(x, values, y_scale, y_zero_point)


def shape_of(x: Tensor) -> Tensor:
    """The shape of a tensor as an int64 vector (Int8Reshape's old_shape)."""
    return torch.tensor(list(x.shape), dtype=torch.int64)


def flatten(x: Tensor, axis: int, y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Flatten: 2-D [prod(dims[:axis]), prod(dims[axis:])], same scale and zero point."""
    check_same_qparams(x, y_scale, y_zero_point, "Int8Flatten")
    q = _bytes(x, "Int8Flatten's input")
    if axis < 0 or axis > x.dim():
        raise RuntimeError(f"Int8Flatten: axis {axis} is out of range for a rank-{x.dim()} input")
    return qtensor(q.reshape(_prod(list(x.shape[:axis])), -1), x.q_scale(), x.q_zero_point())


def concat(xs: List[Tensor], axis: int, y_scale: float, y_zero_point: int) -> Tensor:
    """Int8Concat: the bytes concatenated along ``axis``; the output takes the first input's
    scale and zero point (Caffe2 copies the others' bytes as they are)."""
    check_same_qparams(xs[0], y_scale, y_zero_point, "Int8Concat")
    parts: List[Tensor] = []
    for t in xs:
        parts.append(_bytes(t, "Int8Concat's input"))
    return qtensor(torch.cat(parts, axis), xs[0].q_scale(), xs[0].q_zero_point())
