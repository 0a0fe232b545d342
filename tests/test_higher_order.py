"""Autograd past first order: double backward of every differentiable op, the gradient of the
fused DLRM interaction (concat_batch_mat_mul_batch_gather), torch.func.vmap batching rules for
every op (dropout honouring vmap's randomness), and the torch.func limit stated in the op's words.
"""
import warnings

import numpy as np
import pytest
import torch

from torch_caffe2ops import _vmap
from utils import opcheck, rng

C2 = torch.ops.caffe2ops
F64 = dict(dtype=torch.float64, requires_grad=True)


def _away_from_kink(r, n, margin):
    x1, x2 = r.standard_normal(n), r.standard_normal(n)
    y = r.choice([-1, 1], size=n)
    near = np.abs(margin - y * (x1 - x2)) < 0.1
    x1[near] += 0.2
    return torch.tensor(x1, **F64), torch.tensor(x2, **F64), torch.tensor(y, dtype=torch.int32)


def double_backward_cases(seed):
    """(name, function of differentiable float64 inputs, inputs) with random shapes."""
    r = rng(seed)
    B, M, K = (int(v) for v in r.integers(1, 5, size=3))
    idx = torch.tensor(r.integers(0, B, size=B))
    gidx = torch.tensor(r.integers(0, M, size=int(r.integers(1, 4))))
    A, Bm = torch.randn(2, B, K, **F64), torch.randn(2, K, M, **F64)
    X1, X2, Y = _away_from_kink(r, 6, 0.3)
    mask = torch.rand(B, M) > 0.4
    n, E = int(r.integers(1, 4)), int(r.integers(1, 4))
    pairs = torch.tensor(r.integers(0, n * n, size=int(r.integers(1, 6))))
    xs = [torch.randn(B, E, **F64) for _ in range(n)]
    return [
        ("batch_permutation", lambda x: C2.batch_permutation(x, idx), (torch.randn(B, K, **F64),)),
        ("batch_permutation_gradient", lambda g: C2.batch_permutation_gradient(idx, g), (torch.randn(B, K, **F64),)),
        ("batch_gather", lambda d: C2.batch_gather(d, gidx), (torch.randn(B, M, 2, **F64),)),
        ("batch_gather match_outer", lambda d: C2.batch_gather(d, gidx.expand(B, -1).contiguous(), True),
         (torch.randn(B, M, **F64),)),
        ("batch_gather_gradient axis 2", lambda g: C2.batch_gather_gradient(torch.zeros(B, 2, M, dtype=torch.float64), gidx, g, 2),
         (torch.randn(B, 2, len(gidx), **F64),)),
        ("batch_mat_mul", lambda a, b: C2.batch_mat_mul(a, b), (A, Bm)),
        ("batch_mat_mul trans broadcast", lambda a, b: C2.batch_mat_mul(a, b, True, False, True),
         (torch.randn(3, K, B, **F64), torch.randn(K, M, **F64))),
        ("batch_mat_mul_gradient", lambda g, a, b: C2.batch_mat_mul_gradient(g, a, b),
         (torch.randn(2, B, M, **F64), A, Bm)),
        ("batch_moments", lambda x: C2.batch_moments(x), (torch.randn(B, 3, M, **F64),)),
        ("batch_moments NHWC", lambda x: C2.batch_moments(x, "NHWC"), (torch.randn(B, M, 3, **F64),)),
        ("batch_moments_gradient", lambda a, b, x: C2.batch_moments_gradient(a, b, x),
         (torch.randn(3, **F64), torch.randn(3, **F64), torch.randn(B, 3, M, **F64))),
        ("batch_sparse_to_dense", lambda v: C2.batch_sparse_to_dense(torch.tensor([2, 1]), torch.tensor([0, 2, 1]), v, None, 3),
         (torch.randn(3, **F64),)),
        ("batch_dense_to_sparse", lambda d: C2.batch_dense_to_sparse(torch.tensor([2, 1]), torch.tensor([0, 2, 1]), d),
         (torch.randn(2, 3, **F64),)),
        ("concat_batch_mat_mul_batch_gather", lambda *x: C2.concat_batch_mat_mul_batch_gather(pairs, list(x)), tuple(xs)),
        ("concat_batch_mat_mul_batch_gather_gradient",
         lambda g, *x: C2.concat_batch_mat_mul_batch_gather_gradient(pairs, list(x), g),
         (torch.randn(B, len(pairs), **F64), *[torch.randn(B, E, **F64) for _ in range(n)])),
        ("concat", lambda a, b: C2.concat([a, b], 0)[0], (torch.randn(2, 3, **F64), torch.randn(1, 3, **F64))),
        ("split", lambda x: C2.split(x, None, [1, 2], 0), (torch.randn(3, 2, **F64),)),
        ("split_by_lengths", lambda x: C2.split_by_lengths(x, torch.tensor([1, 2]), 2, 0), (torch.randn(3, 2, **F64),)),
        ("dropout", lambda x: C2.dropout_gradient(x, mask, 0.4), (torch.randn(B, M, **F64),)),
        ("dropout test mode", lambda x: C2.dropout(x, 0.4, True)[0], (torch.randn(B, M, **F64),)),
        ("margin_ranking_criterion", lambda a, b: C2.margin_ranking_criterion(a, b, Y, 0.3), (X1, X2)),
        ("margin_ranking_criterion_gradient",
         lambda a, b, g: C2.margin_ranking_criterion_gradient(a, b, Y, g, 0.3), (X1, X2.reshape(2, 3), torch.randn(6, **F64))),
    ]


