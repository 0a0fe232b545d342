"""Every generic check, derived from the sample tables (tests/samples/): gradcheck and
gradgradcheck through the C++ autograd, torch.func through the wrappers against the C++
autograd (first order, and the Hessian forward-over-reverse and reverse-over-reverse), vmap
against a per-sample loop (under several in_dims patterns), and 8 threads against a serial run.
(opcheck runs in each family's test file and CUDA against the CPU in tests/test_cuda.py, from
the same tables.)

CONCURRENCY_ROUNDS (default 3): passes of each thread over the whole (shuffled) sample list.
"""
import random
import warnings

import pytest
import torch

import samples
from samples import CUDA_ONLY, DIFF, INPLACE, RANDOM
from torch_caffe2ops import _func, ops
from utils import ROUNDS, in_threads

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
    raw op's C++ autograd; grad of grad, hessian (forward over reverse) and jacrev of jacrev
    equal double backward through the C++ autograd."""
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

    # the whole Hessian of a loss non-linear in the outputs: forward-over-reverse (hessian) and
    # reverse-over-reverse through the wrappers, against double backward through the C++ autograd
    want = _hessian_cpp(_nonlinear_loss(f_cpp), xs)
    argnums = tuple(range(len(xs)))
    for name, transform in (("hessian", torch.func.hessian), ("jacrev of jacrev", _jacrev_of_jacrev)):
        got = _flat_hessian(transform(_nonlinear_loss(f_func), argnums)(*[x.detach() for x in xs]), xs)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=f"{s.id}: {name}")


def _jacrev_of_jacrev(f, argnums):
    return torch.func.jacrev(torch.func.jacrev(f, argnums), argnums)


def _nonlinear_loss(f):
    return lambda *xs: sum((o.sin() * o).sum() for o in f(*xs))


def _hessian_cpp(loss, xs):
    """The Hessian through the C++ autograd: one backward per element of the first gradient."""
    xs = [x.detach().requires_grad_() for x in xs]
    grads = torch.autograd.grad(loss(*xs), xs, create_graph=True, allow_unused=True)
    flat = torch.cat([(torch.zeros_like(x) if g is None else g).reshape(-1) for x, g in zip(xs, grads)])
    n = flat.numel()
    if not flat.requires_grad:
        return torch.zeros(n, n, dtype=flat.dtype)
    rows = []
    for k in range(n):
        second = torch.autograd.grad(flat[k], xs, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(x) if d is None else d).reshape(-1) for x, d in zip(xs, second)]))
    return torch.stack(rows)


def _flat_hessian(blocks, xs):
    """torch.func's Hessian blocks ([i][j]: x_i's shape + x_j's shape) as one square matrix."""
    return torch.cat([torch.cat([blocks[i][j].reshape(xi.numel(), xj.numel()) for j, xj in enumerate(xs)], 1)
                      for i, xi in enumerate(xs)])


def _tensor_paths(args):
    """Where the tensors are: (i,) for argument i, (i, j) for item j of a list argument."""
    paths = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            paths.append((i,))
        elif isinstance(a, (list, tuple)):
            paths += [(i, j) for j, v in enumerate(a) if isinstance(v, torch.Tensor)]
    return paths


def _at(args, path):
    return args[path[0]] if len(path) == 1 else args[path[0]][path[1]]


def _in_dims_patterns(s, args):
    """Which tensors vmap batches, and along which dim: every one along dim 0; every one along
    a new last dim; each one alone, along a new last dim; all but one, along dim 0. Index,
    length and mask tensors are batched like the floating ones. An in-place op needs its first
    argument batched (an unbatched one updated once per sample has no per-sample meaning)."""
    paths = _tensor_paths(args)
    last = {p: _at(args, p).dim() for p in paths}
    patterns = [{p: 0 for p in paths}, dict(last)]
    for p in paths:
        patterns += [{p: last[p]}, {q: 0 for q in paths if q != p}]
    out = []
    for pattern in patterns:
        if pattern and pattern not in out and (INPLACE not in s.tags or (0,) in pattern):
            out.append(pattern)
    return out


def _batched(args, pattern):
    """Two samples stacked along the pattern's dim for each tensor it names (a floating one's
    second sample scaled and shifted, any other repeated), with the matching in_dims; the
    other arguments stay unbatched."""
    def batch(a, path):
        if not isinstance(a, torch.Tensor):
            return a, None
        a = a.detach()
        if path not in pattern:
            return a, None
        d = pattern[path]
        return torch.stack([a, a * 0.5 + 0.25 if a.is_floating_point() else a], d), d
    batched, in_dims = [], []
    for i, a in enumerate(args):
        if isinstance(a, (list, tuple)):
            parts = [batch(v, (i, j)) for j, v in enumerate(a)]
            batched.append([p[0] for p in parts])
            in_dims.append([p[1] for p in parts])
        else:
            b, d = batch(a, (i,))
            batched.append(b)
            in_dims.append(d)
    return batched, tuple(in_dims)


