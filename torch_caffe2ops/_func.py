"""``torch.func`` transforms that differentiate (grad, vjp, jacrev, jacfwd, hessian) through
the :mod:`torch_caffe2ops.ops` wrappers.

Why this exists: every differentiable op's gradient is a C++ ``torch::autograd::Function`` on
the Autograd key, so that gradients also work in a TorchScript model loaded in a fresh process
and from libtorch, and under ``torch.compile`` / ``torch.export``. functorch refuses C++
autograd functions ("cannot use C++ torch::autograd::Function with functorch transforms"), and
in this torch a Python ``torch.library.register_autograd`` formula refuses them too. A Python
``torch.autograd.Function`` with ``setup_context`` is what functorch accepts, so:

* each differentiable op and each non-composite gradient op has one ``autograd.Function``
  here (built from the table ``_SPECS``). Its forward calls the raw ``torch.ops.caffe2ops``
  op (functorch runs it with the transform's wrappers peeled off, so the C++ autograd never
  sees a functorch tensor); its backward and jvp call the *wrappers* in ``ops``, which route
  here again, so nested transforms (grad of grad, hessian = jacfwd(jacrev)) work;
* ``generate_vmap_rule = True`` lets vmap (also the vmap inside jacrev/jacfwd, and
  vmap-of-grad) run the forward through the ops' own batching rules in ``_vmap``; dropout's
  mask therefore still honours ``randomness``;
* the wrappers in ``ops`` route here only while a functorch transform that differentiates is
  active (``active``), so ordinary eager, TorchScript, compile, export, a bare vmap and
  functionalize keep the raw op and its C++ autograd unchanged. A direct
  ``torch.ops.caffe2ops.X`` call under a transform still raises the op's clear message.

The composite gradient ops (batch_sparse_to_dense_gradient, batch_dense_to_sparse_gradient,
concat_gradient) are CompositeImplicitAutograd compositions of ops with C++ autograd; under a
transform their wrappers use the same compositions of routed wrappers (``COMPOSITES``).
split_gradient composes ATen ops only, so the raw op already works under every transform.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from . import ops

_C2 = torch.ops.caffe2ops


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
# Helpers shared by the formulas. `a` is always the Function's full argument list (saved
# tensors put back in place), `t` the tangents (None where an input has none).
# ---------------------------------------------------------------------------------------


def _z(t: Optional[Tensor], like: Tensor) -> Tensor:
    return torch.zeros_like(like) if t is None else t


def _axis(axis: Optional[int], order: Optional[str], rank: int) -> int:
    """Caffe2's concat/split axis rule (the forward already validated the arguments)."""
    if axis is None:
        axis = 3 if (order or "NCHW") == "NHWC" else 1
    return axis + rank if axis < 0 else axis


def _pair_products(indices: Tensor, xs: Sequence[Tensor], ts: Sequence[Tensor]) -> Tensor:
    """d/dt of Y[b, j] = <X_p[b], X_q[b]> along ts: <T_p, X_q> + <X_p, T_q>, (p, q) =
    divmod(indices[j], n). The same ATen formula as the C++ double backward of
    concat_batch_mat_mul_batch_gather_gradient with respect to grad."""
    B, n = xs[0].shape[0], len(xs)
    E = int(torch.Size(xs[0].shape[1:]).numel())
    C = torch.stack([x.reshape(B, E) for x in xs], 1)
    T = torch.stack([t.reshape(B, E) for t in ts], 1)
    S = torch.bmm(T, C.transpose(1, 2))
    return (S + S.transpose(1, 2)).reshape(B, n * n).index_select(1, indices.long())


