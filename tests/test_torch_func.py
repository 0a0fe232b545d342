"""torch.func transforms that differentiate (grad, vjp, jacrev, jacfwd, hessian) through the
torch_caffe2ops.ops wrappers and the nn modules (torch_caffe2ops/_func.py), each compared with
the same transform over an ATen composition in float64. Direct torch.ops.caffe2ops calls keep
the clear "not supported" message (their gradient is the C++ autograd function).
"""
import pytest
import torch
from torch.func import grad, hessian, jacfwd, jacrev, vjp, vmap

from torch_caffe2ops import nn as C2nn
from torch_caffe2ops import ops

F64 = dict(dtype=torch.float64)


def _t(*shape):
    return torch.randn(*shape, **F64)


def _dropout_mask(shape, ratio, seed):
    torch.manual_seed(seed)
    return ops.dropout(torch.ones(shape, **F64), ratio)[1]


def cases():
    """(name, caffe2ops function, ATen composition, differentiable float64 inputs).

    Each function maps the inputs to a tensor or a tuple of tensors; indices and other
    non-differentiable arguments are closed over.
    """
    torch.manual_seed(0)
    perm = torch.tensor([2, 0, 3, 3])
    gidx = torch.tensor([[1, 0], [2, 2]])
    lengths, sidx = torch.tensor([2, 0, 3]), torch.tensor([1, 3, 0, 2, 3])
    rows = torch.repeat_interleave(torch.arange(3), lengths)
    pairs = torch.tensor([0, 1, 5, 7, 8, 3])  # n = 3 inputs: (0,0) (0,1) (1,2) (2,1) (2,2) (1,0)
    X1, X2 = _t(6), _t(6)
    Y = torch.tensor([1, -1, 1, 1, -1, -1], dtype=torch.int32)
    X1 = X1 + 0.3 * torch.sign(X1 - X2 + Y / 2)  # keep away from the hinge kink
    ratio, mask_seed = 0.4, 7

    def dropout_c2(x):
        torch.manual_seed(mask_seed)
        return ops.dropout(x, ratio)[0]

    def dropout_aten(x):
        mask = _dropout_mask(x.shape, ratio, mask_seed)
        # what aten.native_dropout_backward computes, written out: it has no forward-mode AD
        return x * mask * (1.0 / (1.0 - ratio))

    def ccbmmbg_aten(*xs):
        C = torch.stack([x.reshape(x.shape[0], -1) for x in xs], 1)
        return (C @ C.transpose(1, 2)).flatten(1)[:, pairs]

    return [
        ("batch_permutation", lambda x: ops.batch_permutation(x, perm),
         lambda x: x.index_select(0, perm), (_t(4, 3),)),
        ("batch_gather", lambda d: ops.batch_gather(d, gidx),
         lambda d: d[:, gidx], (_t(2, 3, 2),)),
        ("batch_gather match_outer", lambda d: ops.batch_gather(d, gidx, True),
         lambda d: torch.stack([d[b, gidx[b]] for b in range(2)]), (_t(2, 3, 2),)),
        ("batch_sparse_to_dense", lambda v: ops.batch_sparse_to_dense(lengths, sidx, v, None, 4, 0.5),
         lambda v: torch.full((3, 4), 0.5, **F64).index_put((rows, sidx), v), (_t(5),)),
        ("batch_dense_to_sparse", lambda d: ops.batch_dense_to_sparse(lengths, sidx, d),
         lambda d: d[rows, sidx], (_t(3, 4),)),
        ("batch_mat_mul", lambda a, b: ops.batch_mat_mul(a, b), torch.matmul, (_t(2, 3, 4), _t(2, 4, 5))),
        ("batch_mat_mul trans broadcast", lambda a, b: ops.batch_mat_mul(a, b, True, True, True),
         lambda a, b: a.mT @ b.mT, (_t(2, 1, 4, 3), _t(3, 5, 4))),
        ("batch_moments", lambda x: ops.batch_moments(x),
         lambda x: (x.mean((0, 2, 3)), (x * x).mean((0, 2, 3))), (_t(2, 3, 2, 2),)),
        ("batch_moments NHWC", lambda x: ops.batch_moments(x, "NHWC"),
         lambda x: (x.mean((0, 1, 2)), (x * x).mean((0, 1, 2))), (_t(2, 2, 2, 3),)),
        ("concat_batch_mat_mul_batch_gather",
         lambda *xs: ops.concat_batch_mat_mul_batch_gather(pairs, list(xs)), ccbmmbg_aten,
         (_t(2, 4), _t(2, 4), _t(2, 4))),
        ("concat", lambda a, b: ops.concat([a, b])[0], lambda a, b: torch.cat([a, b], 1),
         (_t(2, 3), _t(2, 1))),
        ("depth_concat add_axis", lambda a, b: ops.depth_concat([a, b], axis=-1, add_axis=True)[0],
         lambda a, b: torch.stack([a, b], -1), (_t(2, 3), _t(2, 3))),
        ("split", lambda x: tuple(ops.split(x, split=[1, 3], axis=0)),
         lambda x: torch.split(x, [1, 3], 0), (_t(4, 2),)),
        ("depth_split add_axis", lambda x: tuple(ops.depth_split(x, axis=1, add_axis=True, num_outputs=3)),
         lambda x: x.unbind(1), (_t(2, 3, 2),)),
        ("split_by_lengths", lambda x: tuple(ops.split_by_lengths(x, torch.tensor([1, 1, 2, 1]), 2, axis=0)),
         lambda x: torch.split(x, [2, 3], 0), (_t(5, 2),)),
        ("dropout", dropout_c2, dropout_aten, (_t(4, 5),)),
        ("dropout is_test", lambda x: ops.dropout(x, ratio, True)[0], lambda x: x.clone(), (_t(3),)),
        ("margin_ranking_criterion", lambda a, b: ops.margin_ranking_criterion(a, b, Y, 0.3),
         lambda a, b: (-Y * (a - b) + 0.3).clamp_min(0), (X1, X2)),
    ]


