"""Random cases for every torch.ops.caffe2ops op, and a reference for each one.

A case is made from (op, case_seed) only, so any case can be rebuilt and re-run from its seed
(`python tests/fuzz/worker.py --repro OP SEED`). `make_case` draws the op's inputs (GENERATORS),
then generic perturbations: one tensor's dtype or rank changed, index/length values corrupted,
non-contiguous / expanded (stride 0) / aliased inputs, all inputs on meta or one on meta (mixed
devices). The reference (REFERENCES, written from the semantics in docs/operators/) runs on the
CPU values of the final inputs and says what must happen:

* `Invalid(why)`: the op must raise, with a message naming it ("caffe2ops::<op>: ...");
* a list of `Out`: the op must return exactly these (shape, dtype, values within a tolerance);
  `R.maybe(why)` marks inputs where the documented semantics are silent or a result cannot be allocated, so a
  clean error is accepted too (a result must still equal the reference).

An exception that does not name the op is always a failure, whatever the reference says.
"""
import math
import random

import numpy as np
import torch

INT64_MAX = 2**63 - 1
HUGE = [2**31 - 1, 2**31, 2**32 + 5, 2**40, 2**62, 2**63 - 1]
# Outputs bigger than this are not computed by the reference: the op may refuse them (cleanly)
# or return them (then only shape/dtype are checked); the worker's RLIMIT_AS stops real
# allocations of this size.
BIG_BYTES = 2**30

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
I32, I64 = torch.int32, torch.int64
FLOATS = (F16, BF16, F32, F64)
SMALL_INTS = (torch.int8, torch.int16, torch.uint8)
ALL_DTYPES = [F32, F64, F16, BF16, I32, I64, torch.int16, torch.uint8, torch.bool, torch.complex64]


class Invalid(Exception):
    """These inputs are an error by the documented semantics. value=True: found only by reading tensor values
    (a meta kernel cannot see it)."""

    def __init__(self, why, value=False):
        super().__init__(why)
        self.why, self.value = why, value


class TooBig(Exception):
    def __init__(self, outs):
        super().__init__("output too big to compute")
        self.outs = outs


class Out:
    """One expected output. mode: exact | close | shape | custom."""

    def __init__(self, shape, dtypes, arr=None, mode="exact", rtol=0.0, atol=0.0, skip=None, fn=None):
        self.shape = tuple(int(s) for s in shape)
        self.dtypes = tuple(dtypes) if isinstance(dtypes, (tuple, list)) else (dtypes,)
        self.arr, self.mode, self.rtol, self.atol, self.skip, self.fn = arr, mode, rtol, atol, skip, fn


class R:
    """Reference context: collects 'maybe' reasons; helpers raise Invalid."""

    def __init__(self):
        self.may = []
        self.data_dependent = False  # output shapes come from tensor values (meta cannot know them)
        self.inplace_of = None  # argument whose object the result must be (sparse_normalize_)
        self.host = set()  # argument positions read on the host (mixed devices allowed)

    def unchecked(self, why):
        """The semantics say nothing about these inputs: a clean error or any result."""
        self.maybe(why)
        raise TooBig(None)

    def need(self, cond, why, value=False):
        if not cond:
            raise Invalid(why, value)

    def maybe(self, why):
        self.may.append(why)

    def dtype(self, t, name, ok, maybe=None, bad=()):
        """ok: accepted; bad: must raise; maybe (default: everything else): either."""
        if t.dtype in ok:
            return
        if t.dtype in bad or (maybe is not None and t.dtype not in maybe):
            raise Invalid(f"{name} dtype {t.dtype}")
        self.maybe(f"{name} dtype {t.dtype} (unspecified)")

    def index(self, t, name):
        self.dtype(t, name, (I32, I64), maybe=SMALL_INTS)

    def floating(self, t, name):
        """float32/float64 accepted; float16/bfloat16 optional; anything else: either."""
        self.dtype(t, name, (F32, F64))

    def in_range(self, t, lo, hi, name):
        if t.numel() == 0:
            return
        a = P(t).astype(np.int64).ravel()
        self.need(bool((a >= lo).all() and (a < hi).all()), f"{name} value out of [{lo}, {hi})", value=True)

    def lengths(self, t, name):
        a = [int(v) for v in P(t).ravel()] if t.numel() else []
        self.need(all(v >= 0 for v in a), f"{name} negative", value=True)
        return a

    def axis(self, axis, n, name="axis"):
        self.need(-n <= axis < n, f"{name} {axis} out of range for rank {n}")
        return axis + n if axis < 0 else axis

    def big(self, shapes_dtypes):
        """Raise Invalid if an output cannot exist (numel * itemsize overflows int64), TooBig if
        it is too large to compute here."""
        too = False
        for shape, dt in shapes_dtypes:
            n = math.prod(int(s) for s in shape)
            self.need(all(s >= 0 for s in shape), f"negative output size {shape}")
            self.need(n * _itemsize(dt) <= INT64_MAX, f"output {list(shape)} overflows int64")
            self.need(math.prod(max(int(s), 1) for s in shape[1:]) <= INT64_MAX,
                      f"output {list(shape)}: torch cannot stride it")
            too = too or n * _itemsize(dt) > BIG_BYTES
        if too:
            raise TooBig([Out(s, d, mode="shape") for s, d in shapes_dtypes])


def _itemsize(dt):
    return torch.empty(0, dtype=dt).element_size()


def P(t):
    """CPU values as numpy (bfloat16 widened to float32 exactly)."""
    t = t.detach()
    if t.dtype == BF16:
        t = t.float()
    return t.cpu().resolve_conj().numpy()


def empty_ok(shape, dtype):
    return Out(shape, dtype, mode="shape")


def exact(arr, dtype):
    return Out(arr.shape, dtype, arr, "exact")


def tol(dtype):
    return {F16: 2e-3, BF16: 1.6e-2, F32: 2e-6, F64: 1e-12}.get(dtype, 1e-12)