def _gather_back(gg: Tensor, indices: Tensor, grad_shape: List[int], axis: int, match_outer: bool,
                 data_dim: int) -> Tensor:
    """Derivative of batch_gather_gradient along ggData: batch_gather of ggData viewed as
    [P, M, inner] at `axis` (the C++ BatchGatherGradientFn formula)."""
    axis = axis + data_dim if axis < 0 else axis
    if gg.numel() == 0:
        return gg.new_zeros(grad_shape)
    P = int(torch.Size(gg.shape[:axis]).numel())
    inner = int(torch.Size(gg.shape[axis + 1:]).numel())
    view = gg.reshape(P, gg.shape[axis], inner)
    idx = indices.reshape(P, -1) if match_outer else indices.reshape(-1)
    return ops.batch_gather(view, idx, match_outer).reshape(grad_shape)


def _split_backward(pieces: Sequence[Tensor], axis: int, add_axis: bool) -> Tensor:
    sizes = [1 if add_axis else int(p.shape[axis]) for p in pieces]
    return ops.split_gradient(list(pieces), sizes, axis, add_axis)


def _mrc_tangent(a: List[Any], t1: Tensor, t2: Tensor) -> Tensor:
    X1, X2, Y, margin = a
    d1 = ops.margin_ranking_criterion_gradient(X1, X2, Y, t1.reshape(X1.shape), margin)[0]
    d2 = ops.margin_ranking_criterion_gradient(X1, X2, Y, t2.reshape(X1.shape), margin)[1]
    return d1 + d2.reshape(X1.shape)


def _mm_grad_backward(a: List[Any], ggA: Tensor, ggB: Tensor) -> Tuple[Any, ...]:
    # batch_mat_mul_gradient(g, A, B) is the VJP of the bilinear f(A, B): along (ggA, ggB)
    #   d g = f(ggA, B) + f(A, ggB);  dA = grad_A of f(., ggB) at g;  dB = grad_B of f(ggA, .) at g,
    # and grad_A depends only on the second operand, grad_B only on the first: one call.
    g, A, B, ta, tb, bc = a
    d_g = ops.batch_mat_mul(ggA, B, ta, tb, bc) + ops.batch_mat_mul(A, ggB, ta, tb, bc)
    dA, dB = ops.batch_mat_mul_gradient(g, ggA, ggB, ta, tb, bc)
    return (d_g, dA, dB, None, None, None)


def _mm_grad_jvp(a: List[Any], t: List[Any]) -> Tuple[Tensor, Tensor]:
    g, A, B, ta, tb, bc = a
    x = ops.batch_mat_mul_gradient(_z(t[0], g), A, B, ta, tb, bc)
    y = ops.batch_mat_mul_gradient(g, _z(t[1], A), _z(t[2], B), ta, tb, bc)
    return (x[0] + y[0], x[1] + y[1])


def _moments_grad_backward(a: List[Any], gg: Tensor) -> Tuple[Any, ...]:
    # dX = (dmu[c] + 2 dvar[c] X) / N per channel: along ggX, d dmu = mean_c(ggX),
    # d dvar = 2 mean_c(X ggX), d X = 2 dvar[c] ggX / N.
    dmu, dvar, X, order = a
    return (ops.batch_moments(gg, order)[0], 2 * ops.batch_moments(X * gg, order)[0],
            ops.batch_moments_gradient(torch.zeros_like(dmu), dvar, gg, order), None)


def _moments_grad_jvp(a: List[Any], t: List[Any]) -> Tensor:
    dmu, dvar, X, order = a
    return (ops.batch_moments_gradient(_z(t[0], dmu), _z(t[1], dvar), X, order)
            + ops.batch_moments_gradient(torch.zeros_like(dmu), dvar, _z(t[2], X), order))


# ---------------------------------------------------------------------------------------
# The table: one entry per Function.
#   op:       the raw op, called with the Function's (flattened) arguments;
#   backward: (a, *grads) -> one gradient per argument (None for non-differentiable ones);
#   jvp:      (a, t) -> output tangent(s);
#   nondiff:  indices of outputs that are not differentiable (dropout's mask, split_info);
#   save_out: also save the outputs (dropout's backward needs the mask).
# Ops with list arguments take them flattened at the end (autograd.Function only tracks
# tensors passed directly); list results are returned as tuples.
# ---------------------------------------------------------------------------------------


