"""torch.func through the torch_caffe2ops.ops wrappers (torch_caffe2ops/_func.py) where a property
is more specific than the generic check of tests/test_samples.py (which compares jacrev,
jacfwd and the Hessian of every differentiable sample with the C++ autograd): dropout with a
random mask, vmap of grad and grad of vmap, the nn modules, routing only under differentiating
transforms, and direct torch.ops.caffe2ops calls keeping the clear "not supported" message
(their gradient is the C++ autograd function). References are ATen compositions in float64.
"""
import pytest
import torch
from torch.func import grad, hessian, jacfwd, jacrev, vmap

import samples
from torch_caffe2ops import nn as C2nn
from torch_caffe2ops import ops

F64 = dict(dtype=torch.float64)


def _t(*shape):
    return torch.randn(*shape, **F64)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_dropout_with_a_random_mask():
    """The dropout samples draw nothing (ratio 0, test mode); with ratio > 0 every transform
    differentiates through the mask the forward drew, scaled by 1 / (1 - ratio)."""
    x = samples.by_op()["dropout"][0].args()[0].detach()
    ratio, seed = 0.4, 7

    def c2(x):
        torch.manual_seed(seed)
        return ops.dropout(x, ratio)[0]

    torch.manual_seed(seed)
    mask = ops.dropout(torch.ones_like(x), ratio)[1]
    assert 0 < mask.sum() < mask.numel()

    def aten(x):  # what aten.native_dropout_backward computes, written out: it has no forward-mode AD
        return x * mask * (1.0 / (1.0 - ratio))

    def loss(f):  # non-linear in the output, so the Hessian sees more than the op
        def scalar(x):
            y = f(x)
            return (y.sin() * y).sum()
        return scalar
    for transform in (grad, hessian, lambda f: jacrev(jacrev(f))):
        _close(transform(loss(c2))(x), transform(loss(aten))(x))
    for transform in (jacrev, jacfwd):
        _close(transform(c2)(x), transform(aten)(x))


def test_vmap_of_grad():
    torch.manual_seed(2)
    A, Bs = _t(2, 3, 4), _t(5, 2, 4, 2)
    f_c2 = grad(lambda a, b: (ops.batch_mat_mul(a, b) ** 2).sum(), argnums=1)
    f_aten = grad(lambda a, b: (torch.matmul(a, b) ** 2).sum(), argnums=1)
    _close(vmap(f_c2, in_dims=(None, 0))(A, Bs), vmap(f_aten, in_dims=(None, 0))(A, Bs))
    idx = torch.tensor([[0, 2], [1, 1]])
    D = _t(4, 2, 3, 2)
    g_c2 = grad(lambda d, i: (ops.batch_gather(d, i, True) ** 3).sum())
    g_aten = grad(lambda d, i: (torch.stack([d[b, i[b]] for b in range(2)]) ** 3).sum())
    _close(vmap(g_c2, in_dims=(0, None))(D, idx), vmap(g_aten, in_dims=(0, None))(D, idx))
    # and grad over vmap
    W = _t(2, 3)
    _close(grad(lambda w: vmap(lambda a: ops.batch_mat_mul(a, w, broadcast=True))(Bs).pow(2).sum())(W),
           grad(lambda w: vmap(lambda a: torch.matmul(a, w))(Bs).pow(2).sum())(W))


def test_vmap_of_grad_dropout_honours_randomness():
    X = _t(3, 6)
    f = grad(lambda x: ops.dropout(x, 0.5)[0].sum())
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(f)(X)
    same = vmap(f, randomness="same")(X)
    assert torch.equal(same, same[:1].expand_as(same))  # one mask for every sample
    assert set(same.unique().tolist()) <= {0.0, 2.0}
    different = vmap(f, randomness="different")(_t(64, 6))
    assert not torch.equal(different, different[:1].expand_as(different))


