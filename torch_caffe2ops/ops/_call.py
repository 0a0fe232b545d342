"""How every wrapper calls its op in eager mode: :func:`call`.

The registered schema (``torch.ops.caffe2ops.<op>.default._schema``) is the one statement of an
op's argument types. The wrappers do not restate it: they call the op at once, and only when
the dispatcher refuses an argument does :func:`check_arguments` read the schema and raise a
:class:`TypeError` that names the wrapper and the argument. The success path therefore costs
one Python call and one C call (``_are_functorch_transforms_active``) over the raw op.

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
    # The dispatcher converts some scalars the wrappers have always refused (None or a float
    # for a bool, a Tensor for a number): those few arguments are tested before the call, by
    # type alone, at a few tens of nanoseconds each.
    fits = _SCALAR_TESTS.get(op)
    if fits is None:
        fits = _scalar_tests(op)
    if not fits(args):
        check_arguments(op._qualified_op_name.split("::")[1], args)
    if _transforms_active():
        routed = _func.route(op._qualified_op_name.split("::")[1], args)
        if routed is not _func.NOT_ROUTED:
            return routed
    try:
        return op(*args)
    except RuntimeError:
        # The dispatcher refused an argument, or took a value of the wrong kind (None for a
        # Tensor, a Tensor for a number) that the kernel then refused: name the argument.
        check_arguments(op._qualified_op_name.split("::")[1], args)
        raise


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


_SCALAR_TESTS: Dict[Any, Callable[[Sequence[Any]], bool]] = {}
# The common exact types of each scalar kind, tested first by identity; anything else (NumPy
# scalars, symbolic sizes) goes to the kind's full test.
_FAST_TYPES = {"int": "int", "SymInt": "int", "float": "float, int", "bool": "bool, int", "str": "str"}


def _scalar_tests(op: Any) -> Callable[[Sequence[Any]], bool]:
    """A function telling whether op's number, bool and str arguments in ``args`` have types the
    schema takes (None where it allows None), generated once per op from the schema: straight-line
    type tests cost far less than a loop over test functions."""
    lines = ["def fits(args):", "    n = len(args)"]
    env: Dict[str, Any] = {}
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
            "            return False",
        ]
    lines.append("    return True")
    exec("\n".join(lines), env)
    _SCALAR_TESTS[op] = env["fits"]
    return env["fits"]


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
