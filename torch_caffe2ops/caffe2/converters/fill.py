"""Converters for Caffe2's filler operators (init nets, and ConstantFill in predict nets).

A filler without an input has a shape known at conversion time: its value is computed once,
when the net is loaded, and stored as a constant (random fills draw from torch's default
generator, so ``torch.manual_seed`` makes a load reproducible). A filler with an input takes
its shape from that input at run time (``input_as_shape``: from its values) followed by
``extra_shape``, as Caffe2's FillerOp does.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import torch

from .. import functional as fn
from ..context import ConversionContext
from ..proto import DATA_TYPES
from ..registry import Arg, OpCall, register_converter

_SHAPE_ARGS = {"shape": Arg("ints", []), "extra_shape": Arg("ints", []), "input_as_shape": False}

# The largest filler made at load time. A net asking for more is corrupt or hostile: refusing
# it is better than committing the machine's memory (2**31 float32 elements are 8 GiB).
MAX_FILL_ELEMENTS = 2**31


def _static_shape(op: OpCall) -> Optional[list[int]]:
    """The output shape when the filler has no input, checking Caffe2's argument rules."""
    if op.inputs:
        if op.args["shape"]:
            raise op.error("cannot set the shape argument and pass in an input at the same time")
        return None
    if op.args["extra_shape"]:
        raise op.error("cannot set extra_shape when there is no input")
    if op.args["input_as_shape"]:
        raise op.error("an input must be given if input_as_shape is true")
    shape = list(op.args["shape"])
    numel = 1
    for d in shape:
        if d < 0:
            raise op.error(f"argument 'shape' = {shape} has a negative dimension")
        numel *= d
    if numel > MAX_FILL_ELEMENTS:
        raise op.error(
            f"argument 'shape' = {shape} asks for {numel} elements, more than the {MAX_FILL_ELEMENTS} "
            "a filler may make at load time (torch_caffe2ops.caffe2.converters.fill.MAX_FILL_ELEMENTS)"
        )
    return shape


def _runtime_shape(ctx: ConversionContext, op: OpCall) -> Any:
    return ctx.call(
        fn.fill_shape, op.inputs[0], op.args["extra_shape"], op.args["input_as_shape"], name=f"{ctx.name_hint}_shape"
    )


def _fill(ctx: ConversionContext, op: OpCall, make: Callable[[Any], Any], make_node: Callable[[Any], Any]):
    shape = _static_shape(op)
    if shape is not None:
        with torch.no_grad():
            return ctx.constant(make(shape))
    return make_node(_runtime_shape(ctx, op))


# --- ConstantFill -------------------------------------------------------------------------------


def _constant_fill_dtype(op: OpCall) -> torch.dtype:
    if op.has("dtype"):
        return op.args["dtype"]
    # Without dtype Caffe2 takes the value's field type: f -> FLOAT, i -> INT64.
    if op.has("value") and not isinstance(op.args["value"], float):
        return torch.int64
    return torch.float32


@register_converter(
    "ConstantFill", args={**_SHAPE_ARGS, "value": Arg("number", 0), "dtype": Arg("dtype")}, inputs=(0, 1), outputs=(1, 1)
)
def _constant_fill(ctx: ConversionContext, op: OpCall):
    """A tensor filled with `value` (dtype from `dtype` or the value's field)."""
    dtype = _constant_fill_dtype(op)
    value = op.args["value"]
    value = bool(value) if dtype == torch.bool else (float(value) if dtype.is_floating_point else int(value))
    if op.inputs:
        target = fn.constant_fill_float if dtype.is_floating_point else fn.constant_fill_int
        return ctx.call(
            target, op.inputs[0], op.args["extra_shape"], op.args["input_as_shape"], value if dtype != torch.bool else int(value), dtype
        )
    return _fill(ctx, op, lambda s: torch.full(s, value, dtype=dtype), lambda s: None)


# --- GivenTensor*Fill ---------------------------------------------------------------------------