class _Spec(NamedTuple):
    op: Callable[..., Any]
    backward: Callable[..., Tuple[Any, ...]]
    jvp: Callable[..., Any]
    nondiff: Tuple[int, ...] = ()
    save_out: bool = False


def _concat_spec(depth: bool) -> _Spec:
    raw = _C2.depth_concat if depth else _C2.concat
    split = ops.depth_split if depth else ops.split

    def backward(a, g, _):
        axis, order, add_axis, *xs = a
        ax = _axis(axis, order, xs[0].dim() + int(add_axis))
        sizes = [1 if add_axis else int(x.shape[ax]) for x in xs]
        return (None, None, None, *split(g, None, sizes, ax, None, add_axis))

    def jvp(a, t):
        axis, order, add_axis, *xs = a
        tangents = [_z(ti, x) for ti, x in zip(t[3:], xs)]
        return (ops.concat(tangents, axis, order, add_axis)[0], None)

    return _Spec(lambda axis, order, add_axis, *xs: raw(list(xs), axis, order, add_axis),
                 backward, jvp, nondiff=(1,))


def _split_spec(depth: bool) -> _Spec:
    raw = _C2.depth_split if depth else _C2.split
    wrapper = ops.depth_split if depth else ops.split

    def backward(a, *gs):
        X, _, _, axis, order, add_axis, _ = a
        return (_split_backward(gs, _axis(axis, order, X.dim()), add_axis),) + (None,) * 6

    return _Spec(lambda *args: tuple(raw(*args)), backward,
                 lambda a, t: tuple(wrapper(t[0], *a[1:])))