def np_round(arr, dtype):
    """float64 numpy -> the values `dtype` holds (as a numpy array of a wide type)."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(dtype)
    return P(t)


# ------------------------------------------------------------------------------------------------
# generation helpers

def dim(r, hi=4):
    x = r.random()
    return 0 if x < 0.1 else 1 if x < 0.3 else r.randint(2, hi)


def shape(r, rank, hi=4):
    return [dim(r, hi) for _ in range(rank)]


def fdtype(r):
    return r.choices([F32, F64, F16, BF16], [45, 40, 8, 7])[0]


def idtype(r):
    return I64 if r.random() < 0.5 else I32


def special_fill(r, nr, a):
    if a.size and r.random() < 0.15:
        flat = a.reshape(-1)
        for _ in range(r.randint(1, 3)):
            flat[nr.integers(0, a.size)] = r.choice([np.nan, np.inf, -np.inf, -0.0, 1e30, -1e-30])
    return a


def ften(r, nr, shp, dtype, scale=1.0, specials=True):
    if math.prod(shp) == 0:
        return torch.empty(shp, dtype=dtype)
    if dtype.is_floating_point or dtype.is_complex:
        a = nr.standard_normal(shp) * scale
        if specials:
            special_fill(r, nr, a.reshape(-1) if a.ndim else a.reshape(1))
        return torch.from_numpy(np.array(a)).to(dtype)
    if dtype == torch.bool:
        return torch.from_numpy(np.asarray(nr.random(shp) < 0.5))
    return torch.from_numpy(np.asarray(nr.integers(0, 5, shp))).to(dtype)


def iten(vals, dtype, shp=None):
    t = torch.tensor(np.asarray(vals, dtype=np.int64).reshape(-1).tolist(), dtype=torch.int64).to(dtype)
    return t.reshape(shp) if shp is not None else t


class G:
    """What a generator returns: positional args, plus tags for the generic perturbations.
    idx: {path: bound} index tensors; lens: [path] lengths tensors; fixed: [path] tensors the
    generic perturbations must leave alone."""

    def __init__(self, args, idx=None, lens=None, fixed=None, note=""):
        self.args, self.idx, self.lens, self.fixed, self.note = args, idx or {}, lens or [], fixed or [], note


# ------------------------------------------------------------------------------------------------
# batch family

def g_batch_permutation(r, nr):
    N = dim(r, 6)
    X = ften(r, nr, [N] + shape(r, r.randint(0, 3)), fdtype(r) if r.random() < 0.85 else r.choice(ALL_DTYPES))
    idx = nr.permutation(N) if r.random() < 0.6 else nr.integers(0, max(N, 1), N)
    if r.random() < 0.08:  # huge zero-size extents
        X = torch.empty([N, 0, r.choice(HUGE[:4])] if r.random() < 0.5 else [0, r.choice(HUGE)])
        idx = nr.integers(0, max(X.shape[0], 1), X.shape[0])
    return G([X, iten(idx, idtype(r))], idx={(1,): X.shape[0] if X.dim() else 1})


def r_batch_permutation(R, X, I):
    R.need(X.dim() >= 1, "X rank 0")
    R.index(I, "indices")
    R.need(I.dim() == 1, "indices not 1-D")
    R.need(I.shape[0] == X.shape[0], "len(indices) != N")
    R.in_range(I, 0, X.shape[0], "indices")
    R.big([(X.shape, X.dtype)])
    if X.numel() == 0:
        return [empty_ok(X.shape, X.dtype)]
    return [exact(P(X)[P(I).astype(np.int64)], X.dtype)]


def g_batch_permutation_gradient(r, nr):
    G_ = g_batch_permutation(r, nr)
    X, I = G_.args
    return G([I, X], idx={(0,): X.shape[0] if X.dim() else 1})


def r_batch_permutation_gradient(R, I, dY):
    R.need(dY.dim() >= 1, "dY rank 0")
    R.index(I, "indices")
    R.floating(dY, "dY")
    R.need(I.dim() == 1, "indices not 1-D")
    R.need(I.shape[0] == dY.shape[0], "len(indices) != dY.size(0)")
    R.in_range(I, 0, dY.shape[0], "indices")
    R.big([(dY.shape, dY.dtype)])
    if dY.numel() == 0:
        return [empty_ok(dY.shape, dY.dtype)]
    return [accumulate_out(dY, lambda out, src: np.add.at(out, P(I).astype(np.int64), src))]


def accumulate_out(like, fn):
    """index_add-style reference: float64 accumulation, compared with a sum-aware tolerance."""
    src = P(like).astype(np.complex128 if like.dtype.is_complex else np.float64) if (like.dtype.is_floating_point or like.dtype.is_complex) else P(like).astype(np.int64)
    out = np.zeros(src.shape, src.dtype)
    fn(out, src)
    if not (like.dtype.is_floating_point or like.dtype.is_complex):
        return Out(out.shape, like.dtype, out, "close", 0, 0)
    mag = np.zeros(src.shape)
    fn(mag, np.abs(src))
    return Out(out.shape, like.dtype, out, "close", tol(like.dtype) * 4, 0, skip=None, fn=mag)


def g_batch_gather(r, nr):
    B, M = dim(r), dim(r, 5)
    data = ften(r, nr, [B, M] + shape(r, r.randint(0, 2)), fdtype(r) if r.random() < 0.7 else r.choice(ALL_DTYPES))
    mo = r.random() < 0.35
    if mo:
        ishape = [B] + shape(r, r.randint(0, 2))
    else:
        ishape = shape(r, r.randint(0, 3))
    idx = nr.integers(0, max(M, 1), ishape) if M else np.zeros(ishape, np.int64)
    if r.random() < 0.07:
        data = torch.empty([B, M, 0, r.choice(HUGE)] if r.random() < 0.5 else [0, M, r.choice(HUGE[:3])])
    return G([data, iten(idx, idtype(r), ishape), mo], idx={(1,): M})


def gather_out_shape(R, data, I, mo, axis=1):
    R.need(data.dim() >= axis + 1 and data.dim() >= 2, "DATA rank < 2")
    if mo:
        R.need(I.dim() >= axis, "match_outer: INDICES rank too small")
        R.need(list(I.shape[:axis]) == list(data.shape[:axis]), "match_outer: outer dims differ")
        return list(data.shape[:axis]) + list(I.shape[axis:]) + list(data.shape[axis + 1:])
    return list(data.shape[:axis]) + list(I.shape) + list(data.shape[axis + 1:])


def r_batch_gather(R, data, I, mo):
    R.index(I, "indices")
    shp = gather_out_shape(R, data, I, mo)
    M = data.shape[1]
    if M == 0:
        shp = list(data.shape)
        R.maybe("M == 0 (the output has DATA's shape)")
    if math.prod(shp) == 0:
        try:
            R.in_range(I, 0, M, "indices")
        except Invalid:
            R.maybe("empty output: Caffe2 returns before checking indices")
        R.big([(shp, data.dtype)])
        return [empty_ok(shp, data.dtype)]
    R.in_range(I, 0, M, "indices")
    R.big([(shp, data.dtype)])
    d, ix = P(data), P(I).astype(np.int64)
    if mo:
        B = d.shape[0]
        out = np.stack([d[b][ix[b]] for b in range(B)]) if B else np.zeros(shp, d.dtype)
    else:
        out = np.take(d, ix, axis=1)
    return [exact(out.reshape(shp), data.dtype)]


def g_batch_gather_gradient(r, nr):
    g = g_batch_gather(r, nr)
    data, I, mo = g.args
    axis = 1
    if not mo and r.random() < 0.2 and data.dim() >= 2:
        axis = r.randint(0, data.dim() - 1)
        bound = data.shape[axis]
        I = iten(nr.integers(0, max(bound, 1), I.shape), I.dtype, list(I.shape))
    if r.random() < 0.1:
        axis = r.choice([-1, -2, data.dim(), -data.dim() - 1, 2**62])
    if data.dim() >= 2 and -data.dim() <= axis < data.dim():
        ax = axis % data.dim()
        try:
            shp = gather_out_shape(R(), data, I, mo, ax)
        except Invalid:
            shp = [2, 3]
    else:
        ax, shp = 1, [2, 3]
    dt = data.dtype if data.dtype.is_floating_point else F32
    grad = ften(r, nr, shp, dt) if math.prod(shp) < 10**6 else torch.empty(0)
    bound = data.shape[ax] if data.dim() > ax else 1
    return G([data, I, grad, axis, mo], idx={(1,): bound}, fixed=[(0,)])


def r_batch_gather_gradient(R, data, I, grad, axis, mo):
    R.host.add(0)  # only DATA's shape and dtype are used
    R.index(I, "indices")
    R.need(data.dim() >= 2, "DATA rank < 2")
    ax = R.axis(axis, data.dim())
    R.dtype(data, "data", (F32, F64), bad=(I32, I64, torch.int16, torch.uint8, torch.bool, torch.int8))
    R.floating(grad, "grad")
    if grad.dtype != data.dtype:
        R.maybe("grad dtype != data dtype")
    R.need(not mo or ax >= 1, "match_outer with axis 0")
    shp = gather_out_shape(R, data, I, mo, ax)
    R.need(list(grad.shape[:ax]) == list(data.shape[:ax]), "batch gather outer dimensions should match")
    if data.numel() == 0 and grad.numel() != math.prod(shp):
        R.maybe("empty DATA (Caffe2 returns early) with a grad of another numel")
    else:
        R.need(grad.numel() == math.prod(shp), f"grad numel {grad.numel()} != {math.prod(shp)}")
    if list(grad.shape) != shp:
        R.maybe("grad shape differs with equal numel")
    R.big([(data.shape, data.dtype)])
    if data.numel() == 0:
        try:
            R.in_range(I, 0, data.shape[ax], "indices")
        except Invalid:
            R.maybe("empty DATA")
        return [empty_ok(data.shape, data.dtype)]
    R.in_range(I, 0, data.shape[ax], "indices")
    Pn = math.prod(data.shape[:ax])
    Mx = data.shape[ax]
    blk = math.prod(data.shape[ax + 1:])
    ix = P(I).astype(np.int64)
    L = ix.size // Pn if mo else ix.size
    ix = ix.reshape(Pn, L) if mo else np.broadcast_to(ix.reshape(1, -1), (Pn, L))
    g64 = P(grad).astype(np.float64).reshape(Pn, L, blk)

    def fn(out, src):
        o = out.reshape(Pn, Mx, blk)
        s = src.reshape(Pn, L, blk)
        for p in range(Pn):
            np.add.at(o[p], ix[p], s[p])

    out = np.zeros(data.shape)
    mag = np.zeros(data.shape)
    fn(out, g64)
    fn(mag, np.abs(g64))
    return [Out(data.shape, data.dtype, out, "close", 4 * tol(data.dtype), 0, fn=mag)]


def sparse_gen(r, nr, B=None):
    B = dim(r, 5) if B is None else B
    D = dim(r, 6)
    lens = [r.randint(0, max(D, 0)) if D else 0 for _ in range(B)]
    idx = np.concatenate([nr.choice(D, l, replace=False) for l in lens]) if B and sum(lens) else np.zeros(0, np.int64)
    return B, D, lens, idx


def g_batch_sparse_to_dense(r, nr):
    B, D, lens, idx = sparse_gen(r, nr)
    L = len(idx)
    vals = ften(r, nr, [L], fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES))
    S = None
    dld = D
    if r.random() < 0.4:
        S = torch.zeros([r.randint(0, 3), D], dtype=r.choice([F32, I64, torch.bool]))
        dld = -1 if r.random() < 0.7 else r.choice([D, D + 1])
    if r.random() < 0.1:
        dld = r.choice([0, -2, 2**31, 2**40, 2**62, INT64_MAX])
    dv = r.choice([0.0, 0.0, 1.5, -2.0, float("nan"), float("inf"), 1e300])
    return G([iten(lens, idtype(r)), iten(idx, idtype(r)), vals, S, dld, dv], idx={(1,): D}, lens=[(0,)],
             fixed=[(3,)])


def sparse_dense_check(R, lengths, indices, nvals, D):
    R.index(lengths, "lengths")
    R.index(indices, "indices")
    R.need(lengths.dim() == 1, "lengths not 1-D")
    R.need(indices.dim() == 1, "indices not 1-D")
    R.need(indices.numel() == nvals, "indices.numel() != values.numel()")
    lens = R.lengths(lengths, "lengths")
    R.need(sum(lens) == indices.numel(), "sum(lengths) != len(indices)", value=True)
    R.in_range(indices, 0, D, "indices")
    return lens


def r_batch_sparse_to_dense(R, lengths, indices, values, S, dld, dv):
    R.host.add(3)  # output_shape_inference: only its shape is used
    R.floating(values, "values")
    if S is not None:
        R.need(S.dim() == 2, "output_shape_inference not 2-D")
        R.need(dld == -1 or dld == S.shape[1], "The last dim argument is not aligned with the shape input last dim")
        D = S.shape[1]
    else:
        R.need(dld >= 1, "The last dim of dense must be >= 1")
        D = dld
    if values.dim() != 1:
        R.maybe("values not 1-D (numel checked only)")
    B = lengths.shape[0] if lengths.dim() == 1 else 0
    lens = sparse_dense_check(R, lengths, indices, values.numel(), D)
    R.big([([B, D], values.dtype)])
    if B * D == 0:
        return [empty_ok([B, D], values.dtype)]
    if not values.dtype.is_floating_point:
        R.maybe("non-float values")
    out = np.full((B, D), dv, dtype=np.float64)
    out = np_round(out, values.dtype) if values.dtype.is_floating_point else out
    v = P(values).ravel()
    ix = P(indices).astype(np.int64)
    k = 0
    out = out.astype(v.dtype) if not values.dtype.is_floating_point else out
    for i, l in enumerate(lens):
        for _ in range(l):
            out[i, ix[k]] = v[k]
            k += 1
    return [exact(out, values.dtype)]


def g_batch_dense_to_sparse(r, nr):
    B, D, lens, idx = sparse_gen(r, nr)
    dense = ften(r, nr, [B, D], fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES))
    return G([iten(lens, idtype(r)), iten(idx, idtype(r)), dense], idx={(1,): D}, lens=[(0,)])


def r_batch_dense_to_sparse(R, lengths, indices, dense):
    R.floating(dense, "dense")
    R.need(dense.dim() == 2, "dense not 2-D")
    R.need(lengths.dim() == 1 and lengths.shape[0] == dense.shape[0], "B != dense.shape[0]")
    lens = sparse_dense_check(R, lengths, indices, indices.numel(), dense.shape[1])
    if indices.numel() == 0:
        return [empty_ok(indices.shape, dense.dtype)]
    d = P(dense)
    ix = P(indices).astype(np.int64)
    rows = np.repeat(np.arange(len(lens)), lens)
    return [exact(d[rows, ix], dense.dtype)]


def g_batch_sparse_to_dense_gradient(r, nr):
    g = g_batch_dense_to_sparse(r, nr)
    return g


def r_batch_sparse_to_dense_gradient(R, lengths, indices, grad_dense):
    return r_batch_dense_to_sparse(R, lengths, indices, grad_dense)


def g_batch_dense_to_sparse_gradient(r, nr):
    B, D, lens, idx = sparse_gen(r, nr)
    gv = ften(r, nr, [len(idx)], fdtype(r))
    dense = torch.zeros([B, D], dtype=gv.dtype) if r.random() < 0.9 else torch.zeros([B, D + 1], dtype=F32)
    return G([iten(lens, idtype(r)), iten(idx, idtype(r)), gv, dense], idx={(1,): D}, lens=[(0,)], fixed=[(3,)])


def r_batch_dense_to_sparse_gradient(R, lengths, indices, gv, dense):
    R.host.add(3)  # dense: only its shape is used
    R.need(dense.dim() == 2, "dense not 2-D")
    if not (lengths.dim() == 1 and lengths.shape[0] == dense.shape[0]):
        # = batch_sparse_to_dense(..., dense) whose S.shape[0] is ignored (only its second dimension counts)
        R.unchecked("B != dense.shape[0]")
    if dense.dtype != gv.dtype:
        R.maybe("dense dtype differs from grad_values")
    return r_batch_sparse_to_dense(R, lengths, indices, gv, dense, -1, 0.0)


# --- batch_mat_mul

def bmm_shapes(R, A, B, ta, tb, bc):
    a, b = A.dim(), B.dim()
    R.need(a >= 1 and b >= 1, "0-d operand")
    if a == 1 and b == 1:
        R.need(A.numel() == B.numel(), "1-D lengths differ")
        return [1]
    if a == 1:
        n = A.shape[0]
        if tb:
            R.need(B.shape[-1] == n, "K mismatch")
            return list(B.shape[:-1])
        R.need(B.shape[-2] == n, "K mismatch")
        return list(B.shape[:-2]) + [B.shape[-1]]
    if b == 1:
        n = B.shape[0]
        if not ta:
            R.need(A.shape[-1] == n, "K mismatch")
            return list(A.shape[:-1])
        R.need(A.shape[-2] == n, "K mismatch")
        return list(A.shape[:-2]) + [A.shape[-1]]
    M, K = (A.shape[-1], A.shape[-2]) if ta else (A.shape[-2], A.shape[-1])
    K2, N = (B.shape[-1], B.shape[-2]) if tb else (B.shape[-2], B.shape[-1])
    R.need(K == K2, "K mismatch")
    L = max(a, b) - 2
    ba = [1] * (L - (a - 2)) + list(A.shape[:-2])
    bb = [1] * (L - (b - 2)) + list(B.shape[:-2])
    batch = []
    for x, y in zip(ba, bb):
        R.need(x == y or x <= 1 or y <= 1, f"batch dims {x} vs {y}")
        batch.append(0 if (x == 0 or y == 0) else max(x, y))
    R.need(ba == bb or bc, "batch dims differ and broadcast=False")
    return batch + [M, N]


def bmm_ref64(A, B, ta, tb):
    """torch float64 reference (matmul with the 1-D rules of BatchMatMul); caller ensures numel > 0."""
    a, b = A.dim(), B.dim()
    if a == 1 and b == 1:
        return (A.reshape(-1) * B.reshape(-1)).sum().reshape(1)
    if a == 1:
        return torch.matmul(A, B.mT if tb else B)
    if b == 1:
        return torch.matmul(A.mT if ta else A, B)
    return torch.matmul(A.mT if ta else A, B.mT if tb else B)


def g_batch_mat_mul(r, nr, grad=False):
    ta, tb, bc = r.random() < 0.5, r.random() < 0.5, r.random() < 0.3
    M, K, N = dim(r, 5), dim(r, 5), dim(r, 5)
    nb = r.randint(0, 2)
    batch = shape(r, nb, 3)
    if r.random() < 0.7:
        ra = rb = len(batch) + 2
        ba = bb = batch
        if bc:
            ba = [b if r.random() < 0.6 else 1 for b in batch]
            bb = [b if r.random() < 0.6 else 1 for b in batch][r.randint(0, len(batch)):]
    else:
        ba, bb = batch, batch[r.randint(0, len(batch)):]
    ashape = ba + ([K, M] if ta else [M, K])
    bshape = bb + ([N, K] if tb else [K, N])
    x = r.random()
    if x < 0.1:
        ashape = [K]
    elif x < 0.2:
        bshape = [K]
    elif x < 0.25:
        ashape, bshape = [K], [K]
    if r.random() < 0.06:  # huge zero-size extents
        h = r.choice(HUGE)
        ashape, bshape = ([h, 0], [0, 4]) if r.random() < 0.5 else ([0, h], [h, 0])
        ta = tb = False
    dt = fdtype(r) if r.random() < 0.92 else r.choice(ALL_DTYPES)
    A = ften(r, nr, ashape, dt)
    B = ften(r, nr, bshape, dt if r.random() < 0.93 else r.choice([F32, F64, F16]))
    if not grad:
        return G([A, B, ta, tb, bc])
    try:
        yshape = bmm_shapes(R(), A, B, ta, tb, bc)
    except Invalid:
        yshape = [2, 2]
    gdt = A.dtype if r.random() < 0.9 else r.choice([F32, F64, F16])
    gY = ften(r, nr, yshape, gdt) if math.prod(yshape) < 10**6 else torch.empty(0, dtype=gdt)
    return G([gY, A, B, ta, tb, bc])


def r_batch_mat_mul(R, A, B, ta, tb, bc):
    R.dtype(A, "A", (F32, F64), bad=(torch.bool, torch.complex64))
    R.need(B.dtype == A.dtype, "A and B dtypes differ")
    y = bmm_shapes(R, A, B, ta, tb, bc)
    R.big([(y, A.dtype)])
    if math.prod(y) == 0:
        return [empty_ok(y, A.dtype)]
    A64, B64 = torch.from_numpy(P(A)).double(), torch.from_numpy(P(B)).double()
    ref = bmm_ref64(A64, B64, ta, tb)
    mag = bmm_ref64(A64.abs(), B64.abs(), ta, tb)
    K = max(1, A.shape[-1] if A.dim() == 1 else (A.shape[-2] if ta else A.shape[-1]))
    return [Out(y, A.dtype, ref.reshape(y).numpy(), "close", tol(A.dtype) * (2 + K), 0, fn=mag.reshape(y).numpy())]


def g_batch_mat_mul_gradient(r, nr):
    return g_batch_mat_mul(r, nr, grad=True)


def r_batch_mat_mul_gradient(R, gY, A, B, ta, tb, bc):
    R.dtype(A, "A", (F32, F64), bad=(torch.bool, torch.complex64))
    R.need(B.dtype == A.dtype, "A and B dtypes differ")
    R.need(gY.dtype == A.dtype, "grad_Y dtype differs from A (F4)")
    y = bmm_shapes(R, A, B, ta, tb, bc)
    R.need(gY.numel() == math.prod(y), f"grad_Y numel != Y numel {y}")
    if list(gY.shape) != y:
        R.maybe("grad_Y shape differs from Y with equal numel")
    R.big([(A.shape, A.dtype), (B.shape, B.dtype)])
    outs = []
    if A.numel() == 0 or B.numel() == 0:
        return [empty_ok(A.shape, A.dtype) if A.numel() == 0 else Out(A.shape, A.dtype, np.zeros(A.shape), "exact"),
                empty_ok(B.shape, B.dtype) if B.numel() == 0 else Out(B.shape, B.dtype, np.zeros(B.shape), "exact")]
    if math.prod(y) == 0:
        return [Out(A.shape, A.dtype, np.zeros(A.shape), "exact"), Out(B.shape, B.dtype, np.zeros(B.shape), "exact")]
    A64 = torch.from_numpy(P(A)).double().requires_grad_()
    B64 = torch.from_numpy(P(B)).double().requires_grad_()
    g64 = torch.from_numpy(P(gY)).double().reshape(y)
    with torch.enable_grad():
        Y = bmm_ref64(A64, B64, ta, tb).reshape(y)
        dA, dB = torch.autograd.grad(Y, (A64, B64), g64, allow_unused=True)
        Aa = A64.detach().abs().requires_grad_()
        Ba = B64.detach().abs().requires_grad_()
        Ya = bmm_ref64(Aa, Ba, ta, tb).reshape(y)
        mA, mB = torch.autograd.grad(Ya, (Aa, Ba), g64.abs())
    K = max(y[-1], y[-2] if len(y) > 1 else 1) * max(1, math.prod(y[:-2]))
    for d, m, t in ((dA, mA, A), (dB, mB, B)):
        outs.append(Out(t.shape, t.dtype, d.numpy(), "close", tol(t.dtype) * (2 + K), 0, fn=m.numpy()))
    return outs


# --- batch_moments

ORDERS = ["NCHW", "nchw", "NHWC", "nhwc"]
BAD_ORDERS = ["", "NCH", "NCHWX", "nChw", "CHWN", "NCHW\0", "ＮＣＨＷ"]


def g_batch_moments(r, nr, grad=False):
    X = ften(r, nr, shape(r, r.randint(1, 5) if r.random() < 0.9 else 0, 4), fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES))
    order = r.choice(ORDERS) if r.random() < 0.9 else r.choice(BAD_ORDERS)
    if r.random() < 0.05:
        X = torch.empty([0, r.choice(HUGE[:3]), 0])
    if not grad:
        return G([X, order])
    nhwc = order in ("NHWC", "nhwc")
    Cn = (X.shape[-1] if nhwc else X.shape[1]) if X.dim() >= 2 else 1
    Cn = Cn if Cn < 1000 else 3
    dt = X.dtype if X.dtype.is_floating_point else F32
    dmu = ften(r, nr, [Cn], dt)
    dvar = ften(r, nr, [Cn], dt if r.random() < 0.95 else F64)
    return G([dmu, dvar, X, order])


def moments_layout(R, X, order):
    R.need(order in ORDERS, f"Unsupported storage order: {order!r}")
    R.need(X.dim() >= 2, "X rank < 2")
    nhwc = order in ("NHWC", "nhwc")
    Cn = X.shape[-1] if nhwc else X.shape[1]
    return nhwc, Cn


def r_batch_moments(R, X, order):
    R.floating(X, "X")
    nhwc, Cn = moments_layout(R, X, order)
    R.big([([Cn], X.dtype), ([Cn], X.dtype)])
    if Cn == 0:
        return [empty_ok([0], X.dtype), empty_ok([0], X.dtype)]
    if X.numel() == 0:
        nan = np.full(Cn, np.nan)
        return [Out([Cn], X.dtype, nan, "close", 0, 0), Out([Cn], X.dtype, nan, "close", 0, 0)]
    x = P(X).astype(np.float64)
    x = x.reshape(-1, Cn) if nhwc else np.moveaxis(x.reshape(X.shape[0], Cn, -1), 1, 0).reshape(Cn, -1).T
    with np.errstate(all="ignore"):
        mu = x.mean(0) if x.shape[0] else np.full(Cn, np.nan)
        var = (x * x).mean(0) if x.shape[0] else np.full(Cn, np.nan)
        mmu = np.abs(x).mean(0) if x.shape[0] else np.zeros(Cn)
    n = max(1, x.shape[0])
    return [Out([Cn], X.dtype, mu, "close", tol(X.dtype) * (2 + n), 0, fn=mmu),
            Out([Cn], X.dtype, var, "close", tol(X.dtype) * (2 + n), 0, fn=var)]


def g_batch_moments_gradient(r, nr):
    return g_batch_moments(r, nr, grad=True)


def r_batch_moments_gradient(R, dmu, dvar, X, order):
    R.floating(X, "X")
    R.floating(dmu, "dmu")
    R.floating(dvar, "dvar")
    if dmu.dtype != X.dtype or dvar.dtype != X.dtype:
        R.maybe("dmu/dvar dtype differs from X")
    nhwc, Cn = moments_layout(R, X, order)
    R.need(list(dmu.shape) == [Cn] and list(dvar.shape) == [Cn], "dmu/dvar shape != [C]")
    R.big([(X.shape, X.dtype)])
    if X.numel() == 0:
        return [empty_ok(X.shape, X.dtype)]
    x = P(X).astype(np.float64)
    n = X.numel() // Cn
    shp = [1] * X.dim()
    shp[-1 if nhwc else 1] = Cn
    mu, va = P(dmu).astype(np.float64).reshape(shp), P(dvar).astype(np.float64).reshape(shp)
    with np.errstate(all="ignore"):
        out = (mu + 2 * va * x) / n
        mag = (np.abs(mu) + 2 * np.abs(va * x)) / n
    return [Out(X.shape, X.dtype, out, "close", tol(X.dtype) * 8, 0, fn=mag)]


# --- batch_box_cox

def g_batch_box_cox(r, nr):
    dt = r.choice([F32, F64]) if r.random() < 0.9 else r.choice(ALL_DTYPES)
    shp = [dim(r, 5)] + shape(r, r.randint(0, 2))
    D = math.prod(shp[1:])
    x = nr.uniform(-3, 6, shp)
    l1 = nr.uniform(-2, 2, D)
    l1[nr.random(D) < 0.3] = 0.0
    l2 = nr.uniform(-2, 2, D)
    if r.random() < 0.15 and x.size:
        special_fill(r, nr, x.reshape(-1))
    X = torch.from_numpy(x).to(dt)
    L1 = torch.from_numpy(l1).to(dt if r.random() < 0.93 else F64)
    L2 = torch.from_numpy(l2).to(dt)
    if r.random() < 0.1:
        L1 = L1[: max(D - 1, 0)] if r.random() < 0.5 else torch.cat([L1, L1[:1]])
    mbs = r.choice([256, 0, 1, 6, -3, 2**62])
    return G([X, L1, L2, mbs])


def r_batch_box_cox(R, X, L1, L2, mbs):
    R.need(X.dim() >= 1, "data rank 0")
    R.dtype(X, "data", (F32, F64), maybe=(F16, BF16))
    if X.numel() == 0:
        R.host.update((1, 2))  # lambdas unchecked
        return [empty_ok(X.shape, X.dtype)]
    D = math.prod(X.shape[1:])
    R.need(L1.numel() == D and L2.numel() == D, "lambda numel != D")
    R.need(L1.dtype == X.dtype and L2.dtype == X.dtype, "lambda dtype differs from data")
    x = P(X).astype(np.float64).reshape(X.shape[0], D)
    l1 = P(L1).astype(np.float64).reshape(D)
    l2 = P(L2).astype(np.float64).reshape(D)
    s = np_round(x + l2, X.dtype).astype(np.float64)  # x + lambda2 rounded in the data dtype
    with np.errstate(all="ignore"):
        t = np.where(np.isnan(s), np.nan, np.maximum(s, 1e-6))
        lt = np.log(t)
        pw = np.exp(l1 * lt)
        safe = np.where(l1 == 0, 1.0, l1)
        y = np.where(l1 == 0, lt, (pw - 1) / safe)
        mag = np.where(l1 == 0, np.abs(lt) + 1, (np.abs(pw) * (1 + np.abs(l1 * lt)) + 1) / np.abs(safe))
    e = {F32: 1.2e-7, F64: 2.3e-16}.get(X.dtype, 1e-3)
    return [Out(X.shape, X.dtype, y.reshape(X.shape), "close", 16 * e, 0, fn=mag.reshape(X.shape))]


# --- batch_bucketize / batch_bucket_one_hot

def g_batch_bucketize(r, nr):
    N, Dn = dim(r), dim(r, 5)
    ff = ften(r, nr, [N, Dn], fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES), scale=2.0)
    K = r.randint(0, 4)
    idx = nr.integers(0, max(Dn, 1), K) if Dn else np.zeros(K, np.int64)
    lens = nr.integers(0, 4, K)
    b = np.sort(nr.standard_normal(int(lens.sum())) * 2) if r.random() < 0.8 else nr.standard_normal(int(lens.sum()))
    if b.size and r.random() < 0.3:
        b[nr.integers(0, b.size)] = b[0]
        if ff.numel() and ff.dtype.is_floating_point:
            ff.view(-1)[0] = float(b[0])
    bd = r.choice([F32, F32, F64, F16, BF16]) if r.random() < 0.95 else I32
    return G([ff, iten(idx, idtype(r)), torch.from_numpy(b).to(bd), iten(lens, idtype(r))],
             idx={(1,): Dn}, lens=[(3,)])


def promote_pair(R, a, b, an, bn):
    R.dtype(a, an, (F32, F64), maybe=(F16, BF16))
    R.dtype(b, bn, FLOATS, maybe=())
    return torch.result_type(a, b)


def r_batch_bucketize(R, ff, idx, bnd, lengths):
    pt = promote_pair(R, ff, bnd, "float_features", "boundaries")
    R.index(idx, "indices")
    R.index(lengths, "lengths")
    R.need(ff.dim() == 2, "float_features not 2-D")
    R.need(idx.dim() == 1 and lengths.dim() == 1 and bnd.dim() == 1, "indices/lengths/boundaries not 1-D")
    R.need(lengths.numel() == idx.numel(), "len(lengths) != len(indices)")
    R.in_range(idx, 0, ff.shape[1], "indices")
    lens = R.lengths(lengths, "lengths")
    R.need(sum(lens) == bnd.numel(), "sum(lengths) != len(boundaries)", value=True)
    N, K = ff.shape[0], len(lens)
    if N * K == 0:
        return [empty_ok([N, K], I32)]
    x = P(ff.to(pt)).astype(np.float64)
    b = P(bnd.to(pt)).astype(np.float64).ravel()
    ix = P(idx).astype(np.int64)
    out = np.zeros((N, K), np.int64)
    off = 0
    for j, l in enumerate(lens):
        bj = b[off:off + l]
        for i in range(N):
            v = x[i, ix[j]]
            k = 0
            while k < l and not (v <= bj[k]):
                k += 1
            out[i, j] = k
        off += l
    return [exact(out, I32)]


def g_batch_bucket_one_hot(r, nr):
    shp = [dim(r)] + shape(r, r.randint(0, 2), 3)
    X = ften(r, nr, shp, fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES), scale=2.0)
    D = math.prod(shp[1:])
    lens = nr.integers(1, 4, D)
    if D and r.random() < 0.08:
        lens[nr.integers(0, D)] = 0
    b = np.sort(nr.standard_normal(int(lens.sum())) * 2)
    if b.size > 1 and r.random() < 0.3:
        b[1] = b[0]
        if X.numel() and X.dtype.is_floating_point:
            X.view(-1)[0] = float(b[0])
    bd = r.choice([F32, F32, F64, F16]) if r.random() < 0.95 else I64
    return G([X, iten(lens, idtype(r)), torch.from_numpy(b).to(bd)], lens=[(1,)])


def r_batch_bucket_one_hot(R, X, lengths, bnd):
    pt = promote_pair(R, X, bnd, "data", "boundaries")
    R.index(lengths, "lengths")
    R.need(X.dim() >= 1, "data rank 0")
    D = math.prod(X.shape[1:])
    R.need(lengths.numel() == D, "lengths.numel() != D")
    if lengths.dim() != 1:
        R.maybe("lengths not 1-D")
    if bnd.dim() != 1:
        R.maybe("boundaries not 1-D")
    lens = [int(v) for v in P(lengths).ravel()] if lengths.numel() else []
    R.need(all(v > 0 for v in lens), "lengths must be > 0", value=True)
    R.need(sum(lens) == bnd.numel(), "sum(lengths) != len(boundaries)", value=True)
    N = X.shape[0]
    W = sum(lens) + D
    odt = (X.dtype, F32)
    if N * W == 0:
        return [Out([N, W], odt, mode="shape")]
    x = P(X.to(pt)).astype(np.float64).reshape(N, D)
    b = P(bnd.to(pt)).astype(np.float64).ravel()
    out = np.zeros((N, W))
    skip = np.zeros((N, W), bool)
    off, bo = 0, 0
    for j, l in enumerate(lens):
        bj = b[bo:bo + l]
        for i in range(N):
            v = x[i, j]
            if np.isnan(v):
                skip[i, off:off + l + 1] = True
                continue
            lo = int(np.searchsorted(bj, v, "left"))
            up = int(np.searchsorted(bj, v, "right"))
            out[i, off + (lo + up) // 2] = 1.0
        off += l + 1
        bo += l
    return [Out([N, W], odt, out, "exact", skip=skip)]


# --- concat_batch_mat_mul_batch_gather

def g_concat_batch_mat_mul_batch_gather(r, nr):
    n = r.randint(1, 4)
    shp = [dim(r)] + shape(r, r.randint(0, 2), 3)
    dt = fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES)
    xs = [ften(r, nr, shp, dt) for _ in range(n)]
    if r.random() < 0.08 and n > 1:
        k = r.randrange(n)
        xs[k] = ften(r, nr, shp[:-1] + [shp[-1] + 1], dt) if r.random() < 0.5 else xs[k].to(F64 if dt != F64 else F32)
    if r.random() < 0.05:
        xs = []
    J = r.randint(0, 6)
    idx = nr.integers(0, max(n * n, 1), J)
    ishape = [J] if r.random() < 0.92 else [1, J]
    return G([iten(idx, idtype(r), ishape), xs], idx={(0,): n * n})


def cbg_checks(R, idx, xs):
    R.index(idx, "indices")
    R.need(len(xs) >= 1, "no inputs")
    X0 = xs[0]
    R.need(X0.dim() >= 1, "X_1 rank 0")
    R.floating(X0, "inputs")
    for x in xs:
        R.need(x.dtype == X0.dtype, "input dtypes differ")
        R.need(list(x.shape) == list(X0.shape), "input shapes differ")
    R.need(idx.dim() == 1, "indices not 1-D")
    n = len(xs)
    R.in_range(idx, 0, n * n, "indices")
    return X0, n


def r_concat_batch_mat_mul_batch_gather(R, idx, xs):
    X0, n = cbg_checks(R, idx, xs)
    B, J = X0.shape[0], idx.numel()
    if B * J == 0:
        return [empty_ok([B, J], X0.dtype)]
    Cm = np.stack([P(x).astype(np.float64).reshape(B, -1) for x in xs], 1)
    S = Cm @ np.swapaxes(Cm, 1, 2)
    Sm = np.abs(Cm) @ np.swapaxes(np.abs(Cm), 1, 2)
    ix = P(idx).astype(np.int64)
    E = max(1, Cm.shape[2])
    return [Out([B, J], X0.dtype, S.reshape(B, -1)[:, ix], "close", tol(X0.dtype) * (2 + E), 0,
                fn=Sm.reshape(B, -1)[:, ix])]


def g_concat_batch_mat_mul_batch_gather_gradient(r, nr):
    g = g_concat_batch_mat_mul_batch_gather(r, nr)
    idx, xs = g.args
    B = xs[0].shape[0] if xs and xs[0].dim() else 1
    shp = [B, idx.numel()] if r.random() < 0.92 else [B, idx.numel() + 1]
    dt = xs[0].dtype if xs and r.random() < 0.93 else r.choice([F32, F64])
    g.args.append(ften(r, nr, shp, dt))
    return g


def r_concat_batch_mat_mul_batch_gather_gradient(R, idx, xs, grad):
    X0, n = cbg_checks(R, idx, xs)
    B, J = X0.shape[0], idx.numel()
    R.need(grad.dtype == X0.dtype, "grad dtype differs from the inputs'")
    R.need(list(grad.shape) == [B, J], f"grad shape {list(grad.shape)} != [B, J] = {[B, J]}")
    if X0.numel() == 0:
        return [empty_ok(x.shape, X0.dtype) for x in xs]
    Cm = np.stack([P(x).astype(np.float64).reshape(B, -1) for x in xs], 1)  # [B, n, E]
    g = P(grad).astype(np.float64).reshape(B, J)
    ix = P(idx).astype(np.int64).reshape(-1)
    dC = np.zeros(Cm.shape)
    mC = np.zeros(Cm.shape)
    with np.errstate(all="ignore"):  # the sparse form: only the pairs named by indices
        for j in range(J):
            p, q = divmod(int(ix[j]), n)
            dC[:, p] += g[:, j:j + 1] * Cm[:, q]
            dC[:, q] += g[:, j:j + 1] * Cm[:, p]
            mC[:, p] += np.abs(g[:, j:j + 1] * Cm[:, q])
            mC[:, q] += np.abs(g[:, j:j + 1] * Cm[:, p])
    k = 2 + 2 * max(J, 1)
    return [Out(x.shape, X0.dtype, dC[:, i].reshape(x.shape), "close", tol(X0.dtype) * k, 0,
                fn=mC[:, i].reshape(x.shape)) for i, x in enumerate(xs)]


# ------------------------------------------------------------------------------------------------
# concat / split family

ANY_DT = [F32, F64, F16, BF16, I32, I64, torch.int8, torch.uint8, torch.bool, torch.complex64]


def axis_args(r, rank, present_p=0.8):
    """(axis, order, add_axis) draws including the invalid combinations."""
    x = r.random()
    if x < present_p:
        axis = r.randint(-rank - 1, rank) if r.random() < 0.9 else r.choice([-2**63, 2**31, 2**62])
        order = None if r.random() < 0.93 else r.choice(ORDERS)
    else:
        axis = None
        order = None if r.random() < 0.5 else (r.choice(ORDERS) if r.random() < 0.85 else r.choice(BAD_ORDERS))
    add = r.random() < 0.2
    return axis, order, add


def resolve_axis(R, axis, order, add, rank, extend=None):
    """Axis XOR order, absent axis from order; with add_axis Concat's axis may be `rank` (extend), Split's may not."""
    extend = add if extend is None else extend
    R.need(not (axis is not None and order is not None), "both axis and order given")
    if axis is None:
        R.need(not add, "add_axis without axis")
        o = "NCHW" if order is None else order
        R.need(o in ORDERS, f"Unsupported storage order: {o!r}")
        axis = 1 if o in ("NCHW", "nchw") else 3
    return R.axis(axis, rank + (1 if extend else 0))


def g_concat(r, nr):
    n = r.randint(1, 4) if r.random() < 0.97 else 0
    rank = r.randint(0, 4)
    base = shape(r, rank, 4)
    axis, order, add = axis_args(r, rank)
    dt = r.choice(ANY_DT)
    xs = []
    for _ in range(n):
        s = list(base)
        if rank and not add and axis is not None and -rank <= axis < rank and r.random() < 0.8:
            s[axis] = dim(r)
        elif rank and not add and axis is None and rank > 1 and r.random() < 0.8:
            s[1] = dim(r)
        xs.append(ften(r, nr, s, dt))
    if xs and r.random() < 0.06:  # huge extents along the axis (F2)
        h = r.choice(HUGE)
        xs = [torch.empty([h, 0]) for _ in range(r.randint(1, 4))]
        axis, order, add = 0, None, False
    elif xs and r.random() < 0.08:
        k = r.randrange(len(xs))
        xs[k] = xs[k].to(F64 if xs[k].dtype != F64 else F32) if r.random() < 0.5 else xs[k].unsqueeze(0)
    return G([xs, axis, order, add])


def r_concat(R, xs, axis, order, add):
    R.need(len(xs) >= 1, "no inputs")
    X0 = xs[0]
    rank = X0.dim()
    ax = resolve_axis(R, axis, order, add, rank)
    for j, x in enumerate(xs):
        R.need(x.dtype == X0.dtype, f"input {j} dtype differs")
        R.need(x.dim() == rank, f"input {j} rank differs")
        for i in range(rank):
            if add or i != ax:
                R.need(x.shape[i] == X0.shape[i], f"input {j} dim {i} differs")
    if add:
        out_shape = list(X0.shape[:ax]) + [len(xs)] + list(X0.shape[ax:])
        info = [1] * len(xs)
    else:
        info = [x.shape[ax] for x in xs]
        R.need(all(v <= 2**31 - 1 for v in info), "split_info extent does not fit int32 (F2)")
        R.need(sum(info) <= INT64_MAX, "concat extent overflows int64 (F2)")
        if sum(info) > 2**31 - 1:
            R.maybe("output extent beyond int32 (unspecified; Caffe2 kept sizes in int)")
        out_shape = list(X0.shape)
        out_shape[ax] = sum(info)
    R.big([(out_shape, X0.dtype)])
    si = exact(np.array(info, np.int32), I32)
    if math.prod(out_shape) == 0:
        return [empty_ok(out_shape, X0.dtype), si]
    arrs = [P(x) for x in xs]
    out = np.stack(arrs, ax) if add else np.concatenate(arrs, ax)
    return [exact(out, X0.dtype), si]


g_depth_concat, r_depth_concat = g_concat, r_concat


def g_split(r, nr, depth=False):
    rank = r.randint(0, 4)
    shp = shape(r, rank, 5)
    axis, order, add = axis_args(r, rank, 0.75)
    X = ften(r, nr, shp, r.choice(ANY_DT))
    try:
        ax = resolve_axis(R(), axis, order, add, rank, extend=False)
        Cn = shp[ax]
    except Invalid:
        Cn = r.randint(0, 4)
    k = r.randint(1, 4)
    if add:
        sizes = [1] * Cn
    elif Cn and r.random() < 0.8:
        cuts = sorted(r.randint(0, Cn) for _ in range(k - 1))
        sizes = [b - a for a, b in zip([0] + cuts, cuts + [Cn])]
    else:
        sizes = [r.randint(0, 3) for _ in range(k)]
    if r.random() < 0.1:
        sizes = r.choice([[2**63 - 1, 2**63 - 1, 2], [2**62] * 4, [-1, Cn + 1], [Cn, 0, -0]])
    src = r.random()
    st, sl, num = None, [], -1
    if src < 0.35:
        st = torch.tensor(sizes, dtype=I64).to(r.choice([I32, I32, I64, F32])) if all(abs(s) < 2**31 for s in sizes) \
            else torch.tensor(sizes, dtype=I64)
    elif src < 0.75:
        sl = sizes
    else:
        num = r.choice([1, 2, 3, max(Cn, 1)])
    if r.random() < 0.25:
        num = r.choice([len(sizes), len(sizes) + 1, 0, -2, 2**31, 2**62, INT64_MAX]) if r.random() < 0.5 \
            else len(sizes)
    if r.random() < 0.05:
        X = torch.empty([0, r.choice(HUGE)])
    return G([X, st, sl, axis, order, add, num], fixed=[(1,)])


def split_sizes(R, X, st, sl, axis, order, add, num):
    rank = X.dim()
    R.need(rank >= 1, "input rank 0")
    ax = resolve_axis(R, axis, order, add, rank, extend=False)
    Cn = X.shape[ax]
    R.need(num == -1 or num >= 0, f"num_outputs {num}")
    if st is not None:
        R.need(len(sl) == 0, "split tensor and split argument both given")
        R.dtype(st, "split_tensor", (I32, I64), maybe=SMALL_INTS)
        if st.dim() != 1:
            R.maybe("split tensor not 1-D")
        R.data_dependent = True
        sizes = [int(v) for v in P(st).ravel()] if st.numel() else []
        k = len(sizes)
        R.need(num == -1 or num == k, "num_outputs != split tensor numel")
    elif sl:
        sizes = list(sl)
        k = len(sizes)
        R.need(num == -1 or num == k, "num_outputs != len(split)")
    else:
        if add and num == -1:
            k = Cn
        else:
            R.need(num > 0, "equal split needs num_outputs > 0")
            k = num
        R.need(k <= 2**24, f"{k} outputs: beyond any sane bound on output counts (F6)")
        if add:
            sizes = [1] * k
        else:
            R.need(Cn % k == 0, "channels not divisible by output count")
            sizes = [Cn // k] * k
    R.need(k <= 2**24, f"{k} outputs: beyond any sane bound on output counts (F6)")
    if k > 2**16:
        R.maybe(f"{k} outputs")
        raise TooBig(None)
    if add:
        if any(s < 0 for s in sizes) or any(s != 1 for s in sizes):
            R.maybe("add_axis with sizes other than 1 (ignored, as in Caffe2)")
        R.need(k == Cn, "add_axis: outputs != C")
    else:
        R.need(all(s >= 0 for s in sizes), "negative split size", value=st is not None)
        R.need(sum(sizes) == Cn, f"Sum of split dimensions {sum(sizes)} != {Cn}", value=st is not None)
    R.need(k >= 1 or Cn == 0 and not add, "no outputs")
    return ax, sizes, k


def split_outputs(R, X, ax, sizes, add):
    outs = []
    shp = list(X.shape)
    if add:
        o = shp[:ax] + shp[ax + 1:]
        for i in range(len(sizes)):
            outs.append((o, i))
    else:
        off = 0
        for s in sizes:
            o = list(shp)
            o[ax] = s
            outs.append((o, off))
            off += s
    R.big([(o, X.dtype) for o, _ in outs[:1]])
    if X.numel() == 0:
        return [empty_ok(o, X.dtype) for o, _ in outs]
    x = P(X)
    res = []
    for (o, off), s in zip(outs, sizes):
        if add:
            res.append(exact(np.take(x, off, axis=ax), X.dtype))
        else:
            res.append(exact(np.take(x, np.arange(off, off + s), axis=ax).reshape(o), X.dtype))
    return res


def r_split(R, X, st, sl, axis, order, add, num):
    R.host.add(1)
    ax, sizes, k = split_sizes(R, X, st, sl, axis, order, add, num)
    return split_outputs(R, X, ax, sizes, add)


def g_depth_split(r, nr):
    return g_split(r, nr)


r_depth_split = r_split


def g_concat_gradient(r, nr):
    g = g_split(r, nr)
    X, st, sl, axis, order, add, num = g.args
    sizes = sl if sl else ([int(v) for v in st.tolist()] if st is not None else [1, 1])
    if r.random() < 0.15:
        info = torch.tensor([r.choice(HUGE)] * r.randint(1, 4), dtype=I64)
    else:
        info = torch.tensor(sizes, dtype=I64).to(r.choice([I32, I32, I64])) if all(abs(s) < 2**31 for s in sizes) \
            else torch.tensor(sizes, dtype=I64)
    return G([X, info, axis, order, add], fixed=[(1,)])


def r_concat_gradient(R, gout, info, axis, order, add):
    R.host.add(1)
    ax, sizes, k = split_sizes(R, gout, info, [], axis, order, add, -1)
    return split_outputs(R, gout, ax, sizes, add)


def g_split_by_lengths(r, nr):
    rank = r.randint(1, 3) if r.random() < 0.95 else 0
    shp = shape(r, rank, 6)
    axis, order, _ = axis_args(r, rank, 0.7)
    try:
        ax = resolve_axis(R(), axis, order, False, rank)
        Cn = shp[ax]
    except Invalid:
        Cn = 4
    k = r.randint(1, 3)
    g = r.randint(0, 2)
    m = k * g
    scaling = r.random() < 0.3
    if m and Cn:
        tot = Cn
        if scaling:
            divs = [d for d in range(1, Cn + 1) if Cn % d == 0]
            tot = r.choice(divs)
        cuts = sorted(r.randint(0, tot) for _ in range(m - 1))
        lens = [b - a for a, b in zip([0] + cuts, cuts + [tot])]
    else:
        lens = [0] * m
    if r.random() < 0.12:
        lens = r.choice([[2**62] * 4, [-1, Cn + 1], [2**63 - 1, 2**63 - 1, 2, 0], lens + [1]])
    if r.random() < 0.1:
        k = r.choice([0, -1, len(lens) + 1, 2**31, 2**62])
    X = ften(r, nr, shp, r.choice(ANY_DT))
    L = torch.tensor(lens, dtype=I64).to(idtype(r)) if all(abs(v) < 2**31 for v in lens) else torch.tensor(lens, dtype=I64)
    return G([X, L, k, axis, order, scaling], lens=[(1,)])


def r_split_by_lengths(R, X, L, k, axis, order, scaling):
    R.host.add(1)
    R.data_dependent = True
    R.index(L, "lengths")
    if L.dim() != 1:
        R.maybe("lengths not 1-D")
    R.need(k >= 1, f"num_outputs {k}")
    R.need(X.dim() >= 1, "input rank 0")
    m = L.numel()
    R.need(k <= 2**24, f"{k} outputs: beyond any sane bound on output counts (F6)")
    R.need(m % k == 0, f"len(lengths) = {m} must be divisible by num_outputs = {k}")
    ax = resolve_axis(R, axis, order, False, X.dim())
    Cn = X.shape[ax]
    lens = [int(v) for v in P(L).ravel()] if m else []
    R.need(all(v >= 0 for v in lens), "negative lengths", value=True)
    S = sum(lens)
    R.need(S <= INT64_MAX, "sum of lengths overflows int64", value=True)
    if scaling:
        R.need(Cn % (S if S else 1) == 0, "channels not divisible by S", value=True)
        R.need(S != 0 or Cn == 0, "scaling with S == 0 needs C == 0", value=True)
        mult = Cn // S if S else 1
    else:
        R.need(S == Cn, f"sum(lengths) = {S} must equal input.shape[axis] = {Cn}", value=True)
        mult = 1
    g = m // k
    sizes = [mult * sum(lens[i * g:(i + 1) * g]) for i in range(k)]
    return split_outputs(R, X, ax, sizes, False)


def g_split_gradient(r, nr):
    rank = r.randint(1, 4)
    shp = shape(r, rank, 4)
    add = r.random() < 0.2
    axis = r.randint(0, rank - 1)
    k = r.randint(1, 4)
    dt = fdtype(r) if r.random() < 0.9 else r.choice(ALL_DTYPES)
    if add:
        sizes = [1] * k
        gshape = [list(shp) for _ in range(k)]
        axis = r.randint(0, rank)
    else:
        sizes = [dim(r, 3) for _ in range(k)]
        gshape = []
        for s in sizes:
            g = list(shp)
            g[axis] = s
            gshape.append(g)
    grads = [ften(r, nr, g, dt) if r.random() < 0.7 else None for g in gshape]
    if all(g is None for g in grads) and r.random() < 0.9:
        grads[0] = ften(r, nr, gshape[0], dt)
    x = r.random()
    if x < 0.1:
        sizes = list(sizes)
        sizes[r.randrange(k)] += r.choice([-1, 1, -5])
    elif x < 0.15:
        sizes = sizes + [1]
    elif x < 0.2:
        axis = r.choice([-1, rank + 1, 2**62])
    elif x < 0.25 and any(g is not None for g in grads):
        j = [i for i, g in enumerate(grads) if g is not None][0]
        grads[j] = grads[j].to(F64 if dt != F64 else F32)
    elif x < 0.28:
        sizes = [2**62] * 4
        grads = [torch.empty([2**62, 0]) if i == 0 else None for i in range(4)]
        axis, add = 0, False
    return G([grads, sizes, axis, add])


def r_split_gradient(R, grads, sizes, axis, add):
    R.need(len(grads) == len(sizes), "len(grad_outputs) != len(split_sizes)")
    defined = [g for g in grads if g is not None]
    R.need(len(defined) >= 1, "no gradient defined")
    g0 = defined[0]
    R.floating(g0, "grad_outputs")
    for g in defined:
        R.need(g.dtype == g0.dtype, "grad dtypes differ (F5)")
        R.need(g.dim() == g0.dim(), "grad ranks differ (F5)")
    rank = g0.dim() + (1 if add else 0)
    if axis < 0:
        R.maybe("negative axis (the gradient takes the canonical non-negative axis)")
    ax = R.axis(axis, rank)
    R.need(all(s >= 0 for s in sizes), "negative split size (F5)")
    if add:
        if any(s != 1 for s in sizes):
            R.maybe("add_axis with sizes other than 1")
        for g in defined:
            R.need(list(g.shape) == list(g0.shape), "add_axis: grad shapes differ (F5)")
        out_shape = list(g0.shape[:ax]) + [len(grads)] + list(g0.shape[ax:])
    else:
        R.need(sum(sizes) <= INT64_MAX, "split sizes overflow int64 (F1)")
        for g, s in zip(grads, sizes):
            if g is None:
                continue
            R.need(g.shape[ax] == s, f"grad extent {g.shape[ax]} != split size {s} (F5)")
            for i in range(g0.dim()):
                if i != ax:
                    R.need(g.shape[i] == g0.shape[i], "grad shapes differ off the axis (F5)")
        out_shape = list(g0.shape)
        out_shape[ax] = sum(sizes)
    R.big([(out_shape, g0.dtype)])
    if math.prod(out_shape) == 0:
        return [empty_ok(out_shape, g0.dtype)]
    pieces = []
    for g, s in zip(grads, sizes):
        if g is not None:
            pieces.append(P(g))
        else:
            ps = list(g0.shape)
            if not add:
                ps[ax] = s
            pieces.append(np.zeros(ps, P(g0).dtype))
    out = np.stack(pieces, ax) if add else np.concatenate(pieces, ax)
    return [exact(out, g0.dtype)]


# ------------------------------------------------------------------------------------------------
# dropout family

RATIOS = [0.0, 0.1, 0.3, 0.4, 0.5, 0.7, 0.9, 0.999]
BAD_RATIOS = [1.0, -0.1, 1.5, float("nan"), float("inf"), -float("inf"), -1e-300]


def g_dropout(r, nr):
    X = ften(r, nr, shape(r, r.randint(0, 4), 5), r.choice([F32, F64, F16, BF16]) if r.random() < 0.93 else r.choice(ALL_DTYPES))
    ratio = r.choice(RATIOS) if r.random() < 0.9 else r.choice(BAD_RATIOS)
    is_test = r.random() < 0.3
    gen = None
    if r.random() < 0.5:
        gen = torch.Generator().manual_seed(r.randint(0, 2**31))
    if r.random() < 0.04:
        X = torch.empty([0, r.choice(HUGE)])
    return G([X, ratio, is_test, gen], fixed=[(3,)])


def ratio_ok(R, ratio):
    R.need(0.0 <= ratio < 1.0, f"ratio {ratio} not in [0, 1)")


def dropout_scaled(x, ratio, dtype):
    """X * scale with scale = 1/(1-ratio) in double, rounded once to the op-math type (bit-identical to Caffe2)."""
    if dtype == F64:
        return np.float64(x) * np.float64(1.0 / (1.0 - ratio))
    s = np.float32(1.0 / (1.0 - ratio))
    return np_round((x.astype(np.float32) * s).astype(np.float64), dtype) if dtype != F32 else x.astype(np.float32) * s


def r_dropout(R, X, ratio, is_test, gen):
    R.dtype(X, "X", FLOATS)
    ratio_ok(R, ratio)
    R.big([(X.shape, X.dtype)])
    x = P(X) if X.numel() else None
    dt = X.dtype
    shp = tuple(X.shape)

    def check(outs):
        if len(outs) != 2:
            return f"{len(outs)} outputs"
        Y, mask = outs
        if tuple(Y.shape) != shp or Y.dtype != dt or tuple(mask.shape) != shp or mask.dtype != torch.bool:
            return f"Y {Y.dtype}{list(Y.shape)} mask {mask.dtype}{list(mask.shape)}, expected {dt}{list(shp)} + bool"
        if Y.device.type == "meta" or x is None:
            return None
        y, m = P(Y), P(mask)
        if is_test or ratio == 0.0:
            if not m.all():
                return "mask not all True (is_test or ratio 0)"
            if not same_bits(y, x):
                return "Y != X (is_test or ratio 0)"
            return None
        kept = dropout_scaled(x[m], ratio, dt)
        if not same_values(y[m], kept):
            bad = np.flatnonzero(~eq_nan(y[m], kept))[:3]
            return (f"kept Y != X*scale (scale rounded once) at {len(np.flatnonzero(~eq_nan(y[m], kept)))} of "
                    f"{m.sum()}: X={x[m][bad].tolist()} Y={y[m][bad].tolist()} want={np.asarray(kept)[bad].tolist()}")
        with np.errstate(all="ignore"):
            dropped = x[~m].astype(np.float64) * 0.0
        if not same_values(y[~m].astype(np.float64), dropped):
            return "dropped Y != X*0"
        n = x.size
        if n >= 200:
            k = m.sum()
            mean, sd = n * (1 - ratio), math.sqrt(n * ratio * (1 - ratio))
            if abs(k - mean) > 6 * sd + 1:
                return f"kept {k} of {n}, expected ~{mean:.0f} (ratio {ratio})"
        return None

    return [Out(shp, dt, mode="custom", fn=check)]


def eq_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a == b) | (np.isnan(a) & np.isnan(b))


def same_values(a, b):
    return bool(eq_nan(a, b).all()) if np.size(a) else True


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if not a.size:
        return True
    nan = np.isnan(np.asarray(a, np.float64))  # a NaN's sign bit carries no value
    return bool(eq_nan(a, b).all() and ((np.signbit(a) == np.signbit(b)) | nan).all())


def g_dropout_gradient(r, nr):
    shp = shape(r, r.randint(0, 4), 5)
    dY = ften(r, nr, shp, r.choice([F32, F64, F16, BF16]) if r.random() < 0.93 else r.choice(ALL_DTYPES))
    ratio = r.choice(RATIOS) if r.random() < 0.9 else r.choice(BAD_RATIOS)
    is_test = r.random() < 0.3
    x = r.random()
    if x < 0.75:
        mask = torch.from_numpy(np.asarray(nr.random(shp) >= ratio))
        if r.random() < 0.1:
            mask = mask.reshape(-1)
    elif x < 0.85:
        mask = None
    elif x < 0.93:
        mask = torch.from_numpy(np.asarray(nr.random(shp) >= 0.5)).to(r.choice([torch.uint8, F32, I64]))
    else:
        mask = torch.ones([max(math.prod(shp) + r.choice([-1, 1]), 0)], dtype=torch.bool)
    return G([dY, mask, ratio, is_test])


def r_dropout_gradient(R, dY, mask, ratio, is_test):
    R.dtype(dY, "dY", FLOATS)
    ratio_ok(R, ratio)
    if is_test:
        if mask is not None:
            R.host.add(1)  # ignored in test mode
        if dY.numel() == 0:
            return [empty_ok(dY.shape, dY.dtype)]
        return [Out(dY.shape, dY.dtype, P(dY), "bits")]
    R.need(mask is not None, "train mode needs the mask")
    R.need(mask.dtype == torch.bool, "mask not bool")
    R.need(mask.numel() == dY.numel(), "mask numel != dY numel")
    if dY.numel() == 0:
        return [empty_ok(dY.shape, dY.dtype)]
    y = P(dY)
    m = P(mask).reshape(y.shape)
    with np.errstate(all="ignore"):
        out = np.where(m, dropout_scaled(y, ratio, dY.dtype), y.astype(np.float64) * 0.0)
    return [Out(dY.shape, dY.dtype, out, "values")]


def g_cudnn_dropout(r, nr):
    g = g_dropout(r, nr)
    g.args[3] = None
    return g


def r_cudnn_dropout(R, X, ratio, is_test, gen):
    if X.device.type == "meta":
        R.maybe("meta")
        return [Out(X.shape, X.dtype, mode="shape"), Out([0], torch.uint8, mode="custom", fn=lambda o: None)]
    raise Invalid("cudnn_dropout needs CUDA + cuDNN")


def g_cudnn_dropout_gradient(r, nr):
    dY = ften(r, nr, shape(r, r.randint(0, 3)), r.choice([F32, F16]))
    res = torch.zeros([r.randint(0, 64)], dtype=torch.uint8)
    return G([dY, res, r.choice(RATIOS + BAD_RATIOS[:2]), r.random() < 0.3])


def r_cudnn_dropout_gradient(R, dY, res, ratio, is_test):
    raise Invalid("cudnn_dropout_gradient needs CUDA + cuDNN")


# ------------------------------------------------------------------------------------------------
# margin ranking

def g_margin_ranking_criterion(r, nr, grad=False):
    shp = shape(r, r.randint(0, 3), 5)
    n = math.prod(shp)
    dt = r.choice([F32, F64]) if r.random() < 0.9 else r.choice(ALL_DTYPES)
    X1 = ften(r, nr, shp, dt)
    s2 = shp if r.random() < 0.8 else [n]
    X2 = ften(r, nr, s2, dt if r.random() < 0.95 else r.choice([F32, F64]))
    yd = r.choice([I32, I32, I64, dt, F32, torch.int16, torch.bool])
    Y = torch.from_numpy(nr.choice([-1, 1, 0, 2], n, p=[0.45, 0.45, 0.05, 0.05]).reshape(shp)).to(yd)
    if r.random() < 0.08:
        Y = Y.reshape(-1)[: max(n - 1, 0)] if r.random() < 0.5 else torch.cat([Y.reshape(-1), Y.reshape(-1)[:1]])
    margin = r.choice([1.0, 0.0, -0.5, 0.3, 2.0]) if r.random() < 0.93 else r.choice([float("nan"), float("inf"), -1e300])
    if not grad:
        return G([X1, X2, Y, margin])
    dL = ften(r, nr, shp if r.random() < 0.9 else [n + r.choice([0, 1])], dt)
    return G([X1, X2, Y, dL, margin])


def margin_common(R, X1, X2, Y):
    R.dtype(X1, "X1", (F32, F64))
    R.need(X2.dtype == X1.dtype, "X1/X2 dtypes differ")
    R.need(X1.numel() == X2.numel(), "The two inputs for computing ranking loss should have the same size.")
    R.need(X1.numel() == Y.numel(), "The input and label should have the same size.")
    if Y.dtype in (I32, I64) or Y.dtype == X1.dtype:
        pass
    elif Y.dtype.is_floating_point or Y.dtype.is_complex or Y.dtype == torch.bool:
        R.maybe(f"Y dtype {Y.dtype}")
    else:
        R.maybe(f"Y dtype {Y.dtype}")
    a1 = P(X1).astype(np.float64).ravel()
    a2 = P(X2).astype(np.float64).ravel()
    y = P(Y).astype(np.float64).ravel()
    return a1, a2, y


def r_margin_ranking_criterion(R, X1, X2, Y, margin):
    a1, a2, y = margin_common(R, X1, X2, Y)
    if X1.numel() == 0:
        return [empty_ok(X1.shape, X1.dtype)]
    with np.errstate(all="ignore"):
        d = -y * (a1 - a2) + margin
        out = np.maximum(d, 0.0)
        mag = np.abs(y) * (np.abs(a1) + np.abs(a2)) + abs(margin)
    skip = np.isnan(d) | (np.abs(d) <= 8 * tol(X1.dtype) * mag)  # NaN (max(0, NaN) unspecified) / hinge
    out = np.where(skip, 0, out)
    return [Out(X1.shape, X1.dtype, out.reshape(X1.shape), "close", 4 * tol(X1.dtype), 0,
                skip=skip.reshape(X1.shape), fn=mag.reshape(X1.shape))]


def g_margin_ranking_criterion_gradient(r, nr):
    return g_margin_ranking_criterion(r, nr, grad=True)


def r_margin_ranking_criterion_gradient(R, X1, X2, Y, dL, margin):
    a1, a2, y = margin_common(R, X1, X2, Y)
    R.need(dL.numel() == X1.numel(), "dLoss numel != X1 numel")
    if dL.dtype != X1.dtype:
        R.maybe("dLoss dtype")
    if X1.numel() == 0:
        return [empty_ok(X1.shape, X1.dtype), empty_ok(X2.shape, X1.dtype)]
    g = P(dL).astype(np.float64).ravel()
    with np.errstate(all="ignore"):
        d = -y * (a1 - a2) + margin
        act = d >= 0
        d1 = np.where(act, -y * g, 0.0)
        d2 = np.where(act, y * g, 0.0)
        mag = np.abs(y) * (np.abs(a1) + np.abs(a2)) + abs(margin)
    skip = np.isnan(d) | (np.abs(d) <= 8 * tol(X1.dtype) * mag)
    m = np.abs(y * g)
    return [Out(X1.shape, X1.dtype, np.where(skip, 0, d1).reshape(X1.shape), "close", 2 * tol(X1.dtype), 0,
                skip=skip.reshape(X1.shape), fn=m.reshape(X1.shape)),
            Out(X2.shape, X1.dtype, np.where(skip, 0, d2).reshape(X2.shape), "close", 2 * tol(X1.dtype), 0,
                skip=skip.reshape(X2.shape), fn=m.reshape(X2.shape))]


# ------------------------------------------------------------------------------------------------
# sparse normalize

NORMS = [1.0, 0.0, 0.5, 2.0, 4.0, 1e-3]
BAD_NORMS = [-1.0, float("nan"), float("inf"), 1e300, 1e39, -0.0]


def g_sparse_normalize(r, nr, f16=False):
    shp = [dim(r, 5)] + shape(r, r.randint(0, 2), 4)
    dt = F16 if (f16 and r.random() < 0.85) else (r.choice([F32, F64, F16]) if r.random() < 0.9 else r.choice(ALL_DTYPES))
    p = ften(r, nr, shp, dt, scale=2.0)
    Rn = shp[0]
    n = r.randint(0, 5)
    idx = nr.integers(0, max(Rn, 1), n) if Rn else np.zeros(n, np.int64)
    ishape = [n] if r.random() < 0.85 else [1, n]
    grad = None if r.random() < 0.6 else ften(r, nr, shp if r.random() < 0.7 else [3], r.choice([F32, F16, I64]))
    umn = r.random() < 0.5
    norm = r.choice(NORMS) if r.random() < 0.88 else r.choice(BAD_NORMS)
    if r.random() < 0.04:
        p = torch.empty([0, r.choice(HUGE)], dtype=dt)
        idx = np.zeros(0, np.int64)
        ishape = [0]
    return G([p, iten(idx, idtype(r), ishape), grad, umn, norm], idx={(1,): Rn})


def r_sparse_normalize(R, p, idx, grad, umn, norm, inplace=False, f16=False):
    R.host.add(2)  # grad is ignored
    if f16:
        R.need(p.dtype == F16, "float16_sparse_normalize needs float16")
    else:
        R.dtype(p, "param", (F32, F64, F16), maybe=(BF16,))
    R.index(idx, "indices")
    R.need(p.dim() >= 1, "param rank 0")
    R.need(norm >= 0, f"norm {norm} should be >= 0")  # NaN fails too
    ct = np.float64 if p.dtype == F64 else np.float32
    finite_norm = bool(np.isfinite(ct(norm)))
    if not finite_norm:
        R.maybe(f"norm {norm} not finite in the compute type (F8)")
    R.in_range(idx, 0, p.shape[0], "indices")
    if inplace:
        R.inplace_of = 0
        if p.numel() > 1 and torch._debug_has_internal_overlap(p) == 1:
            if idx.numel():
                raise Invalid("in-place on an expanded (internally overlapping) param (F7)")
            R.maybe("in-place on an expanded param, no rows listed")
    if p.numel() == 0:
        return [empty_ok(p.shape, p.dtype)]
    x = P(p)
    Rn = x.shape[0]
    rows = x.reshape(Rn, -1).astype(ct)
    out = x.reshape(Rn, -1).astype(np.float64).copy()
    skip = np.zeros(out.shape, bool)
    nf = ct(norm)
    with np.errstate(all="ignore"):
        for rix in sorted(set(P(idx).astype(np.int64).ravel().tolist())):
            row = rows[rix]
            n = ct(np.sqrt(np.sum(row * row, dtype=ct), dtype=ct))
            if umn and not (np.isnan(n) or n > nf):
                continue
            if abs(float(n) - float(nf)) <= 1e-5 * max(1.0, float(nf)) and umn:
                skip[rix] = True  # at the max-norm threshold: either branch
                continue
            scale = nf / (n + ct(1e-12))
            out[rix] = (row * scale).astype(np.float64)
    out = out.reshape(x.shape)
    skip = skip.reshape(x.shape)
    if not finite_norm:
        nan_in = np.isnan(x.reshape(Rn, -1)).any(1)

        def check(outs):
            if len(outs) != 1:
                return f"{len(outs)} outputs"
            o = outs[0]
            if tuple(o.shape) != tuple(x.shape) or o.dtype != p.dtype:
                return f"{o.dtype}{list(o.shape)}"
            if o.device.type == "meta":
                return None
            v = P(o).reshape(Rn, -1)
            new_nan = np.isnan(v).any(1) & ~nan_in
            if new_nan.any():
                return f"norm {norm}: NaN appears in rows {np.flatnonzero(new_nan).tolist()} that had none (F8)"
            return None

        return [Out(p.shape, p.dtype, mode="custom", fn=check)]
    r_ = 3e-3 if p.dtype == F16 else (1e-5 if p.dtype == F32 else 1e-12)
    return [Out(p.shape, p.dtype, out, "close", r_, 0, skip=skip, fn=np.abs(out))]


g_sparse_normalize_ = g_sparse_normalize


def r_sparse_normalize_(R, *a):
    return r_sparse_normalize(R, *a, inplace=True)


def g_float16_sparse_normalize(r, nr):
    return g_sparse_normalize(r, nr, f16=True)


g_float16_sparse_normalize_ = g_float16_sparse_normalize


def r_float16_sparse_normalize(R, *a):
    return r_sparse_normalize(R, *a, f16=True)


def r_float16_sparse_normalize_(R, *a):
    return r_sparse_normalize(R, *a, inplace=True, f16=True)


# ------------------------------------------------------------------------------------------------

OPS = [
    "batch_permutation", "batch_permutation_gradient", "batch_gather", "batch_gather_gradient",
    "batch_sparse_to_dense", "batch_sparse_to_dense_gradient", "batch_dense_to_sparse",
    "batch_dense_to_sparse_gradient", "batch_mat_mul", "batch_mat_mul_gradient", "batch_moments",
    "batch_moments_gradient", "batch_box_cox", "batch_bucketize", "concat_batch_mat_mul_batch_gather",
    "batch_bucket_one_hot", "concat_batch_mat_mul_batch_gather_gradient", "concat", "depth_concat", "concat_gradient", "split", "depth_split",
    "split_by_lengths", "split_gradient", "dropout", "dropout_gradient", "cudnn_dropout",
    "cudnn_dropout_gradient", "margin_ranking_criterion", "margin_ranking_criterion_gradient",
    "sparse_normalize", "sparse_normalize_", "float16_sparse_normalize", "float16_sparse_normalize_",
]
GENERATORS = {op: globals()["g_" + op] for op in OPS}
REFERENCES = {op: globals()["r_" + op] for op in OPS}


# ------------------------------------------------------------------------------------------------
# generic perturbations

def leaves(args):
    """[(path, tensor)] for tensors at top level and inside lists."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            out.append(((i,), a))
        elif isinstance(a, (list, tuple)):
            for j, b in enumerate(a):
                if isinstance(b, torch.Tensor):
                    out.append(((i, j), b))
    return out