def _given_tensor_fill(op_type: str, kind: str, default_dtype: torch.dtype, has_dtype_arg: bool = False) -> None:
    args: dict[str, Any] = {**_SHAPE_ARGS, "values": Arg(kind, [])}
    if has_dtype_arg:
        args["dtype"] = Arg("dtype")

    @register_converter(
        op_type, args=args, inputs=(0, 1), outputs=(1, 1), doc=f"A {default_dtype} tensor of `shape` from `values`."
    )
    def convert(ctx: ConversionContext, op: OpCall):
        dtype = default_dtype
        if has_dtype_arg and op.has("dtype"):
            dtype = op.args["dtype"]
        # Argument.floats are float32 on the wire, so a double fill carries float32-rounded values.
        values = torch.tensor(op.args["values"], dtype=torch.float64 if kind == "floats" else torch.int64).to(dtype)
        return _shaped(ctx, op, values)


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


_given_tensor_fill("GivenTensorFill", "floats", torch.float32, has_dtype_arg=True)
_given_tensor_fill("GivenTensorDoubleFill", "floats", torch.float64)
_given_tensor_fill("GivenTensorIntFill", "ints", torch.int32)
_given_tensor_fill("GivenTensorInt64Fill", "ints", torch.int64)
_given_tensor_fill("GivenTensorBoolFill", "ints", torch.bool)


# --- random fills -------------------------------------------------------------------------------


@register_converter("XavierFill", args=dict(_SHAPE_ARGS), inputs=(0, 1), outputs=(1, 1))
def _xavier_fill(ctx: ConversionContext, op: OpCall):
    """Uniform(-s, s), s = sqrt(3 / fan_in)."""
    return _fill(ctx, op, fn.xavier_fill, lambda s: ctx.call(fn.xavier_fill, s))


@register_converter("MSRAFill", args=dict(_SHAPE_ARGS), inputs=(0, 1), outputs=(1, 1))
def _msra_fill(ctx: ConversionContext, op: OpCall):
    """Normal(0, 2 / fan_out)."""
    return _fill(ctx, op, fn.msra_fill, lambda s: ctx.call(fn.msra_fill, s))


@register_converter("GaussianFill", args={**_SHAPE_ARGS, "mean": 0.0, "std": 1.0}, inputs=(0, 1), outputs=(1, 1))
def _gaussian_fill(ctx: ConversionContext, op: OpCall):
    """Normal(mean, std^2)."""
    mean, std = op.args["mean"], op.args["std"]
    return _fill(ctx, op, lambda s: fn.gaussian_fill(s, mean, std), lambda s: ctx.call(fn.gaussian_fill, s, mean, std))


@register_converter("UniformFill", args={**_SHAPE_ARGS, "min": 0.0, "max": 1.0}, inputs=(0, 1), outputs=(1, 1))
def _uniform_fill(ctx: ConversionContext, op: OpCall):
    """Uniform(min, max)."""
    low, high = op.args["min"], op.args["max"]
    if not low < high:
        raise op.error(f"max ({high}) must be bigger than min ({low})")
    return _fill(ctx, op, lambda s: fn.uniform_fill(s, low, high), lambda s: ctx.call(fn.uniform_fill, s, low, high))
_given_tensor_fill("GivenTensorInt16Fill", "ints", torch.int16)
_given_tensor_fill("GivenTensorFp16Fill", "floats", torch.float16)


def _shaped(ctx: ConversionContext, op: OpCall, values: torch.Tensor):
    """``values`` laid out in the filler's shape (static, or from the input at run time)."""
    shape = _static_shape(op)
    if shape is not None:
        if values.numel() != _numel(shape):
            raise op.error(f"{values.numel()} values for shape {shape}")
        return ctx.constant(values.reshape(shape))
    flat = ctx.constant(values, name=f"{ctx.name_hint}_values")
    return ctx.method("reshape", flat, _runtime_shape(ctx, op))


