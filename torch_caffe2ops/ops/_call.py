"""How every wrapper calls its op in eager mode: ``calls.<op>(*args)`` (:func:`call` for any packet).

The registered schema (``torch.ops.caffe2ops.<op>.default._schema``) is the one statement of an
op's argument types. The wrappers do not restate it: they call the op at once, and only when
the dispatcher refuses an argument does :func:`check_arguments` read the schema and raise a
:class:`TypeError` that names the wrapper and the argument. The success path therefore costs
one generated Python function over the raw op (a few type tests, one C call to
``_are_functorch_transforms_active`` and one to ``torch.compiler.is_compiling``), and it saves
the packet's own Python frame and overload resolution.

Under a ``torch.func`` transform that differentiates, the call goes to the op's
``autograd.Function`` instead (:mod:`torch_caffe2ops._func`).
"""
import numbers
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

from .. import _func

C2 = torch.ops.caffe2ops
_transforms_active = torch._C._are_functorch_transforms_active


def call(op: Any, *args: Any) -> Any:
    """``op(*args)`` for a wrapper: routed to torch.func's Function under a differentiating
    transform, and with a TypeError naming the argument when the dispatcher refuses one."""
    caller = _CALLERS.get(op)
    if caller is None:
        caller = _make_caller(op)
    return caller(*args)


class _Callers:
    """``calls.<op>(*args)`` is :func:`call` for ``torch.ops.caffe2ops.<op>`` without the
    lookup; the wrappers use it. Every registered op's caller is made at import (below), so
    that Dynamo, tracing a wrapper, only reads an attribute."""

    def __getattr__(self, name: str) -> Callable[..., Any]:  # an op registered later
        caller = _make_caller(getattr(C2, name))
        setattr(self, name, caller)
        return caller


_CALLERS: Dict[Any, Callable[..., Any]] = {}
_is_compiling = torch.compiler.is_compiling


def _make_caller(op: Any) -> Callable[..., Any]:
    """One function per op, generated from its schema (straight-line code costs far less than
    loops over tests): the scalar checks, the torch.func routing, the call.

    The dispatcher converts some scalars the wrappers have always refused (None or a float for
    a bool, a Tensor for a number): those few arguments are tested before the call, by type
    alone, at a few tens of nanoseconds each. The call goes to the C++ entry point of the op's
    one overload (``packet.default._op``: it skips the packet's Python ``__call__`` frame, and
    the packet entry's own overload matching in C++, 0.8 us for a concat of 21 tensors), so a
    ``__torch_function__`` override or mode sees the overload
    (``torch.ops.caffe2ops.<op>.default``) as ``func``, not the packet. Under
    ``torch.compile`` the call goes to the packet itself, which Dynamo knows."""
    name = op._qualified_op_name.split("::")[1]
    env: Dict[str, Any] = {
        "name": name, "op": op, "raw": op.default._op, "check_arguments": check_arguments,
        "transforms_active": _transforms_active, "route": _func.route, "NOT_ROUTED": _func.NOT_ROUTED,
        "is_compiling": _is_compiling,
    }
    lines = ["def caller(*args):", "    n = len(args)"]
    for position, arg in enumerate(op.default._schema.arguments):
        elem, is_list, optional, _ = _kind(arg)
        if is_list or elem not in _FAST_TYPES:
            continue
        env[f"test{position}"] = _SCALARS[elem][0]
        none = "v is None or " if optional else ""
        lines += [
            f"    if n > {position}:",
            f"        v = args[{position}]",
            f"        if not ({none}type(v) in ({_FAST_TYPES[elem]},) or test{position}(v)):",
            "            check_arguments(name, args)",
        ]
    lines += [
        "    if transforms_active():",
        "        routed = route(name, args)",
        "        if routed is not NOT_ROUTED:",
        "            return routed",
        "    if is_compiling():",
        "        return op(*args)",
        "    try:",
        "        return raw(*args)",
        "    except RuntimeError:",
        # The dispatcher refused an argument, or took a value of the wrong kind (None for a
        # Tensor, a Tensor for a number) that the kernel then refused: name the argument.
        "        check_arguments(name, args)",
        "        raise",
    ]
    exec("\n".join(lines), env)
    _CALLERS[op] = env["caller"]
    return env["caller"]


# ---------------------------------------------------------------------------------------
# The argument kinds of the schemas, each with its test and its words. A list argument that
# has a default in the schema (split's `split`) takes None for that default in the wrapper.
# ---------------------------------------------------------------------------------------

