"""Converters for Caffe2's row-wise quantization and half-precision conversion operators:
FloatToFused{8,4,2}BitRowwiseQuantized and back (float32 or float16 on either side, 8-bit with a
float32 or float16 scale/bias), the older FloatToRowwiseQuantized8Bits / Rowwise8BitQuantizedToFloat
pair, FloatToHalf and HalfToFloat. The lookups on quantized tables are in ``sparse_lengths``.
"""
from __future__ import annotations

from .. import functional_quantized as fq
from ..context import ConversionContext
from ..registry import OpCall, register_converter


def _reject_greedy(op: OpCall) -> None:
    if op.engine == "GREEDY":
        raise op.error("engine GREEDY (a greedy search of each row's range) is not supported; "
                       "the default engine's min/max quantization is")


def _to_fused(op_type: str, bits: int, half_input: bool, half_scale_bias: bool, doc: str) -> None:
    @register_converter(op_type, inputs=(1, 1), outputs=(1, 1), constant_inputs=(-1,), doc=doc)
    def convert(ctx: ConversionContext, op: OpCall):
        if bits == 8 and not half_scale_bias:
            return ctx.call(fq.float_to_fused_8bit, op.inputs[0], half_input)
        if bits != 8:
            _reject_greedy(op)
        # Caffe2's float16-input 4/2-bit path divides by the scale; the others multiply by its inverse.
        divide = half_input and bits != 8
        return ctx.call(fq.float_to_fused_nbit, op.inputs[0], bits, half_input, divide)


def _from_fused(op_type: str, bits: int, half_scale_bias: bool, to_half: bool, doc: str) -> None:
    @register_converter(op_type, inputs=(1, 1), outputs=(1, 1), constant_inputs=(-1,), doc=doc)
    def convert(ctx: ConversionContext, op: OpCall):
        return ctx.call(fq.fused_to_float, op.inputs[0], bits, half_scale_bias, to_half)


_SB32 = "float32 scale/bias"
_SB16 = "float16 scale/bias"
_to_fused("FloatToFused8BitRowwiseQuantized", 8, False, False, f"Row-wise 8-bit quantization of a float32 matrix ({_SB32} after each row).")
_to_fused("HalfFloatToFused8BitRowwiseQuantized", 8, True, False, f"Row-wise 8-bit quantization of a float16 matrix ({_SB32} after each row).")
_to_fused("FloatToFused8BitRowwiseQuantizedHalfScaleBias", 8, False, True, f"Row-wise 8-bit quantization of a float32 matrix ({_SB16} after each row).")
_to_fused("HalfFloatToFused8BitRowwiseQuantizedHalfScaleBias", 8, True, True, f"Row-wise 8-bit quantization of a float16 matrix ({_SB16} after each row).")
_from_fused("Fused8BitRowwiseQuantizedToFloat", 8, False, False, f"Dequantizes a fused 8-bit table ({_SB32}) to float32.")
_from_fused("Fused8BitRowwiseQuantizedToHalfFloat", 8, False, True, f"Dequantizes a fused 8-bit table ({_SB32}) to float16.")
_from_fused("Fused8BitRowwiseQuantizedHalfScaleBiasToFloat", 8, True, False, f"Dequantizes a fused 8-bit table ({_SB16}) to float32.")
# Caffe2 registered this one with a float32 output despite its name; the output is Caffe2's.
_from_fused("Fused8BitRowwiseQuantizedHalfScaleBiasToHalfFloat", 8, True, False, f"Dequantizes a fused 8-bit table ({_SB16}) to float32 (sic, as Caffe2 did).")
for _bits in (4, 2):
    _to_fused(f"FloatToFused{_bits}BitRowwiseQuantized", _bits, False, True, f"Row-wise {_bits}-bit quantization of a float32 matrix (packed values, {_SB16}).")
    _to_fused(f"HalfToFused{_bits}BitRowwiseQuantized", _bits, True, True, f"Row-wise {_bits}-bit quantization of a float16 matrix (packed values, {_SB16}).")
    _from_fused(f"Fused{_bits}BitRowwiseQuantizedToFloat", _bits, True, False, f"Dequantizes a fused {_bits}-bit table to float32.")
    _from_fused(f"Fused{_bits}BitRowwiseQuantizedToHalf", _bits, True, True, f"Dequantizes a fused {_bits}-bit table to float16.")


@register_converter("FloatToRowwiseQuantized8Bits", inputs=(1, 1), outputs=(2, 2), constant_inputs=(-1,))
def _float_to_rowwise_8bits(ctx: ConversionContext, op: OpCall):
    """Row-wise 8-bit quantization (rows = dim 0) into a uint8 tensor and a [rows, 2] (scale, bias) matrix."""
    node = ctx.call(fq.float_to_rowwise_8bits, op.inputs[0], name="rowwise_8bits")
    return ctx.unpack(node, 2)


@register_converter("Rowwise8BitQuantizedToFloat", inputs=(2, 2), outputs=(1, 1), constant_inputs=(-1,))
def _rowwise_8bits_to_float(ctx: ConversionContext, op: OpCall):
    """Dequantizes a uint8 tensor with its per-row (scale, bias) matrix: q * scale + bias."""
    return ctx.call(fq.rowwise_8bits_to_float, *op.inputs)


@register_converter("HalfToFloat", inputs=(1, 1), outputs=(1, 1))
def _half_to_float(ctx: ConversionContext, op: OpCall):
    """A float16 tensor as float32."""
    return ctx.call(fq.half_to_float, op.inputs[0])


@register_converter("FloatToHalf", args={"clip": False}, inputs=(1, 1), outputs=(1, 1))
def _float_to_half(ctx: ConversionContext, op: OpCall):
    """A float32 tensor rounded to float16 (`clip`: clamped to the largest finite float16 first)."""
    return ctx.call(fq.float_to_half, op.inputs[0], op.args["clip"])