def _uint8(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


@register_converter(
    "GivenTensorByteStringToUInt8Fill",
    args={**_SHAPE_ARGS, "values": Arg("bytes", b""), "dtype": Arg("datatype")},
    inputs=(0, 1),
    outputs=(1, 1),
)
def _byte_string_fill(ctx: ConversionContext, op: OpCall):
    """A uint8 tensor of `shape` whose bytes are the one string in `values` (quantized tables)."""
    # The only dtype Caffe2 accepts here is STRING (the values' type), by number or name.
    if op.has("dtype") and op.args["dtype"] != DATA_TYPES["STRING"]:
        raise op.error(f"dtype = {op.args['dtype']}: the only accepted dtype is STRING (the type of `values`)")
    return _shaped(ctx, op, _uint8(op.args["values"]))


class StringBlob(list):
    """A blob of strings (GivenTensorStringFill): metadata that no tensor operator reads. It is
    kept out of the imported module; an operator of the predict net that reads it is an
    import error."""

    def __init__(self, values: list[bytes], shape: list[int]):
        super().__init__(values)
        self.shape = list(shape)

    def __repr__(self) -> str:
        return f"StringBlob({list(self)!r}, shape={self.shape})"


@register_converter(
    "GivenTensorStringFill", args={**_SHAPE_ARGS, "values": Arg("byte_strings", [])}, inputs=(0, 0), outputs=(1, 1)
)
def _string_fill(ctx: ConversionContext, op: OpCall):
    """Strings of `shape` from `values`: metadata, kept out of the module (an operator reading it is an error)."""
    shape = _static_shape(op)
    values = list(op.args["values"])
    if len(values) != _numel(shape):
        raise op.error(f"{len(values)} values for shape {shape}")
    return ctx.call(StringBlob, values, shape)


def _int8_fill(op_type: str, doc: str) -> None:
    int_values = op_type == "Int8GivenIntTensorFill"
    args = {
        "shape": Arg("ints", []),
        "values": Arg("ints", []) if int_values else Arg("bytes", b""),
        "Y_scale": 1.0,
        "Y_zero_point": 0,
    }

    @register_converter(op_type, args=args, inputs=(0, 0), outputs=(1, 1), doc=doc)
    def convert(ctx: ConversionContext, op: OpCall):
        shape = list(op.args["shape"])
        if int_values:
            raw = torch.tensor(op.args["values"], dtype=torch.int64).to(torch.int32)
        else:
            raw = _uint8(op.args["values"])
        if raw.numel() != _numel(shape):
            raise op.error(f"{raw.numel()} values for shape {shape}")
        scale, zero_point = op.args["Y_scale"], op.args["Y_zero_point"]
        if not int_values and not 0 <= zero_point <= 255:
            raise op.error(f"Y_zero_point = {zero_point} is outside the uint8 range [0, 255]")
        # A quantized tensor keeps the bytes, the scale and the zero point: .dequantize() gives
        # (q - zero_point) * scale, .int_repr() the stored values.
        with warnings.catch_warnings():
            # PyTorch announces the end of quantized dtypes; they are still the one tensor
            # that carries Caffe2's Int8 blob (bytes, scale, zero point) whole.
            warnings.simplefilter("ignore", UserWarning)
            q = torch._make_per_tensor_quantized_tensor(raw.reshape(shape), scale, zero_point)
        return ctx.constant(q)


_int8_fill(
    "Int8GivenTensorFill",
    "A quint8 tensor of `shape` from the bytes of `values` with `Y_scale` and `Y_zero_point`.",
)
_int8_fill(
    "Int8GivenIntTensorFill",
    "A qint32 tensor of `shape` from the integers of `values` with `Y_scale` and `Y_zero_point` (biases).",
)


@register_converter("Float16ConstantFill", args={"value": 0.0, "shape": Arg("ints", [])}, inputs=(0, 0), outputs=(1, 1))
def _float16_constant_fill(ctx: ConversionContext, op: OpCall):
    """A float16 tensor of `shape` filled with `value`."""
    return ctx.constant(torch.full(list(op.args["shape"]), op.args["value"], dtype=torch.float32).to(torch.float16))
