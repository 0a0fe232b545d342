"""The converter registry: which Caffe2 operator types can be imported, and how.

A converter is registered for one Caffe2 type with the arguments Caffe2's operator reads
(name, kind, Caffe2's default). The loader decodes every argument of an OperatorDef against
that list before calling the converter, so a converter only ever sees typed values. An
argument the operator does not read is accepted and ignored, as Caffe2 did (brew's
``arg_scope`` spreads ``order``, ``use_cudnn``, ``exhaustive_search`` ... over every operator of
a scope); the loader records it, ``inspect`` lists it, and ``load_net(..., strict=True)`` makes
it an error instead.

Example (a user-defined operator type)::

    from torch_caffe2ops.caffe2 import Arg, register_converter

    @register_converter("MyScale", args={"scale": 1.0})
    def my_scale(ctx, op):
        return ctx.call(torch.mul, op.inputs[0], op.args["scale"])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from google.protobuf import text_format

from .dtypes import torch_dtype
from .proto import DATA_TYPES
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

    from .context import ConversionContext

KINDS = (
    "int", "float", "bool", "str", "bytes", "ints", "floats", "strings", "byte_strings", "number", "dtype",
    "datatype", "tensor", "tensors", "proto",
)


@dataclass(frozen=True)
class Arg:
    """An argument a converter accepts.

    ``kind`` is how the value is read from the Argument message: ``int``/``bool`` from ``i``,
    ``float`` from ``f`` (an ``i`` is accepted too), ``str`` from ``s``, ``ints``/``floats``/
    ``strings`` from the repeated fields, ``number`` from ``f`` or ``i`` (keeping the Python type),
    ``bytes`` one raw byte string (``s``, or a ``strings`` list of exactly one),
    ``byte_strings`` the raw ``strings``, ``dtype`` a Caffe2 DataType given by number (``i``) or
    name (``s``) as a ``torch.dtype``, ``datatype`` the same as Caffe2's DataType number (also
    for types without a tensor equivalent, such as STRING),
    ``tensor``/``tensors`` the TensorProto message(s) of ``t``/``tensors``, ``proto`` the raw
    Argument. ``default`` is Caffe2's default; ``None`` means "absent" (the
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


def describe_op(op_type: str, role: str, index: int, name: str = "", outputs: Sequence[str] = ()) -> str:
    """How every message names an operator: its type, its net, its index, its name and output
    blobs, e.g. ``FC (predict net operator #4 'fc1', outputs ['fc1'])``."""
    label = f" {name!r}" if name else ""
    outs = f", outputs {list(outputs)}" if outputs else ""
    return f"{op_type} ({role} operator #{index}{label}{outs})"


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
    role: str = "predict net"

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
        return describe_op(self.type, self.role, self.index, self.proto.name, self.output_names)

    def error(self, message: str) -> InvalidArgumentError:
        """An :class:`InvalidArgumentError` for this operator: ``raise op.error("...")``."""
        return InvalidArgumentError(f"{self.describe()}: {message}")


ConverterFn = Callable[["ConversionContext", OpCall], Union["torch.fx.Node", Sequence[Optional["torch.fx.Node"]]]]


@dataclass
class Converter:
    op_type: str
    fn: ConverterFn
    args: dict[str, Arg]
    inputs: tuple[int, Optional[int]]
    outputs: tuple[int, Optional[int]]
    # Arguments Caffe2's operator reads that cannot change the result here (a kernel or
    # engine selector, a GPU math mode): accepted even with strict=True, then dropped.
    ignored: frozenset[str] = frozenset()
    # Input positions Caffe2 never differentiates (the op has no gradient, or the input is a
    # lookup table such as bucket borders). An init-net blob read only at such positions is
    # loaded as a buffer, so that fine-tuning does not ask these ops for a gradient.
    constant_inputs: frozenset[int] = frozenset()
    # Input positions that carry the data a caller feeds ("all", "rest" = from position 1 on);
    # the others hold parameters (weights, biases, embedding tables, constant indices). An
    # init-net blob that the predict net lists as an external input and that operators read
    # only at data positions is a placeholder for an input, not a parameter.
    data_inputs: Union[frozenset[int], str] = frozenset({0})
    doc: str = ""

    def is_constant_input(self, position: int) -> bool:
        return position in self.constant_inputs or (-1 in self.constant_inputs)

    def is_data_input(self, position: int) -> bool:
        if isinstance(self.data_inputs, str):
            return self.data_inputs == "all" or (self.data_inputs == "rest" and position >= 1)
        return position in self.data_inputs