def test_nn_modules_under_torch_func():
    torch.manual_seed(3)
    x1, x2 = _t(5), _t(5)
    y = torch.tensor([1, -1, 1, -1, 1])
    x1 = x1 + 0.3 * torch.sign(x1 - x2 + y / 2)
    crit = C2nn.MarginRankingCriterion(margin=0.2, reduction="mean")
    _close(grad(crit, argnums=(0, 1))(x1, x2, y),
           grad(lambda a, b: (-y * (a - b) + 0.2).clamp_min(0).mean(), argnums=(0, 1))(x1, x2))
    moments = C2nn.BatchMoments()
    X = _t(2, 3, 2, 1)
    _close(jacrev(lambda x: moments(x)[1])(X), jacrev(lambda x: (x * x).mean((0, 2, 3)))(X))
    drop = C2nn.Dropout(0.5).eval()  # test mode: the identity
    _close(jacrev(drop)(X[0, 0]), torch.eye(2, **F64).reshape(2, 1, 2, 1))
    # functional_call over a module's parameters (how torch.func is used with nn.Module)
    lin = torch.nn.Linear(3, 3).double()
    params = dict(lin.named_parameters())
    x = _t(4, 3)

    def run(moments_fn):
        return grad(lambda p: moments_fn(torch.func.functional_call(lin, p, (x,)).reshape(2, 3, 2, 1)).sum())(params)
    _close(run(lambda y: moments(y)[1]), run(lambda y: (y * y).mean((0, 2, 3))))


def test_direct_op_calls_keep_the_clear_error():
    """torch.ops.caffe2ops.X has only the C++ autograd (TorchScript, libtorch, compile, export);
    functorch refuses it, and the error says so in the op's words."""
    X = _t(4, 3)
    idx = torch.tensor([1, 0, 3, 2])
    with pytest.raises(RuntimeError, match=r"caffe2ops::batch_permutation: torch\.func transforms.*not supported"):
        grad(lambda x: torch.ops.caffe2ops.batch_permutation(x, idx).sum())(X)
    with pytest.raises(RuntimeError, match=r"caffe2ops::batch_mat_mul: torch\.func transforms"):
        jacrev(lambda a: torch.ops.caffe2ops.batch_mat_mul(a, a, False, True))(X)
    # the wrapper of the same op works
    _close(grad(lambda x: ops.batch_permutation(x, idx).sum())(X), torch.ones_like(X))


def test_routing_only_under_transforms():
    """Plain eager calls keep the C++ autograd nodes (what TorchScript and libtorch use)."""
    X = _t(3, 2).requires_grad_()
    Y = ops.batch_permutation(X, torch.tensor([2, 1, 0]))
    assert "BatchPermutationFn" in Y.grad_fn.name()  # the C++ CppNode, not a Python Function


def test_bare_vmap_and_functionalize_keep_the_raw_ops():
    """Only differentiating transforms route: a bare vmap keeps the ops' batching rules (no
    fallback), and functionalize (no rule for Python autograd.Functions) the raw op."""
    torch._C._functorch._set_vmap_fallback_enabled(False)
    try:
        A, B = _t(4, 2, 3, 5), _t(4, 2, 5, 2)
        _close(vmap(ops.batch_mat_mul)(A, B), torch.stack([ops.batch_mat_mul(a, b) for a, b in zip(A, B)]))
        X = _t(3, 8)
        with pytest.raises(RuntimeError, match="randomness"):
            vmap(lambda x: ops.dropout(x, 0.5))(X)
        _, mask = vmap(lambda x: ops.dropout(x, 0.5), randomness="same")(X)
        assert torch.equal(mask, mask[:1].expand_as(mask))
    finally:
        torch._C._functorch._set_vmap_fallback_enabled(True)
    A, B = _t(2, 3, 4), _t(2, 4, 4)

    def f(a, b):
        return ops.split(ops.batch_mat_mul(a, b), split=[1, 1], axis=0)[0] * 2
    _close(torch.func.functionalize(f)(A, B), f(A, B))


def test_transform_mixed_with_ordinary_autograd():
    """A parameter that requires grad outside the transform gets the same gradient as ATen."""
    x = _t(2, 3)
    got = []
    for mm in (ops.batch_mat_mul, torch.matmul):
        W = torch.randn(3, 3, **F64, generator=torch.Generator().manual_seed(0)).requires_grad_()
        grad(lambda x: mm(x, W).pow(2).sum())(x).pow(2).sum().backward()
        got.append(W.grad)
    _close(*got)
