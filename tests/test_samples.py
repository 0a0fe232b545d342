"""Every generic check, derived from the sample tables (tests/samples/): gradcheck and
gradgradcheck through the C++ autograd, torch.func through the wrappers against the C++
autograd, vmap against a per-sample loop, and 8 threads against a serial run. (opcheck runs in
each family's test file and CUDA against the CPU in tests/test_cuda.py, from the same tables.)
"""
import threading
import warnings

import pytest
import torch

import samples
from samples import CUDA_ONLY, DIFF, INPLACE, RANDOM
from torch_caffe2ops import _func, ops

ALL = [s for s in samples.all_samples() if CUDA_ONLY not in s.tags]
DIFFERENTIABLE = [s for s in ALL if DIFF in s.tags]


def _ids(cases):
    return [s.id for s in cases]


def _substitute(args, leaves, values):
    """args with each leaf replaced by the value at its position in `leaves`."""
    table = {id(leaf): v for leaf, v in zip(leaves, values)}

    def sub(a):
        if isinstance(a, (list, tuple)):
            return type(a)(sub(v) for v in a)
        return table.get(id(a), a) if isinstance(a, torch.Tensor) else a
    return [sub(a) for a in args]


def _float_outputs(out):
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    return tuple(o for o in outs if o.is_floating_point())


def _function(call, s, args):
    """f(*differentiable inputs) -> the op's floating outputs; random ops reseeded each call."""
    leaves = samples.leaves(args)

    def f(*xs):
        if RANDOM in s.tags:
            torch.manual_seed(0)
        return _float_outputs(call(*_substitute(args, leaves, xs)))
    return f, tuple(x.detach().requires_grad_() for x in leaves)


def _raw(name):
    return getattr(torch.ops.caffe2ops, name)


def _wrapper(name):
    return getattr(ops, name)


@pytest.mark.parametrize("s", DIFFERENTIABLE, ids=_ids(DIFFERENTIABLE))
def test_gradcheck_and_gradgradcheck(s):
    f, xs = _function(_raw(s.op), s, s.args())
    assert torch.autograd.gradcheck(f, xs)
    assert torch.autograd.gradgradcheck(f, xs)


def _jacobian_cpp(f, xs):
    """The Jacobian through the C++ autograd: one backward per output element."""
    outs = f(*xs)
    rows = []
    for o in outs:
        for k in range(o.numel()):
            g = torch.zeros_like(o).reshape(-1)
            g[k] = 1
            grads = torch.autograd.grad(o, xs, g.reshape(o.shape), retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(x) if d is None else d).reshape(-1) for x, d in zip(xs, grads)]))
    n = sum(x.numel() for x in xs)
    return torch.stack(rows) if rows else torch.zeros(0, n, dtype=torch.float64)


def _jacobian_func(transform, f, xs):
    jac = transform(f, argnums=tuple(range(len(xs))))(*[x.detach() for x in xs])
    rows = []
    for o, per_input in zip(f(*xs), jac):
        rows.append(torch.cat([j.reshape(o.numel(), -1) for j in per_input], 1))
    return torch.cat(rows) if rows else None


@pytest.mark.parametrize("s", DIFFERENTIABLE, ids=_ids(DIFFERENTIABLE))
def test_torch_func_equals_cpp_autograd(s):
    """jacrev and jacfwd through the wrapper (the torch.func path) equal the Jacobian of the
    raw op's C++ autograd, and so does jacrev of jacrev against double backward."""
    assert _func.has_path(s.op) or s.op == "split_gradient", f"{s.op} has no torch.func path"
    args = s.args()
    f_cpp, xs = _function(_raw(s.op), s, args)
    f_func, _ = _function(_wrapper(s.op), s, args)
    want = _jacobian_cpp(f_cpp, xs)
    for transform in (torch.func.jacrev, torch.func.jacfwd):
        got = _jacobian_func(transform, f_func, xs)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=f"{s.id}: {transform.__name__}")

    # second order: the gradient of a weighted sum of the first gradient
    def first(fn):
        def g(*x):
            outs = fn(*x)
            loss = sum((o * torch.linspace(0.5, 1.5, o.numel(), dtype=o.dtype).reshape(o.shape)).sum() for o in outs)
            return loss
        return g
    xs2 = [x.detach().requires_grad_() for x in xs]
    grads = torch.autograd.grad(first(f_cpp)(*xs2), xs2, create_graph=True, allow_unused=True)
    used = [g for g in grads if g is not None and g.requires_grad]
    if used:
        second = torch.autograd.grad(sum((g * g).sum() for g in used), xs2, allow_unused=True)
        second = [torch.zeros_like(x) if d is None else d for x, d in zip(xs2, second)]
        got = torch.func.grad(lambda *x: sum((g * g).sum() for g in torch.func.grad(first(f_func), tuple(range(len(x))))(*x)
                                             if g is not None), tuple(range(len(xs))))(*[x.detach() for x in xs])
        torch.testing.assert_close(list(got), second, rtol=1e-9, atol=1e-10)


def _batched(args):
    """Two samples stacked along a new dim 0 for every floating tensor (the second scaled),
    with the matching in_dims; other arguments stay unbatched."""
    def batch(a):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            a = a.detach()
            return torch.stack([a, a * 0.5 + 0.25]), 0
        if isinstance(a, (list, tuple)):
            parts = [batch(v) for v in a]
            return [p[0] for p in parts], [p[1] for p in parts]
        return (a.detach() if isinstance(a, torch.Tensor) else a), None
    parts = [batch(a) for a in args]
    return [p[0] for p in parts], tuple(p[1] for p in parts)


def _select(a, d, b):
    if isinstance(a, list):
        return [_select(v, dv, b) for v, dv in zip(a, d)]
    return a.select(d, b) if d is not None else a


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


VMAP = [s for s in ALL if RANDOM not in s.tags]


@pytest.mark.parametrize("s", VMAP, ids=_ids(VMAP))
def test_vmap_matches_per_sample_loop(s):
    args, in_dims = _batched(s.args())
    fn = _raw(s.op)
    loop_args = [[a.clone() if INPLACE in s.tags and isinstance(a, torch.Tensor) else a for a in args]]
    want = [_outputs(fn(*[_select(a, d, b) for a, d in zip(loop_args[0], in_dims)])) for b in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's slow fallback warns: no warning means a rule ran
        got = _outputs(torch.func.vmap(fn, in_dims=in_dims)(*args))
    assert len(got) == len(want[0])
    for i, g in enumerate(got):
        w = torch.stack([want[0][i], want[1][i]])
        assert g.dtype == w.dtype and g.shape == w.shape, s.id
        torch.testing.assert_close(g, w)


def _run(s, args):
    if INPLACE in s.tags:
        args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    return [o.detach().clone() for o in _outputs(_raw(s.op)(*args))]


def test_threads_match_serial():
    """Every sample from 8 threads at once equals its serial result (inputs shared)."""
    cases = [(s, s.args()) for s in ALL if RANDOM not in s.tags]
    serial = [_run(s, a) for s, a in cases]
    errors = []

    def worker():
        try:
            for _ in range(3):
                for (s, a), want in zip(cases, serial):
                    got = _run(s, a)
                    if not all(torch.equal(g, w) for g, w in zip(got, want)):
                        errors.append(s.id)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