_SPECS: Dict[str, _Spec] = {
    "batch_permutation": _Spec(
        _C2.batch_permutation,
        lambda a, g: (ops.batch_permutation_gradient(a[1], g), None),
        lambda a, t: ops.batch_permutation(t[0], a[1])),
    "batch_permutation_gradient": _Spec(  # linear in dY; its derivative is the forward op
        _C2.batch_permutation_gradient,
        lambda a, g: (None, ops.batch_permutation(g, a[0])),
        lambda a, t: ops.batch_permutation_gradient(a[0], t[1])),
    "batch_gather": _Spec(
        _C2.batch_gather,
        lambda a, g: (ops.batch_gather_gradient(a[0], a[1], g, 1, a[2]), None, None),
        lambda a, t: ops.batch_gather(t[0], a[1], a[2])),
    "batch_gather_gradient": _Spec(  # linear in grad; reads only data's shape
        _C2.batch_gather_gradient,
        lambda a, g: (None, None, _gather_back(g, a[1], list(a[2].shape), a[3], a[4], a[0].dim()),
                      None, None),
        lambda a, t: ops.batch_gather_gradient(a[0], a[1], t[2], a[3], a[4])),
    "batch_sparse_to_dense": _Spec(  # linear in values; the tangent has default 0
        _C2.batch_sparse_to_dense,
        lambda a, g: (None, None, ops.batch_sparse_to_dense_gradient(a[0], a[1], g).reshape(a[2].shape),
                      None, None, None),
        lambda a, t: ops.batch_sparse_to_dense(a[0], a[1], t[2], a[3], a[4], 0.0)),
    "batch_dense_to_sparse": _Spec(
        _C2.batch_dense_to_sparse,
        lambda a, g: (None, None, ops.batch_dense_to_sparse_gradient(a[0], a[1], g, a[2])),
        lambda a, t: ops.batch_dense_to_sparse(a[0], a[1], t[2])),
    "batch_mat_mul": _Spec(  # bilinear
        _C2.batch_mat_mul,
        lambda a, g: (*ops.batch_mat_mul_gradient(g, *a), None, None, None),
        lambda a, t: (ops.batch_mat_mul(_z(t[0], a[0]), a[1], *a[2:])
                      + ops.batch_mat_mul(a[0], _z(t[1], a[1]), *a[2:]))),
    "batch_mat_mul_gradient": _Spec(_C2.batch_mat_mul_gradient, _mm_grad_backward, _mm_grad_jvp),
    "batch_moments": _Spec(  # mu = E[x], var = E[x^2] (Caffe2's raw second moment)
        _C2.batch_moments,
        lambda a, dmu, dvar: (ops.batch_moments_gradient(dmu, dvar, a[0], a[1]), None),
        lambda a, t: (ops.batch_moments(t[0], a[1])[0], 2 * ops.batch_moments(a[0] * t[0], a[1])[0])),
    "batch_moments_gradient": _Spec(_C2.batch_moments_gradient, _moments_grad_backward, _moments_grad_jvp),
    "concat_batch_mat_mul_batch_gather": _Spec(  # Function args: (indices, *inputs)
        lambda indices, *xs: _C2.concat_batch_mat_mul_batch_gather(indices, list(xs)),
        lambda a, g: (None, *ops.concat_batch_mat_mul_batch_gather_gradient(a[0], list(a[1:]), g)),
        lambda a, t: _pair_products(a[0], a[1:], [_z(ti, x) for ti, x in zip(t[1:], a[1:])])),
    # Function args: (indices, grad, *inputs). Linear in the inputs for a fixed grad (dC =
    # (dS + dS^T) C), and linear in grad.
    "concat_batch_mat_mul_batch_gather_gradient": _Spec(
        lambda indices, grad, *xs: tuple(_C2.concat_batch_mat_mul_batch_gather_gradient(indices, list(xs), grad)),
        lambda a, *gg: (None, _pair_products(a[0], a[2:], gg),
                        *ops.concat_batch_mat_mul_batch_gather_gradient(a[0], list(gg), a[1])),
        lambda a, t: tuple(
            u + v for u, v in zip(
                ops.concat_batch_mat_mul_batch_gather_gradient(
                    a[0], [_z(ti, x) for ti, x in zip(t[2:], a[2:])], a[1]),
                ops.concat_batch_mat_mul_batch_gather_gradient(a[0], list(a[2:]), _z(t[1], a[1]))))),
    "concat": _concat_spec(False),
    "depth_concat": _concat_spec(True),
    "split": _split_spec(False),
    "depth_split": _split_spec(True),
    "split_by_lengths": _Spec(
        lambda *args: tuple(_C2.split_by_lengths(*args)),
        lambda a, *gs: (_split_backward(gs, _axis(a[3], a[4], a[0].dim()), False),) + (None,) * 5,
        lambda a, t: tuple(ops.split_by_lengths(t[0], *a[1:]))),
    "dropout": _Spec(  # Y = X * mask * scale: linear in X; the mask gets no gradient
        _C2.dropout,
        lambda a, g, _, Y, mask: (ops.dropout_gradient(g, None if a[2] else mask, a[1], a[2]), None, None, None),
        lambda a, t, Y, mask: (ops.dropout_gradient(t[0], None if a[2] else mask, a[1], a[2]), None),
        nondiff=(1,), save_out=True),
    "dropout_gradient": _Spec(  # linear in dY
        _C2.dropout_gradient,
        lambda a, g: (ops.dropout_gradient(g, *a[1:]), None, None, None),
        lambda a, t: ops.dropout_gradient(t[0], *a[1:])),
    "margin_ranking_criterion": _Spec(
        _C2.margin_ranking_criterion,
        lambda a, g: (*ops.margin_ranking_criterion_gradient(a[0], a[1], a[2], g, a[3]), None, None),
        lambda a, t: _mrc_tangent(a, _z(t[0], a[0]), _z(t[1], a[1]))),
    # dX1 = -y dLoss [active], dX2 = y dLoss [active]: linear in dLoss, piecewise constant in
    # X1, X2 (zero derivative almost everywhere, as torch's clamp).
    "margin_ranking_criterion_gradient": _Spec(
        _C2.margin_ranking_criterion_gradient,
        lambda a, g1, g2: (None, None, None,
                           (ops.margin_ranking_criterion_gradient(a[0], a[1], a[2], g1, a[4])[0].reshape(a[3].shape)
                            + ops.margin_ranking_criterion_gradient(a[0], a[1], a[2], g2, a[4])[1].reshape(a[3].shape)),
                           None),
        lambda a, t: ops.margin_ranking_criterion_gradient(a[0], a[1], a[2], _z(t[3], a[3]), a[4])),
}