def get(args, path):
    x = args[path[0]]
    return x if len(path) == 1 else x[path[1]]


def put(args, path, v):
    if len(path) == 1:
        args[path[0]] = v
    else:
        lst = list(args[path[0]])
        lst[path[1]] = v
        args[path[0]] = lst


INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
BAD_INDEX = [-1, -2, 2**31 - 1, 2**31, -2**31, 2**62, -2**63]


def noncontig(t):
    if t.dim() == 0 or t.numel() <= 1:
        return t
    if t.dim() >= 2 and t.shape[0] > 1 and t.shape[-1] > 1:
        return t.transpose(0, -1).contiguous().transpose(0, -1)
    y = torch.empty([2 * s for s in t.shape[:1]] + list(t.shape[1:]), dtype=t.dtype)[::2]
    y.copy_(t)
    return y


def to_meta(t):
    """t on meta with the same strides: .to("meta") would make an expanded (stride-0) tensor
    contiguous, and the reference judges the layout the CPU tensor has."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta").requires_grad_(t.requires_grad)


def expanded(r, t):
    ds = [d for d in range(t.dim()) if t.shape[d] > 1]
    if not ds:
        return t
    d = r.choice(ds)
    return t.narrow(d, 0, 1).expand(t.shape)


def perturb(r, nr, g, notes):
    args = g.args
    lv = [(p, t) for p, t in leaves(args) if p not in g.fixed]
    if lv and r.random() < 0.1:  # dtype
        p, t = r.choice(lv)
        if math.prod(t.shape) < 10**6:
            dt = r.choice([d for d in ALL_DTYPES if d != t.dtype])
            put(args, p, t.to(dt))
            notes.append(f"dtype{list(p)}->{dt}")
    if lv and r.random() < 0.07:  # rank
        p, t = r.choice(lv)
        t = get(args, p)
        x = r.random()
        if x < 0.4:
            t = t.unsqueeze(0)
        elif x < 0.7 and t.dim() >= 1:
            t = t.reshape(-1) if t.dim() > 1 else t.reshape(()) if t.numel() == 1 else t.unsqueeze(-1)
        elif t.dim() >= 1 and t.shape[0] > 0:
            t = t[1:]
        put(args, p, t)
        notes.append(f"rank/shape{list(p)}->{list(t.shape)}")
    for p, bound in g.idx.items():
        t = get(args, p)
        if isinstance(t, torch.Tensor) and t.numel() and t.dtype in INT_DTYPES and r.random() < 0.12:
            v = r.choice(BAD_INDEX + [bound, bound + 1, bound + 7])
            info = torch.iinfo(t.dtype)
            if info.min <= v <= info.max:
                t = t.clone()
                t.view(-1)[nr.integers(0, t.numel())] = v
                put(args, p, t)
                notes.append(f"index{list(p)}={v}")
    for p in g.lens:
        t = get(args, p)
        if isinstance(t, torch.Tensor) and t.numel() and t.dtype in INT_DTYPES and r.random() < 0.1:
            t = t.clone()
            k = nr.integers(0, t.numel())
            v = int(t.view(-1)[k]) + r.choice([-1, 1, -3, 2**31 - 10 if t.dtype == I32 else 2**62])
            info = torch.iinfo(t.dtype)
            if info.min <= v <= info.max:
                t.view(-1)[k] = v
                put(args, p, t)
                notes.append(f"lengths{list(p)}[{k}]={v}")
    # layout: non-contiguous / stride-0 (values may change; the reference sees them)
    for p, _ in leaves(args):
        if p in g.fixed:
            continue
        t = get(args, p)
        x = r.random()
        if x < 0.12 and t.numel() > 1:
            put(args, p, noncontig(t))
            notes.append(f"noncontig{list(p)}")
        elif x < 0.18 and t.numel() > 1:
            put(args, p, expanded(r, t))
            notes.append(f"expanded{list(p)}")
    # aliasing: one tensor passed twice (same object) where shapes and dtypes allow
    lv = [(p, get(args, p)) for p, _ in leaves(args) if p not in g.fixed]
    if r.random() < 0.15:
        pairs = [(a, b) for i, a in enumerate(lv) for b in lv[i + 1:]
                 if a[1].shape == b[1].shape and a[1].dtype == b[1].dtype]
        if pairs:
            (pa, ta), (pb, _) = r.choice(pairs)
            put(args, pb, ta if r.random() < 0.5 else ta.view(ta.shape))
            notes.append(f"alias{list(pb)}={list(pa)}")


def _seeded(seed):
    return torch.Generator().manual_seed(seed)


def _mask(n, ratio, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random(n) >= ratio)


T = torch.tensor
# Directed cases: past bugs (F1-F8, each named below) and three fidelity rules, run through the
# same references as the random cases. Case seed -1-j is DIRECTED[op][j]; device is "cpu",
# "meta" or ("mixed", path of the argument put on meta).
DIRECTED = {op: [] for op in OPS}
for _op, _fn, _dev, _note in [
    ("split", lambda: [torch.zeros(0, 0), None, [2**63 - 1, 2**63 - 1, 2], 0, None, False, -1], "cpu", "F1"),
    ("split", lambda: [torch.zeros(0, 3), None, [2**63 - 1, 2**63 - 1, 2], 0, None, False, -1], "cpu", "F1"),
    ("split", lambda: [torch.zeros(0, 0), None, [2**63 - 1, 2**63 - 1, 2], 0, None, False, -1], "meta", "F1"),
    ("depth_split", lambda: [torch.zeros(0, 0), T([2**62] * 4), [], 0, None, False, -1], "cpu", "F1"),
    ("split_by_lengths", lambda: [torch.zeros(0), T([2**62] * 4), 1, 0, None, False], "cpu", "F1"),
    ("split_by_lengths", lambda: [torch.zeros(0, 3), T([2**62] * 4), 2, 0, None, False], "cpu", "F1"),
    ("concat_gradient", lambda: [torch.zeros(0, 0), T([2**62] * 4), 0, None, False], "cpu", "F1"),
    ("concat", lambda: [[torch.zeros(2**31, 0)], 0, None, False], "cpu", "F2"),
    ("concat", lambda: [[torch.zeros(2**32 + 5, 0)], 0, None, False], "cpu", "F2"),
    ("concat", lambda: [[torch.zeros(2**62, 0)] * 4, 0, None, False], "cpu", "F2"),
    ("concat", lambda: [[torch.zeros(2**62, 0)] * 4, 0, None, False], "meta", "F2"),
    ("depth_concat", lambda: [[torch.zeros(2**31, 0)], 0, None, False], "cpu", "F2"),
    ("depth_concat", lambda: [[torch.zeros(2**62, 0)] * 4, 0, None, False], "meta", "F2"),
    ("batch_mat_mul_gradient", lambda: [torch.ones(2, 4), torch.randn(2, 3), torch.randn(3, 4), False, False, False], ("mixed", (0,)), "F3"),
    ("batch_mat_mul_gradient", lambda: [torch.ones(2, 4), torch.randn(2, 3), torch.randn(3, 4), False, False, False], ("mixed", (2,)), "F3"),
    ("batch_mat_mul_gradient", lambda: [torch.randn(2, 4, dtype=F64), torch.randn(2, 3), torch.randn(3, 4), False, False, False], "cpu", "F4"),
    ("batch_mat_mul_gradient", lambda: [torch.zeros(0, 2, 4, dtype=F16), torch.randn(0, 2, 3, dtype=F64),
                                        torch.randn(0, 3, 4, dtype=F64), False, False, False], "cpu", "F4"),
    ("split_gradient", lambda: [[torch.ones(5, 3), None], [2, 2], 0, False], "cpu", "F5"),
    ("split_gradient", lambda: [[torch.ones(2, 3), torch.ones(2)], [2, 2], 0, False], "cpu", "F5 rank"),
    ("split_gradient", lambda: [[torch.ones(2, 3), None], [2, -1], 0, False], "cpu", "F5 negative"),
    ("split_gradient", lambda: [[torch.ones(2, 3), torch.ones(1, 3)], [2, 1], 0, False], ("mixed", (0, 1)), "F5 devices"),
    ("split_gradient", lambda: [[torch.ones(2, 3), torch.ones(1, 3, dtype=F64)], [2, 1], 0, False], "cpu", "F5 dtypes"),
    ("batch_sparse_to_dense", lambda: [T([1]), T([0]), T([1.0]), None, 2**40, 0.0], "cpu", "F6"),
    ("batch_sparse_to_dense", lambda: [T([1, 0]), T([0]), T([1.0]), None, 2**31, 0.0], "cpu", "F6"),
    ("batch_sparse_to_dense", lambda: [T([1]), T([0]), T([1.0]), None, 2**62, 0.0], "cpu", "F6"),
    ("split", lambda: [torch.zeros(0), None, [], 0, None, False, 2**62], "cpu", "F6"),
    ("split", lambda: [torch.zeros(0), None, [], 0, None, False, 2**31], "cpu", "F6"),
    ("sparse_normalize_", lambda: [torch.ones(1, 2).expand(3, 2), T([0]), None, True, 1.0], "cpu", "F7"),
    ("sparse_normalize", lambda: [T([[3.0, 0.0]]), T([0]), None, False, 1e300], "cpu", "F8"),
    ("margin_ranking_criterion_gradient", lambda: [torch.randn(2, 3), torch.randn(6), T([1, -1, 1, -1, 1, -1]),
                                                   torch.ones(2, 3), 1.0], "cpu", "fidelity 2"),
    ("batch_bucketize", lambda: [T([[0.1, 0.6], [0.9, 0.3]]), T([0, 1]), T([0.5, 0.2, 0.8], dtype=F64), T([1, 2])],
     "cpu", "fidelity 3"),
    ("batch_bucket_one_hot", lambda: [T([[0.1, 0.6], [0.9, 0.3]]), T([1, 2]), T([0.5, 0.2, 0.8], dtype=F64)],
     "cpu", "fidelity 3"),
] + [("dropout", (lambda r=r, d=d: [torch.randn(256, dtype=d), r, False, _seeded(1)]), "cpu", "fidelity 1")
     for r in (0.1, 0.3, 0.4, 0.7, 0.9) for d in (F32, F64)] + [
    ("dropout_gradient", (lambda r=r, d=d: [torch.randn(256, dtype=d), _mask(256, r), r, False]), "cpu", "fidelity 1")
        for r in (0.1, 0.3, 0.7) for d in (F32, F64)]:
    DIRECTED[_op].append((_fn, _dev, _note))


def directed_seeds():
    return [(op, -1 - j) for op in OPS for j in range(len(DIRECTED[op]))]


class Case:
    def __init__(self, op, seed):
        self.op, self.seed = op, seed
        if seed < 0:
            fn, dev, note = DIRECTED[op][-1 - seed]
            torch.manual_seed(-seed)
            self.args, self.notes = fn(), [f"directed {note}"]
            self.device = dev if isinstance(dev, str) else dev[0]
            if not isinstance(dev, str):
                self.mixed_path = dev[1]
            return
        r = random.Random(seed * 7919 + OPS.index(op))
        nr = np.random.default_rng(seed)
        self.notes = []
        for attempt in range(20):
            try:
                g = GENERATORS[op](r, nr)
                perturb(r, nr, g, self.notes)
                break
            except (RuntimeError, ValueError, OverflowError, MemoryError) as e:  # torch refused the input
                self.notes = [f"regen({type(e).__name__})"]
        self.args = g.args
        x = r.random()
        self.device = "cpu"
        lv = leaves(self.args)
        if x < 0.07 and lv:
            self.device = "meta"
        elif x < 0.13 and len(lv) >= 2:
            self.device = "mixed"
            self.mixed_path = r.choice(lv)[0]

    def device_args(self):
        """The args the op is called with (meta / mixed variants); self.args stay on CPU."""
        args = list(self.args)
        if self.device == "meta":
            for p, t in leaves(args):
                put(args, p, to_meta(t))
        elif self.device == "mixed":
            put(args, self.mixed_path, to_meta(get(args, self.mixed_path)))
        return args

    def reference(self):
        """(R, outs) or raises Invalid."""
        ctx = R()
        try:
            outs = REFERENCES[self.op](ctx, *self.args)
        except TooBig as e:
            ctx.maybe("output too big to compute here")
            outs = e.outs
        return ctx, outs


def describe_tensor(t):
    if t is None:
        return "None"
    s = f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}"
    if t.device.type != "cpu":
        s += f"@{t.device.type}"
    if t.numel() > 1 and not t.is_contiguous():
        s += f" stride={tuple(t.stride())}"
    if t.device.type == "cpu" and 0 < t.numel() <= 12:
        s += f" {P(t).ravel().tolist()}"
    return s


def describe(args):
    out = []
    for a in args:
        if isinstance(a, torch.Tensor) or a is None:
            out.append(describe_tensor(a))
        elif isinstance(a, (list, tuple)) and any(isinstance(b, torch.Tensor) or b is None for b in a):
            out.append("[" + ", ".join(describe_tensor(b) for b in a) + "]")
        elif isinstance(a, torch.Generator):
            out.append("Generator")
        else:
            out.append(repr(a))
    return ", ".join(out)