def _select(a, d, b):
    if isinstance(a, list):
        return [_select(v, dv, b) for v, dv in zip(a, d)]
    return a.select(d, b) if d is not None else a


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


VMAP = [s for s in samples.all_samples() if samples.runs_under_vmap(s)]


def _clone(args):
    def clone(a):
        return a.detach().clone() if isinstance(a, torch.Tensor) else a
    return [[clone(v) for v in a] if isinstance(a, list) else clone(a) for a in args]


@pytest.mark.parametrize("s", VMAP, ids=_ids(VMAP))
def test_vmap_matches_per_sample_loop(s):
    """vmap (with no fallback: the op's own rule) equals a loop over the samples, whichever
    arguments are batched and along whichever dim; an in-place op updates its batched input."""
    fn = _raw(s.op)
    sample_args = s.args()
    for pattern in _in_dims_patterns(s, sample_args):
        args, in_dims = _batched(sample_args, pattern)
        loop_args = _clone(args) if INPLACE in s.tags else args
        want = [_outputs(fn(*[_select(a, d, b) for a, d in zip(loop_args, in_dims)])) for b in range(2)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # PyTorch's slow fallback warns: no warning means a rule ran
            got = _outputs(torch.func.vmap(fn, in_dims=in_dims)(*args))
        where = f"{s.id} in_dims={in_dims}"
        assert len(got) == len(want[0]), where
        for i, g in enumerate(got):
            w = torch.stack([want[0][i], want[1][i]])
            assert g.dtype == w.dtype and g.shape == w.shape, where
            torch.testing.assert_close(g, w, msg=where)
        if INPLACE in s.tags:
            torch.testing.assert_close(args[0].movedim(in_dims[0], 0), torch.stack([want[0][0], want[1][0]]), msg=where)


def _run(s, args):
    """The sample's outputs, then the gradients of a weighted sum of its floating outputs with
    respect to fresh leaves of its differentiable inputs (torch.autograd.grad accumulates into
    nothing, so threads can share the inputs); an in-place op works on clones."""
    if INPLACE in s.tags:
        args = _clone(args)
    leaves = samples.leaves(args)
    xs = [x.detach().requires_grad_() for x in leaves]
    outs = _outputs(_raw(s.op)(*_substitute(args, leaves, xs)))
    floats = [o for o in outs if o.requires_grad]
    grads = []
    if floats:
        loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype, device=o.device).reshape(o.shape)).sum()
                   for o in floats)
        grads = list(torch.autograd.grad(loss, xs, allow_unused=True))
    return [o.detach() for o in outs] + grads


def _flat(r):
    out = []
    for v in r:
        out.extend(_flat(v) if isinstance(v, (list, tuple)) else [v])
    return out


def _equal(u, v):
    if isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor):
        return u.shape == v.shape and u.dtype == v.dtype and torch.equal(u, v)
    return type(u) is type(v) and u == v  # None, or an argument that is not a tensor


def _same(a, b):
    """Equal bit for bit: the same tensors (shape, dtype, values) where tensors stand, the same
    Nones and other values elsewhere."""
    a, b = _flat(a), _flat(b)
    return len(a) == len(b) and all(_equal(u, v) for u, v in zip(a, b))


def test_threads_match_serial():
    """Every sample (the large ones take the kernels' intra-op parallel paths, so each thread
    runs parallel regions too), forward and backward, from 8 threads at once, each going over
    the shuffled list ROUNDS times: every result equals, bit for bit, the serial one (itself
    the same twice), and the shared inputs come out unchanged."""
    cases = {s.id: (s, s.args()) for s in VMAP}
    assert len(cases) == len(VMAP), "sample ids must be unique"
    snapshot = {k: _clone(a) for k, (_, a) in cases.items()}
    serial = {k: _run(s, a) for k, (s, a) in cases.items()}
    assert [k for k, (s, a) in cases.items() if not _same(_run(s, a), serial[k])] == [], "serial runs differ"
    mismatches = []

    def passes(tid):
        order = list(cases)
        rnd = random.Random(tid)
        for _ in range(ROUNDS):
            rnd.shuffle(order)
            mismatches.extend((tid, k) for k in order if not _same(_run(*cases[k]), serial[k]))
    assert in_threads(passes) == []
    assert mismatches == [], f"results differ from the serial ones: {mismatches[:20]}"
    assert [k for k, (_, a) in cases.items() if not _same(a, snapshot[k])] == [], "shared inputs modified"