class _Const:
    """A non-tensor list argument (split's sizes), opaque to pytree: functorch flattens the
    Function's arguments with pytree, and a list would count as several inputs."""
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(args: Sequence[Any]) -> List[Any]:
    return [x.value if isinstance(x, _Const) else x for x in args]


def _function(name: str, spec: _Spec) -> type:
    def forward(*args):
        return spec.op(*_unwrap(args))

    def setup_context(ctx, inputs, output):
        outs = output if isinstance(output, tuple) else (output,)
        ctx.tensor_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor)]
        ctx.consts = [None if isinstance(x, Tensor) else x for x in inputs]
        saved = [inputs[i] for i in ctx.tensor_pos] + [o for o in outs if spec.save_out]
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)
        if spec.nondiff:
            ctx.mark_non_differentiable(*[outs[i] for i in spec.nondiff])

    def unpack(ctx) -> Tuple[List[Any], Tuple[Tensor, ...]]:
        saved = ctx.saved_tensors
        a = _unwrap(ctx.consts)
        for k, i in enumerate(ctx.tensor_pos):
            a[i] = saved[k]
        return a, saved[len(ctx.tensor_pos):]

    def backward(ctx, *grads):
        a, outs = unpack(ctx)
        return spec.backward(a, *grads, *outs)

    def jvp(ctx, *tangents):
        a, outs = unpack(ctx)
        return spec.jvp(a, list(tangents), *outs)

    return type(f"{name}_function", (torch.autograd.Function,), {
        "__doc__": f"caffe2ops::{name} for torch.func transforms (see the module docstring).",
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
        "jvp": staticmethod(jvp),
    })


FUNCTIONS: Dict[str, type] = {name: _function(name, spec) for name, spec in _SPECS.items()}


def call(name: str, *args: Any) -> Any:
    """Applies op `name`'s Function; list arguments/results as the ops wrappers take them."""
    if name in ("concat", "depth_concat"):
        inputs, axis, order, add_axis = args
        return FUNCTIONS[name].apply(axis, order, add_axis, *inputs)
    if name == "concat_batch_mat_mul_batch_gather":
        return FUNCTIONS[name].apply(args[0], *args[1])
    if name == "concat_batch_mat_mul_batch_gather_gradient":
        indices, inputs, grad = args
        return list(FUNCTIONS[name].apply(indices, grad, *inputs))
    args = tuple(_Const(x) if isinstance(x, (list, tuple)) else x for x in args)
    out = FUNCTIONS[name].apply(*args)
    return list(out) if name in ("split", "depth_split", "split_by_lengths") else out


# The composite gradient ops: the C++ compositions, over routed wrappers.
COMPOSITES: Dict[str, Callable[..., Any]] = {
    "batch_sparse_to_dense_gradient": lambda lengths, indices, grad_dense: ops.batch_dense_to_sparse(
        lengths, indices, grad_dense),
    "batch_dense_to_sparse_gradient": lambda lengths, indices, grad_values, dense: ops.batch_sparse_to_dense(
        lengths, indices, grad_values, dense, -1, 0.0),
    "concat_gradient": lambda grad_output, split_info, axis, order, add_axis: ops.split(
        grad_output, split_info, [], axis, order, add_axis, -1),
}