@pytest.mark.parametrize("seed", range(3))
def test_gradgradcheck_every_differentiable_op(seed):
    for name, fn, inputs in double_backward_cases(seed):
        assert torch.autograd.gradcheck(fn, inputs), name
        assert torch.autograd.gradgradcheck(fn, inputs), name


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


def test_ccbmmbg_gradient_opcheck_and_compile():
    gr = dict(dtype=torch.float64, requires_grad=True)
    opcheck("concat_batch_mat_mul_batch_gather", (torch.tensor([0, 1, 3, 2]), [torch.randn(3, 2, **gr), torch.randn(3, 2, **gr)]))
    opcheck("concat_batch_mat_mul_batch_gather_gradient",
            (torch.tensor([0, 1, 3]), [torch.randn(3, 4, **gr), torch.randn(3, 4, **gr)], torch.randn(3, 3, **gr)))

    def f(a, b):
        y = C2.concat_batch_mat_mul_batch_gather(torch.tensor([1, 3]), [a, b])
        return torch.autograd.grad(y.sum(), [a, b], create_graph=True)

    a, b = torch.randn(4, 3, **gr), torch.randn(4, 3, **gr)
    eager = f(a, b)
    compiled = torch.compile(f, fullgraph=False, dynamic=True)(a, b)
    for x, y in zip(eager, compiled):
        torch.testing.assert_close(x, y)


# ----------------------------------------------------------------------------------- vmap

