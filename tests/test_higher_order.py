"""Autograd past first order and vmap, where a property is more specific than the generic checks
of tests/test_samples.py (which run gradcheck, gradgradcheck, torch.func and vmap on every
sample): dropout's double backward with its own mask, the gradient of the fused DLRM
interaction (concat_batch_mat_mul_batch_gather) against NumPy and under torch.compile, vmap
honouring dropout's randomness modes, and the torch.func limit stated in the op's words.
"""
import numpy as np
import pytest
import torch

from utils import rng

C2 = torch.ops.caffe2ops
F64 = dict(dtype=torch.float64, requires_grad=True)


def test_dropout_double_backward_with_its_own_mask():
    torch.manual_seed(0)
    X = torch.randn(4, 5, **F64)
    Y, mask = C2.dropout(X, 0.3)
    (g,) = torch.autograd.grad(Y, X, torch.ones_like(Y), create_graph=True)
    assert torch.equal(g, C2.dropout_gradient(torch.ones_like(Y), mask, 0.3))
    # dropout_gradient is linear in dY: its own derivative is itself
    gg = torch.randn(4, 5, dtype=torch.float64)
    (h,) = torch.autograd.grad(C2.dropout_gradient(X, mask, 0.3), X, gg)
    assert torch.equal(h, C2.dropout_gradient(gg, mask, 0.3))


def ref_ccbmmbg_grad(idx, xs, g):
    B, n = xs[0].shape[0], len(xs)
    E = int(np.prod(xs[0].shape[1:]))
    C = np.stack([x.reshape(B, E) for x in xs], 1)
    dS = np.zeros((B, n * n))
    for j, k in enumerate(idx):
        dS[:, k] += g[:, j]
    dS = dS.reshape(B, n, n)
    dC = (dS + dS.transpose(0, 2, 1)) @ C
    return [dC[:, i].reshape(xs[i].shape) for i in range(n)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("itype", [torch.int32, torch.int64])
def test_ccbmmbg_gradient_matches_numpy(seed, itype):
    r = rng(seed)
    n, B = int(r.integers(1, 5)), int(r.integers(0, 4))
    e = tuple(int(v) for v in r.integers(0 if seed == 4 else 1, 4, size=int(r.integers(0, 3))))
    xs = [r.standard_normal((B,) + e) for _ in range(n)]
    idx = r.integers(0, n * n, size=int(r.integers(0, 8)))  # repeats and p == q included
    g = r.standard_normal((B, len(idx)))
    out = C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor(idx, dtype=itype), [torch.tensor(x) for x in xs], torch.tensor(g))
    for o, ref, x in zip(out, ref_ccbmmbg_grad(idx, xs, g), xs):
        assert o.shape == x.shape
        np.testing.assert_allclose(o.numpy(), ref, rtol=1e-12, atol=1e-12)
    # and through autograd from the forward op, against the cat + bmm + gather composition
    X = [torch.tensor(x, requires_grad=True) for x in xs]
    Xr = [torch.tensor(x, requires_grad=True) for x in xs]
    y = C2.concat_batch_mat_mul_batch_gather(torch.tensor(idx, dtype=itype), X)
    Cr = torch.stack([x.reshape(B, int(np.prod(e))) for x in Xr], 1)
    yr = (Cr @ Cr.transpose(1, 2)).reshape(B, n * n)[:, torch.tensor(idx, dtype=torch.long)]
    torch.testing.assert_close(y, yr)
    if y.numel():
        gy = torch.tensor(g)
        got = torch.autograd.grad(y, X, gy, allow_unused=True)
        want = torch.autograd.grad(yr, Xr, gy, allow_unused=True)
        for a, b in zip(got, want):
            torch.testing.assert_close(a if a is not None else torch.zeros_like(b), b if b is not None else torch.zeros_like(a))


def test_ccbmmbg_gradient_errors():
    xs = [torch.randn(2, 3), torch.randn(2, 3)]
    with pytest.raises(RuntimeError, match="concat_batch_mat_mul_batch_gather_gradient.*grad must have the output's shape"):
        C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor([0, 1]), xs, torch.randn(2, 3))
    with pytest.raises(RuntimeError, match="grad must have the dtype"):
        C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor([0]), xs, torch.randn(2, 1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="value 4 out of range"):
        C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor([4]), xs, torch.randn(2, 1))
    with pytest.raises(RuntimeError, match="device"):
        C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor([0]), xs, torch.randn(2, 1, device="meta"))


def test_ccbmmbg_double_backward_under_compile():
    """The gradient of the gradient (create_graph) compiles and equals eager."""
    def f(a, b):
        y = C2.concat_batch_mat_mul_batch_gather(torch.tensor([1, 3]), [a, b])
        return torch.autograd.grad(y.sum(), [a, b], create_graph=True)

    a, b = torch.randn(4, 3, **F64), torch.randn(4, 3, **F64)
    eager = f(a, b)
    compiled = torch.compile(f, fullgraph=False, dynamic=True)(a, b)
    for x, y in zip(eager, compiled):
        torch.testing.assert_close(x, y)


# ----------------------------------------------------------------------------------- vmap

def test_vmap_dropout_randomness_modes():
    X = torch.randn(4, 1000)
    f = lambda x: C2.dropout(x, 0.5)  # noqa: E731
    with pytest.raises(RuntimeError, match="randomness"):
        torch.func.vmap(f)(X)  # default randomness="error", as F.dropout
    with pytest.raises(RuntimeError, match="randomness"):
        torch.func.vmap(lambda x: torch.nn.functional.dropout(x, 0.5))(X)  # the native behaviour we mirror
    Y, mask = torch.func.vmap(f, randomness="same")(X)
    assert all(torch.equal(mask[0], mask[b]) for b in range(4))
    assert torch.equal(Y, torch.ops.aten.native_dropout_backward(X, mask, 2.0))
    Y, mask = torch.func.vmap(f, randomness="different")(X)
    assert not torch.equal(mask[0], mask[1])
    assert torch.equal(Y, torch.ops.aten.native_dropout_backward(X, mask, 2.0))
    torch.manual_seed(5)
    a = torch.func.vmap(f, randomness="different")(X)[1]
    torch.manual_seed(5)
    assert torch.equal(a, torch.func.vmap(f, randomness="different")(X)[1])  # seeded
    Y, mask = torch.func.vmap(lambda x: C2.dropout(x, 0.5, True))(X)  # test mode draws nothing
    assert torch.equal(Y, X) and mask.all()


def test_torch_func_grad_says_why_it_is_unsupported():
    X = torch.randn(4, 3, dtype=torch.float64)
    idx = torch.tensor([1, 0, 3, 2])
    with pytest.raises(RuntimeError, match=r"caffe2ops::batch_permutation: torch\.func transforms.*not supported.*torch\.autograd\.grad"):
        torch.func.grad(lambda x: C2.batch_permutation(x, idx).sum())(X)
    with pytest.raises(RuntimeError, match="caffe2ops::margin_ranking_criterion: torch.func transforms"):
        torch.func.vjp(lambda x: C2.margin_ranking_criterion(x, x, torch.ones(4, 3, dtype=torch.int32)), X)