_FLOAT_TYPES = (numbers.Real, torch.SymInt, torch.SymFloat)


def _is_int(value: Any) -> bool:
    # Python and NumPy integers (anything with __index__), symbolic sizes; never a float.
    return isinstance(value, torch.SymInt) or (
        hasattr(value, "__index__") and not isinstance(value, (float, torch.Tensor))
    )


def _is_bool(value: Any) -> bool:
    # bool, Caffe2-style 0/1 ints, NumPy bools, symbolic bools
    kind = type(value)
    return isinstance(value, (bool, int, torch.SymBool)) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool")
    )


_SCALARS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "Tensor": (lambda v: isinstance(v, torch.Tensor), "a Tensor"),
    "int": (_is_int, "an int"),
    "SymInt": (_is_int, "an int"),
    "float": (lambda v: isinstance(v, _FLOAT_TYPES), "a float"),
    "bool": (_is_bool, "a bool"),
    "str": (lambda v: isinstance(v, str), "a str"),
    "Generator": (lambda v: isinstance(v, torch.Generator), "a torch.Generator"),
}
_PLURAL = {"Tensor": "Tensors", "int": "ints", "SymInt": "ints"}


# The common exact types of each scalar kind, tested first by identity; anything else (NumPy
# scalars, symbolic sizes) goes to the kind's full test.
_FAST_TYPES = {"int": "int", "SymInt": "int", "float": "float, int", "bool": "bool, int", "str": "str"}


def _kind(arg: Any) -> Tuple[str, bool, bool, bool]:
    """(element type, is a list, the argument may be None, list items may be None)."""
    text = str(arg.type)
    optional = text.startswith("Optional[")
    text = text[len("Optional["):-1] if optional else text
    is_list = text.startswith("List[")
    text = text[len("List["):-1] if is_list else text
    items_optional = text.startswith("Optional[")
    text = text[len("Optional["):-1] if items_optional else text
    if is_list and arg.has_default_value():
        optional = True
    if text not in _SCALARS:
        raise NotImplementedError(f"no argument check for the schema type {arg.type} of '{arg.name}'")
    return text, is_list, optional, items_optional


def _words(elem: str, is_list: bool, optional: bool, items_optional: bool) -> str:
    if not is_list:
        what = _SCALARS[elem][1]
        if elem == "Generator":
            return what + " or None"
        return what + " or None" if optional else what
    what = f"a list of {_PLURAL[elem]}"
    if items_optional:
        what += " (None allowed)"
    return what + " or None" if optional else what


_NOTHING = object()


def _fail(op: str, name: str, expected: str, value: Any, holds: Any = _NOTHING) -> None:
    prefix = f"torch_caffe2ops.ops.{op}: argument '{name}' must be {expected}"
    if holds is not _NOTHING:
        raise TypeError(f"{prefix}, but it holds a {type(holds).__name__}") from None
    raise TypeError(
        f"{prefix}, got {type(value).__name__}"
        + (f" ({value!r})" if isinstance(value, (int, float, str, bool)) else "")
    ) from None


def check_arguments(op: str, args: Sequence[Any]) -> None:
    """Raises the TypeError naming the first argument of `args` that does not fit op's
    registered schema; returns when every argument fits."""
    for arg, value in zip(getattr(C2, op).default._schema.arguments, args):
        elem, is_list, optional, items_optional = _kind(arg)
        if value is None and (optional or elem == "Generator"):
            continue
        test = _SCALARS[elem][0]
        what = _words(elem, is_list, optional, items_optional)
        if not is_list:
            if not test(value):
                _fail(op, arg.name, what, value)
            continue
        if not isinstance(value, (list, tuple)):
            _fail(op, arg.name, what, value)
        for item in value:
            if not (test(item) or (items_optional and item is None)):
                _fail(op, arg.name, what, value, holds=item)


def argument_kinds(op: str) -> List[Tuple[str, str]]:
    """(name, the words of its check) for every argument of `op` (the coverage test reads it:
    every schema type must have a check)."""
    return [(a.name, _words(*_kind(a))) for a in getattr(C2, op).default._schema.arguments]


calls = _Callers()
for _name in sorted({n.split("::")[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                     if n.startswith("caffe2ops::")}):
    setattr(calls, _name, _make_caller(getattr(C2, _name)))
