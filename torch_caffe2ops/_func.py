"""``torch.func`` transforms that differentiate (grad, vjp, jacrev, jacfwd, hessian) through
the :mod:`torch_caffe2ops.ops` wrappers: the machinery. The formulas live beside the wrappers,
one table per family (``torch_caffe2ops/ops/<family>.py``, registered with :func:`register`),
so this module imports nothing of ``ops``.

Why this exists: every differentiable op's gradient is a C++ ``torch::autograd::Function`` on
the Autograd key, so that gradients also work in a TorchScript model loaded in a fresh process
and from libtorch, and under ``torch.compile`` / ``torch.export``. functorch refuses C++
autograd functions ("cannot use C++ torch::autograd::Function with functorch transforms"), and
in this torch a Python ``torch.library.register_autograd`` formula refuses them too. A Python
``torch.autograd.Function`` with ``setup_context`` is what functorch accepts, so:

* each differentiable op and each non-composite gradient op has one ``autograd.Function``
  (built here from its family's ``Formula`` table). Its forward calls the raw ``torch.ops.caffe2ops``
  op (functorch runs it with the transform's wrappers peeled off, so the C++ autograd never
  sees a functorch tensor); its backward and jvp call the *wrappers* in ``ops``, which route
  here again, so nested transforms (grad of grad, hessian = jacfwd(jacrev)) work;
* ``generate_vmap_rule = True`` lets vmap (also the vmap inside jacrev/jacfwd, and
  vmap-of-grad) run the forward through the ops' own batching rules in ``_vmap``; dropout's
  mask therefore still honours ``randomness``;
* the wrappers in ``ops`` route here (:func:`route`) only while a functorch transform that
  differentiates is active (``active``), so ordinary eager, TorchScript, compile, export, a bare vmap and
  functionalize keep the raw op and its C++ autograd unchanged. A direct
  ``torch.ops.caffe2ops.X`` call under a transform still raises the op's clear message.

The composite gradient ops (batch_sparse_to_dense_gradient, batch_dense_to_sparse_gradient,
concat_gradient) are CompositeImplicitAutograd compositions of ops with C++ autograd; under a
transform their wrappers use the same compositions of routed wrappers (``register_composites``).
split_gradient composes ATen ops only, so the raw op already works under every transform.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor


_DIFFERENTIATING = (torch._C._functorch.TransformType.Grad, torch._C._functorch.TransformType.Jvp)
_FUNCTIONALIZE = torch._C._functorch.TransformType.Functionalize


def active() -> bool:
    """Whether the wrappers should route here: a functorch transform that differentiates
    (grad, vjp, jacrev, jacfwd, hessian) is running, possibly under or over vmap.

    Outside transforms this costs one C call (``_are_functorch_transforms_active``), checked
    after ``torch.compiler.is_compiling()``, which dynamo folds to a constant, so compiled and
    exported graphs never contain the routing. A bare vmap keeps the raw op (its batching rule
    is enough), and so does anything under functionalize, which has no rule for Python
    autograd.Functions (the raw op works under a bare functionalize).
    """
    if torch.compiler.is_compiling() or not torch._C._are_functorch_transforms_active():
        return False
    keys = [i.key() for i in torch._C._functorch.get_interpreter_stack() or ()]
    return _FUNCTIONALIZE not in keys and any(k in _DIFFERENTIATING for k in keys)


# ---------------------------------------------------------------------------------------
# Helpers shared by the families' formulas. `a` is always the Function's full argument list
# (saved tensors put back in place), `t` the tangents (None where an input has none).
# ---------------------------------------------------------------------------------------


def zero_if_none(t: Optional[Tensor], like: Tensor) -> Tensor:
    return torch.zeros_like(like) if t is None else t


def canonical_axis(axis: Optional[int], order: Optional[str], rank: int) -> int:
    """The concat/split axis: `axis`, else 1 for "NCHW" (the default order) and 3 for "NHWC";
    negative counts from the end (the forward already validated the arguments)."""
    if axis is None:
        axis = 3 if (order or "NCHW").upper() == "NHWC" else 1
    return axis + rank if axis < 0 else axis


# ---------------------------------------------------------------------------------------
# One Formula per Function:
#   op:       the raw op, called with the Function's (flattened) arguments;
#   backward: (a, *grads) -> one gradient per argument (None for non-differentiable ones);
#   jvp:      (a, t) -> output tangent(s);
#   nondiff:  indices of outputs that are not differentiable (dropout's mask, split_info);
#   save_out: also save the outputs (dropout's backward needs the mask);
#   pack:     the wrapper's arguments -> the Function's (autograd.Function only tracks tensors
#             passed directly, so a list of tensors goes flat; default: other lists opaque);
#   unpack:   the Function's result -> the wrapper's (list results come back as tuples).
# ---------------------------------------------------------------------------------------


class Formula(NamedTuple):
    op: Callable[..., Any]
    backward: Callable[..., Tuple[Any, ...]]
    jvp: Callable[..., Any]
    nondiff: Tuple[int, ...] = ()
    save_out: bool = False
    pack: Optional[Callable[..., Tuple[Any, ...]]] = None
    unpack: Optional[Callable[[Any], Any]] = None


class _Const:
    """A non-tensor list argument (split's sizes), opaque to pytree: functorch flattens the
    Function's arguments with pytree, and a list would count as several inputs."""
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(args: Sequence[Any]) -> List[Any]:
    return [x.value if isinstance(x, _Const) else x for x in args]


def _default_pack(*args: Any) -> Tuple[Any, ...]:
    return tuple(_Const(x) if isinstance(x, (list, tuple)) else x for x in args)


def _function(name: str, formula: Formula) -> type:
    def forward(*args):
        return formula.op(*_unwrap(args))

    def setup_context(ctx, inputs, output):
        outs = output if isinstance(output, tuple) else (output,)
        ctx.tensor_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor)]
        ctx.consts = [None if isinstance(x, Tensor) else x for x in inputs]
        saved = [inputs[i] for i in ctx.tensor_pos] + [o for o in outs if formula.save_out]
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)
        if formula.nondiff:
            ctx.mark_non_differentiable(*[outs[i] for i in formula.nondiff])

    def unpack(ctx) -> Tuple[List[Any], Tuple[Tensor, ...]]:
        saved = ctx.saved_tensors
        a = _unwrap(ctx.consts)
        for k, i in enumerate(ctx.tensor_pos):
            a[i] = saved[k]
        return a, saved[len(ctx.tensor_pos):]

    def backward(ctx, *grads):
        a, outs = unpack(ctx)
        return formula.backward(a, *grads, *outs)

    def jvp(ctx, *tangents):
        a, outs = unpack(ctx)
        return formula.jvp(a, list(tangents), *outs)

    return type(f"{name}_function", (torch.autograd.Function,), {
        "__doc__": f"caffe2ops::{name} for torch.func transforms (see the module docstring).",
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
        "jvp": staticmethod(jvp),
    })