def vmap_cases():
    """(name, function, batched args, in_dims) covering every op; index inputs batched or not."""
    torch.manual_seed(0)
    B = 3
    li = torch.tensor([[2, 1], [0, 2], [1, 1]])
    lengths, ind = torch.tensor([2, 1]), torch.tensor([0, 2, 1])
    xs = [torch.randn(B, 4, 2), torch.randn(4, 2, B)]
    cases = [
        ("batch_permutation", C2.batch_permutation, (torch.randn(B, 4, 2), torch.tensor([[3, 0, 1, 2]] * B)), (0, 0)),
        ("batch_permutation_gradient", C2.batch_permutation_gradient, (torch.tensor([1, 0, 1]), torch.randn(3, B, 2)), (None, 1)),
        ("batch_gather", lambda d, i: C2.batch_gather(d, i), (torch.randn(2, 3, B), li), (2, 0)),
        ("batch_gather match_outer", lambda d, i: C2.batch_gather(d, i, True), (torch.randn(B, 2, 3), li[:, None, :].expand(B, 2, 2).contiguous()), (0, 0)),
        ("batch_gather_gradient", lambda d, i, g: C2.batch_gather_gradient(d, i, g), (torch.randn(2, 3), torch.tensor([2, 0]), torch.randn(B, 2, 2)), (None, None, 0)),
        ("batch_sparse_to_dense", lambda v: C2.batch_sparse_to_dense(lengths, ind, v, None, 3), (torch.randn(B, 3),), (0,)),
        ("batch_sparse_to_dense_gradient", lambda g: C2.batch_sparse_to_dense_gradient(lengths, ind, g), (torch.randn(B, 2, 3),), (0,)),
        ("batch_dense_to_sparse", lambda d: C2.batch_dense_to_sparse(lengths, ind, d), (torch.randn(2, B, 3),), (1,)),
        ("batch_dense_to_sparse_gradient", lambda g: C2.batch_dense_to_sparse_gradient(lengths, ind, g, torch.zeros(2, 3)), (torch.randn(B, 3),), (0,)),
        ("batch_mat_mul", lambda a, b: C2.batch_mat_mul(a, b, False, True), (torch.randn(B, 2, 3), torch.randn(4, 3)), (0, None)),
        ("batch_mat_mul_gradient", lambda g, a, b: C2.batch_mat_mul_gradient(g, a, b), (torch.randn(B, 2, 4), torch.randn(2, 3), torch.randn(3, 4)), (0, None, None)),
        ("batch_moments", lambda x: C2.batch_moments(x), (torch.randn(2, 3, B, 4),), (2,)),
        ("batch_moments_gradient", lambda a, b, x: C2.batch_moments_gradient(a, b, x), (torch.randn(B, 3), torch.randn(3), torch.randn(2, 3, 4)), (0, None, None)),
        ("batch_box_cox", lambda d: C2.batch_box_cox(d, torch.tensor([0.0, 0.5]), torch.tensor([1.0, 2.0])), (torch.rand(B, 4, 2),), (0,)),
        ("batch_bucketize", lambda f: C2.batch_bucketize(f, torch.tensor([1, 0]), torch.tensor([0.2, 0.5, 0.7]), torch.tensor([1, 2])), (torch.rand(B, 4, 2),), (0,)),
        ("batch_bucket_one_hot", lambda f: C2.batch_bucket_one_hot(f, torch.tensor([1, 2]), torch.tensor([0.2, 0.5, 0.7])), (torch.rand(4, 2, B),), (2,)),
        ("concat_batch_mat_mul_batch_gather", lambda a, b: C2.concat_batch_mat_mul_batch_gather(torch.tensor([0, 1, 3]), [a, b]), tuple(xs), (0, 2)),
        ("concat_batch_mat_mul_batch_gather_gradient", lambda a, g: C2.concat_batch_mat_mul_batch_gather_gradient(torch.tensor([0, 1, 3]), [a, torch.ones(4, 2)], g),
         (torch.randn(B, 4, 2), torch.randn(B, 4, 3)), (0, 0)),
        ("concat", lambda a, b: C2.concat([a, b], 0), (torch.randn(B, 2, 3), torch.randn(1, 3)), (0, None)),
        ("depth_concat", lambda a, b: C2.depth_concat([a, b], 1), (torch.randn(B, 2, 3), torch.randn(B, 2, 1)), (0, 0)),
        ("concat_gradient", lambda g: C2.concat_gradient(g, torch.tensor([1, 2], dtype=torch.int32), 0), (torch.randn(B, 3, 2),), (0,)),
        ("split", lambda x: C2.split(x, None, [1, 2], 0), (torch.randn(3, B, 2),), (1,)),
        ("depth_split", lambda x: C2.depth_split(x, None, [], 1, None, False, 2), (torch.randn(B, 2, 4),), (0,)),
        ("split_by_lengths", lambda x: C2.split_by_lengths(x, torch.tensor([1, 2]), 2, 0), (torch.randn(B, 3, 2),), (0,)),
        ("split_gradient", lambda a, b: C2.split_gradient([a, b], [1, 2], 0), (torch.randn(B, 1, 2), torch.randn(B, 2, 2)), (0, 0)),
        ("dropout test mode", lambda x: C2.dropout(x, 0.5, True), (torch.randn(B, 4),), (0,)),
        ("dropout_gradient", lambda g, m: C2.dropout_gradient(g, m, 0.25), (torch.randn(B, 5), torch.rand(B, 5) > 0.5), (0, 0)),
        ("margin_ranking_criterion", lambda a, b, y: C2.margin_ranking_criterion(a, b, y, 0.2), (torch.randn(B, 6), torch.randn(6), torch.tensor([1, -1] * 3)), (0, None, None)),
        ("margin_ranking_criterion_gradient", lambda a, b, y, g: C2.margin_ranking_criterion_gradient(a, b, y, g, 0.2),
         (torch.randn(B, 2, 3), torch.randn(6), torch.tensor([1, -1] * 3), torch.randn(2, 3)), (0, None, None, None)),
        ("sparse_normalize", lambda p, i: C2.sparse_normalize(p, i, None, False, 1.0), (torch.randn(B, 4, 3), torch.tensor([[0, 2], [1, 1], [3, 0]])), (0, 0)),
        ("float16_sparse_normalize", lambda p: C2.float16_sparse_normalize(p, torch.tensor([1])), (torch.randn(B, 2, 3).half(),), (0,)),
    ]
    return cases


def _per_sample_loop(fn, args, in_dims):
    B = next(a.shape[d] for a, d in zip(args, in_dims) if d is not None)
    outs = [fn(*[a.select(d, b) if d is not None else a for a, d in zip(args, in_dims)]) for b in range(B)]
    if isinstance(outs[0], torch.Tensor):
        return torch.stack(outs)
    return type(outs[0])(torch.stack([o[i] for o in outs]) for i in range(len(outs[0])))


@pytest.mark.parametrize("case", vmap_cases(), ids=lambda c: c[0])
def test_vmap_matches_per_sample_loop_without_fallback(case):
    name, fn, args, in_dims = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's slow fallback warns: no warning means a rule ran
        got = torch.func.vmap(fn, in_dims=in_dims)(*args)
    want = _per_sample_loop(fn, args, in_dims)
    if isinstance(want, torch.Tensor):
        got, want = [got], [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_every_op_has_a_vmap_case_or_test():
    covered = {c[0].split(" ")[0] for c in vmap_cases()} | {"dropout", "cudnn_dropout", "cudnn_dropout_gradient",
                                                          "sparse_normalize_", "float16_sparse_normalize_"}
    assert set(_vmap.op_names()) <= covered, set(_vmap.op_names()) - covered


def test_vmap_in_place_sparse_normalize():
    P = torch.randn(3, 4, 2) * 3
    ref = P.clone()
    idx = torch.tensor([[0, 1], [2, 2], [3, 0]])
    torch.func.vmap(lambda p, i: C2.sparse_normalize_(p, i), in_dims=(0, 0))(P, idx)
    for b in range(3):
        C2.sparse_normalize_(ref[b], idx[b])
    assert torch.equal(P, ref)


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
