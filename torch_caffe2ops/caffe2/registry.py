"""The converter registry: which Caffe2 operator types can be imported, and how.

A converter is registered for one Caffe2 type with the arguments it understands (name, kind,
Caffe2 default). The loader decodes every argument of an OperatorDef against that list before
calling the converter, so a converter only ever sees typed values, and an argument nobody
declared is an error instead of being silently dropped.

Example (a user-defined operator type)::

    from torch_caffe2ops.caffe2 import Arg, register_converter

    @register_converter("LeakyRelu", args={"alpha": 0.01})
    def leaky_relu(ctx, op):
        return ctx.call(torch.nn.functional.leaky_relu, op.inputs[0], op.args["alpha"])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from google.protobuf import text_format

from .errors import InvalidArgumentError, UnknownArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

    from .context import ConversionContext

KINDS = ("int", "float", "bool", "str", "ints", "floats", "strings", "number", "proto")


@dataclass(frozen=True)
class Arg:
    """An argument a converter accepts.

    ``kind`` is how the value is read from the Argument message: ``int``/``bool`` from ``i``,
    ``float`` from ``f`` (an ``i`` is accepted too), ``str`` from ``s``, ``ints``/``floats``/
    ``strings`` from the repeated fields, ``number`` from ``f`` or ``i`` (keeping the Python type),
    ``proto`` the raw Argument. ``default`` is Caffe2's default; ``None`` means "absent" (the
    converter can tell with ``op.has(name)``).
    """

    kind: str
    default: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Arg kind must be one of {KINDS}, got {self.kind!r}")


def _arg_from_default(default: Any) -> Arg:
    if isinstance(default, Arg):
        return default
    if isinstance(default, bool):
        return Arg("bool", default)
    if isinstance(default, int):
        return Arg("int", default)
    if isinstance(default, float):
        return Arg("float", default)
    if isinstance(default, str):
        return Arg("str", default)
    if isinstance(default, (list, tuple)):
        kind = "floats" if any(isinstance(v, float) for v in default) else "ints"
        return Arg(kind, list(default))
    raise TypeError(f"cannot infer the kind of an argument from default {default!r}; pass Arg(kind, default)")


@dataclass
class OpCall:
    """One OperatorDef, as a converter sees it."""

    type: str
    index: int
    proto: Any
    inputs: list["torch.fx.Node"]
    input_names: list[str]
    output_names: list[str]
    args: dict[str, Any]
    given: frozenset[str] = field(default_factory=frozenset)

    def has(self, name: str) -> bool:
        """Whether the OperatorDef sets ``name`` (Caffe2's ``HasArgument``)."""
        return name in self.given

    @property
    def num_outputs(self) -> int:
        return len(self.output_names)

    @property
    def engine(self) -> str:
        return self.proto.engine

    def describe(self) -> str:
        label = f" {self.proto.name!r}" if self.proto.name else ""
        return f"operator #{self.index} ({self.type}{label}, outputs {list(self.output_names)})"


ConverterFn = Callable[["ConversionContext", OpCall], Union["torch.fx.Node", Sequence[Optional["torch.fx.Node"]]]]


@dataclass
class Converter:
    op_type: str
    fn: ConverterFn
    args: dict[str, Arg]
    inputs: tuple[int, Optional[int]]
    outputs: tuple[int, Optional[int]]
    # Arguments Caffe2 accepts on this type that cannot change the result (e.g. a kernel
    # selector); they are checked to exist and then dropped.
    ignored: frozenset[str] = frozenset()
    # Input positions Caffe2 never differentiates (the op has no gradient, or the input is a
    # lookup table such as bucket borders). An init-net blob read only at such positions is
    # loaded as a buffer, so that fine-tuning does not ask these ops for a gradient.
    constant_inputs: frozenset[int] = frozenset()

    def is_constant_input(self, position: int) -> bool:
        return position in self.constant_inputs or (-1 in self.constant_inputs)


_REGISTRY: dict[str, Converter] = {}


def register_converter(
    op_type: str,
    *,
    args: Optional[dict[str, Any]] = None,
    inputs: tuple[int, Optional[int]] = (0, None),
    outputs: tuple[int, Optional[int]] = (1, None),
    ignored: Sequence[str] = (),
    constant_inputs: Sequence[int] = (),
    replace: bool = False,
) -> Callable[[ConverterFn], ConverterFn]:
    """Register ``fn(ctx, op)`` as the converter of the Caffe2 operator type ``op_type``.

    ``args`` maps argument names to Caffe2 defaults (the kind is inferred from the default) or
    to :class:`Arg`. ``inputs``/``outputs`` give the allowed (min, max) blob counts (max
    ``None`` = unbounded). The function returns one fx node per output blob (a single node for
    one output); it may return more nodes than the OperatorDef has outputs. Registering a type
    twice raises unless ``replace=True``. ``ignored`` names arguments that are accepted and
    dropped because they cannot change the result; ``constant_inputs`` lists input positions
    that are never differentiated (``-1``: all inputs), so init-net blobs used only there
    become buffers instead of trainable parameters.
    """
    specs = {name: _arg_from_default(d) for name, d in (args or {}).items()}

    def decorate(fn: ConverterFn) -> ConverterFn:
        if op_type in _REGISTRY and not replace:
            raise ValueError(f"a converter for {op_type!r} is already registered (pass replace=True)")
        _REGISTRY[op_type] = Converter(
            op_type, fn, specs, inputs, outputs, frozenset(ignored), frozenset(constant_inputs)
        )
        return fn

    return decorate


def unregister_converter(op_type: str) -> None:
    _REGISTRY.pop(op_type, None)


def get_converter(op_type: str) -> Optional[Converter]:
    return _REGISTRY.get(op_type)


def supported_op_types() -> list[str]:
    return sorted(_REGISTRY)


def argument_text(arg: Any) -> str:
    """A one-line rendering of an Argument's value (for error messages)."""
    value = type(arg)()
    value.CopyFrom(arg)
    value.ClearField("name")
    return text_format.MessageToString(value, as_one_line=True) or "(no value)"


def _bad(op_type: str, where: str, arg: Any, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{op_type} ({where}): argument {arg.name!r} = {argument_text(arg)}: {why}")


def decode_arg(op_type: str, where: str, spec: Arg, arg: Any) -> Any:
    """The typed value of ``arg`` read as ``spec.kind``, with Caffe2's field rules."""
    kind = spec.kind
    if kind == "proto":
        return arg
    if kind in ("int", "bool"):
        if arg.HasField("i"):
            return bool(arg.i) if kind == "bool" else int(arg.i)
        raise _bad(op_type, where, arg, f"expected an integer{' flag' if kind == 'bool' else ''} (field i)")
    if kind == "float":
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return float(arg.i)
        raise _bad(op_type, where, arg, "expected a float (field f)")
    if kind == "number":
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return int(arg.i)
        raise _bad(op_type, where, arg, "expected a number (field f or i)")
    if kind == "str":
        if arg.HasField("s"):
            return arg.s.decode("utf-8")
        raise _bad(op_type, where, arg, "expected a string (field s)")
    if kind == "ints":
        if arg.HasField("i") or arg.HasField("f") or len(arg.floats):
            raise _bad(op_type, where, arg, "expected a list of integers (field ints)")
        return [int(v) for v in arg.ints]
    if kind == "floats":
        if arg.HasField("i") or arg.HasField("f"):
            raise _bad(op_type, where, arg, "expected a list of floats (field floats)")
        return [float(v) for v in arg.floats] or [float(v) for v in arg.ints]
    if kind == "strings":
        return [s.decode("utf-8") for s in arg.strings]
    raise AssertionError(kind)


def decode_args(converter: Converter, op: Any, where: str) -> tuple[dict[str, Any], frozenset[str]]:
    """Typed arguments of ``op`` (defaults filled in) and the set of names it sets.

    Raises :class:`UnknownArgumentError` naming the operator, the argument and its value for an
    argument the converter does not declare.
    """
    values = {name: spec.default for name, spec in converter.args.items()}
    given = set()
    for arg in op.arg:
        if arg.name in converter.ignored:
            continue
        spec = converter.args.get(arg.name)
        if spec is None:
            known = ", ".join(sorted(converter.args)) or "none"
            raise UnknownArgumentError(
                f"{op.type} ({where}): unknown argument {arg.name!r} = {argument_text(arg)}; "
                f"the {op.type} converter understands: {known}. Register a replacement converter "
                f"(register_converter({op.type!r}, ..., replace=True)) if it matters."
            )
        values[arg.name] = decode_arg(op.type, where, spec, arg)
        given.add(arg.name)
    return values, frozenset(given)