_REGISTRY: dict[str, Converter] = {}


def register_converter(
    op_type: str,
    *,
    args: Optional[dict[str, Any]] = None,
    inputs: tuple[int, Optional[int]] = (0, None),
    outputs: tuple[int, Optional[int]] = (1, None),
    ignored: Sequence[str] = (),
    constant_inputs: Sequence[int] = (),
    data_inputs: Union[Sequence[int], str] = (0,),
    doc: Optional[str] = None,
    replace: bool = False,
) -> Callable[[ConverterFn], ConverterFn]:
    """Register ``fn(ctx, op)`` as the converter of the Caffe2 operator type ``op_type``.

    ``args`` maps the names of the arguments Caffe2's operator reads to their Caffe2 defaults
    (the kind is inferred from the default) or to :class:`Arg`. ``inputs``/``outputs`` give the
    allowed (min, max) blob counts (max ``None`` = unbounded). The function returns one fx node
    per output blob (a single node for one output); it may return more nodes than the
    OperatorDef has outputs. Registering a type twice raises unless ``replace=True``.
    ``ignored`` names arguments the operator reads that cannot change the result (accepted even
    under ``strict=True``); ``constant_inputs`` lists input positions that are never
    differentiated (``-1``: all inputs), so init-net blobs used only there become buffers instead
    of trainable parameters; ``data_inputs`` lists the positions that carry fed data rather
    than parameters (``"all"``, or ``"rest"`` for every position from 1 on), which decides
    whether an init-net blob the net lists as an external input is a placeholder input.
    ``doc`` (else the function's docstring's first line) is the type's entry in the docs' table.
    """
    specs = {name: _arg_from_default(d) for name, d in (args or {}).items()}

    def decorate(fn: ConverterFn) -> ConverterFn:
        if op_type in _REGISTRY and not replace:
            raise ValueError(f"a converter for {op_type!r} is already registered (pass replace=True)")
        if isinstance(data_inputs, str) and data_inputs not in ("all", "rest"):
            raise ValueError(f"data_inputs must be positions, 'all' or 'rest', got {data_inputs!r}")
        text = doc if doc is not None else (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[op_type] = Converter(
            op_type, fn, specs, inputs, outputs, frozenset(ignored), frozenset(constant_inputs),
            data_inputs if isinstance(data_inputs, str) else frozenset(data_inputs), text,
        )
        return fn

    return decorate


def unregister_converter(op_type: str) -> None:
    _REGISTRY.pop(op_type, None)


def get_converter(op_type: str) -> Optional[Converter]:
    return _REGISTRY.get(op_type)


def supported_op_types() -> list[str]:
    return sorted(_REGISTRY)


def _default_text(spec: Arg) -> str:
    if spec.default is None:
        return ""
    if spec.kind == "bool":
        return f"={int(spec.default)}"
    if spec.kind == "str":
        return f'="{spec.default}"'
    return f"={spec.default}"


def converter_table() -> str:
    """The supported operator types as Markdown, one table per converter module (domain):
    type, the arguments Caffe2's operator reads with their defaults, and what it computes."""
    by_domain: dict[str, list[Converter]] = {}
    for conv in sorted(_REGISTRY.values(), key=lambda c: c.op_type):
        module = conv.fn.__module__
        domain = module.rsplit(".", 1)[-1] if ".converters." in module else "user-registered"
        by_domain.setdefault(domain, []).append(conv)
    out = []
    for domain in sorted(by_domain):
        convs = by_domain[domain]
        out.append(f"## {domain} ({len(convs)} types)\n")
        out.append("| Caffe2 type | arguments read (Caffe2's default) | what it computes |")
        out.append("|---|---|---|")
        for conv in convs:
            args = ", ".join(f"`{n}{_default_text(a)}`" for n, a in sorted(conv.args.items())) or "none"
            doc = conv.doc.replace("|", "\\|") or ""
            out.append(f"| `{conv.op_type}` | {args} | {doc} |")
        out.append("")
    return "\n".join(out)


def argument_text(arg: Any) -> str:
    """A one-line rendering of an Argument's value (for error messages)."""
    value = type(arg)()
    value.CopyFrom(arg)
    value.ClearField("name")
    return text_format.MessageToString(value, as_one_line=True) or "(no value)"


def _bad(where: str, arg: Any, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{where}: argument {arg.name!r} = {argument_text(arg)}: {why}")


def decode_arg(where: str, spec: Arg, arg: Any) -> Any:
    """The typed value of ``arg`` read as ``spec.kind``, with Caffe2's field rules; ``where``
    names the operator (:func:`describe_op`)."""
    kind = spec.kind
    if kind == "proto":
        return arg
    if kind in ("int", "bool"):
        if arg.HasField("i"):
            return bool(arg.i) if kind == "bool" else int(arg.i)
        raise _bad(where, arg, f"expected an integer{' flag' if kind == 'bool' else ''} (field i)")
    if kind == "float":
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return float(arg.i)
        raise _bad(where, arg, "expected a float (field f)")
    if kind == "number":
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return int(arg.i)
        raise _bad(where, arg, "expected a number (field f or i)")
    if kind == "str":
        if arg.HasField("s"):
            return arg.s.decode("utf-8", errors="replace")
        raise _bad(where, arg, "expected a string (field s)")
    if kind == "bytes":
        if arg.HasField("s"):
            return bytes(arg.s)
        if len(arg.strings) == 1:
            return bytes(arg.strings[0])
        raise _bad(where, arg, "expected one byte string (field s, or strings with one element)")
    if kind == "byte_strings":
        return [bytes(v) for v in arg.strings]
    if kind == "datatype":
        if arg.HasField("i"):
            return int(arg.i)
        if arg.HasField("s"):
            name = arg.s.decode("utf-8", errors="replace").upper()
            if name in DATA_TYPES:
                return DATA_TYPES[name]
            raise _bad(where, arg, f"unknown Caffe2 DataType name {name!r}")
        raise _bad(where, arg, "expected a Caffe2 DataType (field i, or its name in s)")
    if kind == "dtype":
        # Caffe2 writes the DataType as its number; some writers use its name.
        if arg.HasField("i"):
            code: Union[int, str] = int(arg.i)
        elif arg.HasField("s"):
            code = arg.s.decode("utf-8", errors="replace")
        else:
            raise _bad(where, arg, "expected a Caffe2 DataType (field i, or its name in s)")
        try:
            return torch_dtype(code)
        except ValueError as e:
            raise _bad(where, arg, str(e)) from None
    if kind == "ints":
        if arg.HasField("i") or arg.HasField("f") or len(arg.floats):
            raise _bad(where, arg, "expected a list of integers (field ints)")
        return [int(v) for v in arg.ints]
    if kind == "floats":
        if arg.HasField("i") or arg.HasField("f"):
            raise _bad(where, arg, "expected a list of floats (field floats)")
        return [float(v) for v in arg.floats] or [float(v) for v in arg.ints]
    if kind == "strings":
        return [s.decode("utf-8", errors="replace") for s in arg.strings]
    if kind == "tensor":
        if arg.HasField("t"):
            return arg.t
        raise _bad(where, arg, "expected a tensor (field t)")
    if kind == "tensors":
        return list(arg.tensors)
    raise AssertionError(kind)


@dataclass
class DecodedArgs:
    """An OperatorDef's arguments as its converter reads them."""

    values: dict[str, Any]
    given: frozenset[str]
    # Arguments Caffe2's operator does not read: name -> one-line value.
    unread: dict[str, str]


def decode_args(converter: Converter, op: Any, where: str) -> DecodedArgs:
    """Typed arguments of ``op`` (Caffe2's defaults filled in), the names it sets, and the
    arguments the operator does not read (Caffe2 ignored them; ``load_net(strict=True)`` turns
    them into one error for the whole net)."""
    values = {name: spec.default for name, spec in converter.args.items()}
    given = set()
    unread: dict[str, str] = {}
    for arg in op.arg:
        if arg.name in converter.ignored:
            continue
        spec = converter.args.get(arg.name)
        if spec is None:
            unread[arg.name] = argument_text(arg)
            continue
        values[arg.name] = decode_arg(where, spec, arg)
        given.add(arg.name)
    return DecodedArgs(values, frozenset(given), unread)