CASES = cases()
IDS = [c[0] for c in CASES]


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _loss(f):
    """A scalar, non-linear in the outputs so grad and hessian see more than the op."""
    return lambda *xs: sum((o.sin() * o).sum() for o in _outputs(f(*xs)))


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name,c2,aten,xs", CASES, ids=IDS)
def test_grad_vjp_jacrev_match_aten(name, c2, aten, xs):
    argnums = tuple(range(len(xs)))
    _close(grad(_loss(c2), argnums)(*xs), grad(_loss(aten), argnums)(*xs))
    out_c2, vjp_c2 = vjp(c2, *xs)
    out_aten, vjp_aten = vjp(aten, *xs)
    _close(out_c2, out_aten)
    cot = tuple(torch.randn_like(o) for o in _outputs(out_aten))
    cot = cot if isinstance(out_aten, tuple) else cot[0]
    _close(vjp_c2(cot), vjp_aten(cot))
    _close(jacrev(c2, argnums)(*xs), jacrev(aten, argnums)(*xs))


@pytest.mark.parametrize("name,c2,aten,xs", CASES, ids=IDS)
def test_jacfwd_matches_aten(name, c2, aten, xs):
    argnums = tuple(range(len(xs)))
    _close(jacfwd(c2, argnums)(*xs), jacfwd(aten, argnums)(*xs))


SECOND_ORDER = ["batch_mat_mul", "batch_mat_mul trans broadcast", "batch_moments",
                "concat_batch_mat_mul_batch_gather", "batch_gather", "batch_permutation",
                "batch_sparse_to_dense", "batch_dense_to_sparse", "concat", "split", "dropout",
                "margin_ranking_criterion"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_matches_aten(name):
    """hessian (jacfwd of jacrev) and grad of grad go through the gradient ops' Functions."""
    _, c2, aten, xs = CASES[IDS.index(name)]
    argnums = tuple(range(len(xs)))
    _close(hessian(_loss(c2), argnums)(*xs), hessian(_loss(aten), argnums)(*xs))
    _close(jacrev(jacrev(_loss(c2), argnums), argnums)(*xs),
           jacrev(jacrev(_loss(aten), argnums), argnums)(*xs))

    def gg(f):  # grad of (a weighted sum of the first gradient)
        return grad(lambda *a: sum((g * g.cos()).sum() for g in grad(_loss(f), argnums)(*a)), argnums)
    _close(gg(c2)(*xs), gg(aten)(*xs))


def test_gradient_ops_under_transforms():
    """The gradient ops' own wrappers, differentiated with torch.func (their Functions and the
    routed compositions of the composite ones)."""
    torch.manual_seed(1)
    lengths, sidx = torch.tensor([2, 1]), torch.tensor([0, 2, 1])
    rows = torch.tensor([0, 0, 1])
    dense = _t(2, 3)
    cases = [
        (lambda g: ops.batch_sparse_to_dense_gradient(lengths, sidx, g), lambda g: g[rows, sidx], _t(2, 3)),
        (lambda g: ops.batch_dense_to_sparse_gradient(lengths, sidx, g, dense),
         lambda g: torch.zeros(2, 3, **F64).index_put((rows, sidx), g), _t(3)),
        (lambda g: tuple(ops.concat_gradient(g, torch.tensor([1, 2], dtype=torch.int32), axis=1)),
         lambda g: torch.split(g, [1, 2], 1), _t(2, 3)),
        (lambda g: ops.split_gradient([g, None], [2, 1], 0), lambda g: torch.cat([g, torch.zeros(1, 3, **F64)]),
         _t(2, 3)),
        (lambda g: ops.batch_permutation_gradient(torch.tensor([1, 0, 1]), g),
         lambda g: torch.zeros_like(g).index_add(0, torch.tensor([1, 0, 1]), g), _t(3, 2)),
        (lambda g: ops.dropout_gradient(g, torch.tensor([True, False, True]), 0.5),
         lambda g: g * torch.tensor([2.0, 0.0, 2.0], **F64), _t(3)),
    ]
    for c2, aten, x in cases:
        _close(jacrev(c2)(x), jacrev(aten)(x))
        _close(jacfwd(c2)(x), jacfwd(aten)(x))


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