FORMULAS: Dict[str, Formula] = {}
FUNCTIONS: Dict[str, type] = {}
# The composite gradient ops: the C++ compositions, over routed wrappers.
COMPOSITES: Dict[str, Callable[..., Any]] = {}
NOT_ROUTED = object()


def register(formulas: Dict[str, Formula]) -> None:
    """A family's Functions, by op name."""
    for name, formula in formulas.items():
        FORMULAS[name] = formula
        FUNCTIONS[name] = _function(name, formula)


def register_composites(compositions: Dict[str, Callable[..., Any]]) -> None:
    COMPOSITES.update(compositions)


def has_path(name: str) -> bool:
    """Whether op `name` has a torch.func path (a Function or a routed composition)."""
    return name in FUNCTIONS or name in COMPOSITES


def call(name: str, *args: Any) -> Any:
    """Applies op `name`'s Function to the wrapper's arguments (`args` as the op takes them)."""
    formula = FORMULAS[name]
    out = FUNCTIONS[name].apply(*(formula.pack or _default_pack)(*args))
    return formula.unpack(out) if formula.unpack is not None else out


def route(name: str, args: Sequence[Any]) -> Any:
    """The wrapper's result through torch.func's path while a differentiating transform is
    active; NOT_ROUTED otherwise (the wrapper then calls the raw op)."""
    if not active():
        return NOT_ROUTED
    if name in FUNCTIONS:
        return call(name, *args)
    if name in COMPOSITES:
        return COMPOSITES[name](*args)
    return NOT_ROUTED
