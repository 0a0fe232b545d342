"""Batch family against NumPy references written from docs/operators/."""
import numpy as np
import pytest
import torch

from torch_caffe2ops import ops
import samples
from utils import (FLOAT_DTYPES, INDEX_DTYPES, assert_close, assert_compile_matches,
                   assert_script_roundtrip, intra_op_threads, noncontiguous, on_device, op, opcheck, rng, t)

C2 = torch.ops.caffe2ops

# ------------------------------------------------------------------------- references


def ref_permutation(X, idx):
    return X[idx]


def ref_permutation_grad(idx, dY):
    dX = np.zeros_like(dY)
    np.add.at(dX, idx, dY)
    return dX


def ref_gather(data, idx, match_outer=False):
    if data.shape[1] == 0:
        return data.copy()
    if not match_outer:
        return np.take(data, idx, axis=1)
    return np.stack([data[b][idx[b]] for b in range(data.shape[0])]).reshape(
        (data.shape[0],) + idx.shape[1:] + data.shape[2:])


def ref_gather_grad(data_shape, idx, grad, axis=1, match_outer=False):
    out = np.zeros(data_shape, dtype=grad.dtype)
    P = int(np.prod(data_shape[:axis]))
    M = data_shape[axis]
    blk = int(np.prod(data_shape[axis + 1:]))
    o = out.reshape(P, M, blk)
    flat = idx.reshape(P, -1) if match_outer else np.broadcast_to(idx.reshape(1, -1), (P, idx.size))
    g = grad.reshape(P, flat.shape[1], blk)
    for p in range(P):
        for i in range(flat.shape[1]):
            o[p, flat[p, i]] += g[p, i]
    return out


def rows_of(lengths):
    return np.repeat(np.arange(len(lengths)), lengths)


def ref_s2d(lengths, idx, values, D, default=0.0):
    out = np.full((len(lengths), D), default, dtype=values.dtype)
    for k, (r, c) in enumerate(zip(rows_of(lengths), idx)):
        out[r, c] = values.reshape(-1)[k]
    return out


def ref_d2s(lengths, idx, dense):
    return dense[rows_of(lengths), idx] if len(idx) else np.zeros(0, dense.dtype)


def ref_mat_mul(A, B, trans_a=False, trans_b=False):
    if A.ndim == 1 and B.ndim == 1:
        return np.array([np.dot(A, B)], dtype=A.dtype)
    if A.ndim == 1:
        return np.matmul(B, A) if trans_b else np.matmul(A, B)
    if B.ndim == 1:
        return np.matmul(np.swapaxes(A, -1, -2), B) if trans_a else np.matmul(A, B)
    a = np.swapaxes(A, -1, -2) if trans_a else A
    b = np.swapaxes(B, -1, -2) if trans_b else B
    return np.matmul(a, b)


def ref_moments(X, order="NCHW"):
    if order.upper() == "NCHW":
        r = X.reshape(X.shape[0], X.shape[1], -1).transpose(1, 0, 2).reshape(X.shape[1], -1)
    else:
        r = X.reshape(-1, X.shape[-1]).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return r.sum(1) / r.shape[1], (r.astype(np.float64) ** 2).sum(1).astype(X.dtype) / r.shape[1]


def ref_moments_grad(dmu, dvar, X, order="NCHW"):
    C = X.shape[1] if order.upper() == "NCHW" else X.shape[-1]
    cnt = X.size // C
    shape = [1] * X.ndim
    shape[1 if order.upper() == "NCHW" else -1] = C
    return (dmu.reshape(shape) + 2 * dvar.reshape(shape) * X) / cnt


def ref_box_cox(x, l1, l2):
    x64 = x.astype(np.float64).reshape(x.shape[0], -1)
    l1 = l1.astype(np.float64).reshape(-1)
    l2 = l2.astype(np.float64).reshape(-1)
    tt = np.maximum(x64 + l2, 1e-6)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = np.where(l1 == 0, np.log(tt), (np.power(tt, np.where(l1 == 0, 1, l1)) - 1) / np.where(l1 == 0, 1, l1))
    return y.reshape(x.shape).astype(x.dtype)


def ref_bucketize(x, idx, boundaries, lengths):
    out = np.zeros((x.shape[0], len(idx)), dtype=np.int32)
    offs = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(x.shape[0]):
        for j, c in enumerate(idx):
            b = boundaries[offs[j]:offs[j + 1]]
            k = 0
            while k < len(b) and not (x[i, c] <= b[k]):
                k += 1
            out[i, j] = k
    return out


def ref_ccbmmbg(idx, xs):
    B = xs[0].shape[0]
    E = int(np.prod(xs[0].shape[1:]))
    C = np.stack([x.reshape(B, E) for x in xs], 1)
    S = C @ np.swapaxes(C, 1, 2)
    return S.reshape(B, len(xs) ** 2)[:, idx]


def ref_one_hot(data, lengths, boundaries):
    N = data.shape[0]
    x = data.reshape(N, int(np.prod(data.shape[1:])))
    offs = np.concatenate([[0], np.cumsum(lengths)])
    cols = []
    for j in range(x.shape[1]):
        b = boundaries[offs[j]:offs[j + 1]]
        lo = np.searchsorted(b, x[:, j], side="left")
        up = np.searchsorted(b, x[:, j], side="right")
        oh = np.zeros((N, lengths[j] + 1), dtype=data.dtype)
        oh[np.arange(N), (lo + up) // 2] = 1
        cols.append(oh)
    return np.concatenate(cols, 1) if cols else np.zeros((N, 0), data.dtype)


# ------------------------------------------------------------------------- worked examples


def test_spec_examples():
    X = torch.tensor([[1., 2], [3, 4], [5, 6]])
    assert C2.batch_permutation(X, torch.tensor([2, 0, 1], dtype=torch.int32)).tolist() == [[5, 6], [1, 2], [3, 4]]
    dY = torch.tensor([[1., 1], [2, 2], [3, 3]])  # rows a, b, c
    assert C2.batch_permutation_gradient(torch.tensor([2, 0, 1]), dY).tolist() == [[2, 2], [3, 3], [1, 1]]

    D = torch.tensor([[1.0, 1.2, 2.4, 4.5], [2.3, 3.4, 3.6, 2.3], [4.5, 5.7, 1.2, 4.5]])
    assert_close(C2.batch_gather(D, torch.tensor([0, 2])), [[1.0, 2.4], [2.3, 3.6], [4.5, 1.2]])
    out = C2.batch_gather(torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([[0], [2]]))
    assert out.shape == (2, 2, 1) and out.tolist() == [[[1], [3]], [[4], [6]]]
    out = C2.batch_gather(torch.tensor([[10, 11, 12], [20, 21, 22]]), torch.tensor([[2, 0], [1, 1]]), True)
    assert out.tolist() == [[12, 10], [21, 21]]
    g = C2.batch_gather_gradient(torch.zeros(2, 3), torch.tensor([1, 1, 0]), torch.tensor([[1., 2, 3], [4, 5, 6]]))
    assert g.tolist() == [[3, 3, 0], [6, 9, 0]]

    dense = C2.batch_sparse_to_dense(torch.tensor([2, 3, 1]), torch.tensor([0, 1, 2, 3, 4, 5]),
                                     torch.tensor([6., 7, 8, 9, 10, 11]), dense_last_dim=6)
    assert dense.tolist() == [[6, 7, 0, 0, 0, 0], [0, 0, 8, 9, 10, 0], [0, 0, 0, 0, 0, 11]]
    v = C2.batch_dense_to_sparse(torch.tensor([2, 1]), torch.tensor([0, 2, 1]), torch.tensor([[1., 2, 3], [4, 5, 6]]))
    assert v.tolist() == [1, 3, 5]

    assert (C2.batch_mat_mul(torch.ones(3, 5, 10), torch.ones(3, 10, 6)) == 10).all()
    y = C2.batch_mat_mul(torch.ones(3, 5, 10), torch.ones(2, 3, 10, 6), broadcast=True)
    assert y.shape == (2, 3, 5, 6) and (y == 10).all()

    X = torch.tensor([[[1., 2]], [[3, 4]]])
    mu, var = C2.batch_moments(X)
    assert mu.tolist() == [2.5] and var.tolist() == [7.5]
    assert (C2.batch_moments_gradient(torch.tensor([1.]), torch.tensor([0.]), X) == 0.25).all()
    assert C2.batch_moments_gradient(torch.tensor([0.]), torch.tensor([1.]), X).tolist() == [[[0.5, 1]], [[1.5, 2]]]

    y = C2.batch_box_cox(torch.tensor([[1., 2]]), torch.tensor([0, 0.5]), torch.tensor([0., 1]))
    assert_close(y, [[0.0, 1.4641016]], rtol=1e-6)
    assert_close(C2.batch_box_cox(torch.tensor([[-3.]]), torch.tensor([0.]), torch.tensor([1.])), [[-13.815511]], rtol=1e-6)

    feats = torch.tensor([[1.42, 2.07, 3.19, 0.55, 4.32], [4.57, 2.30, 0.84, 4.48, 3.09], [0.89, 0.26, 2.41, 0.47, 1.05],
                          [0.03, 2.97, 2.43, 4.36, 3.11], [2.74, 5.77, 0.90, 2.63, 0.38]])
    out = C2.batch_bucketize(feats, torch.tensor([0, 1, 4], dtype=torch.int32),
                             torch.tensor([0.5, 1.0, 1.5, 2.5, 3.5, 2.5]), torch.tensor([2, 3, 1], dtype=torch.int32))
    assert out.dtype == torch.int32
    assert out.tolist() == [[2, 1, 1], [2, 1, 1], [1, 0, 0], [0, 2, 1], [2, 3, 0]]
    one = lambda x, b: C2.batch_bucketize(torch.tensor([[x]]), torch.tensor([0]), torch.tensor(b), torch.tensor([len(b)])).item()
    assert one(1.0, [0.5, 1.0]) == 1 and one(0.0, [0.0, 0.0]) == 0 and one(float("nan"), [0.0, 1.0]) == 2

    y = C2.concat_batch_mat_mul_batch_gather(torch.tensor([0, 1, 3]), [torch.tensor([[1., 2]]), torch.tensor([[3., 4]])])
    assert y.tolist() == [[5, 11, 25]]

    data = torch.tensor([[2., 3], [4, 1], [2, 5]])
    lengths = torch.tensor([2, 3], dtype=torch.int32)
    assert C2.batch_bucket_one_hot(data, lengths, torch.tensor([0.1, 2.5, 1, 3.1, 4.5])).tolist() == [
        [0, 1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]]
    assert C2.batch_bucket_one_hot(data, lengths, torch.tensor([0.1, 2.5, 1, 1, 3.1])).tolist() == [
        [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0, 1]]


# ------------------------------------------------------------------------- batch_permutation


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("itype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_batch_permutation_random(seed, itype, dtype):
    r = rng(seed)
    N = int(r.integers(0, 11))
    shape = (N,) + tuple(r.integers(0 if seed == 5 else 1, 6, size=int(r.integers(0, 4))))
    X = r.standard_normal(shape)
    idx = r.permutation(N) if seed % 2 else r.integers(0, max(N, 1), size=N)  # repeats allowed
    Y = C2.batch_permutation(t(X, dtype), t(idx, itype))
    assert Y.dtype == dtype
    assert_close(Y, ref_permutation(X, idx).astype(Y.cpu().numpy().dtype))
    dY = r.standard_normal(shape)
    assert_close(C2.batch_permutation_gradient(t(idx, itype), t(dY, dtype)), ref_permutation_grad(idx, dY), rtol=1e-5)
    assert_close(C2.batch_permutation(noncontiguous(t(X, dtype)), t(idx, itype)), ref_permutation(X, idx).astype(Y.cpu().numpy().dtype))


@pytest.mark.parametrize("itype", INDEX_DTYPES)
def test_batch_permutation_gradient_long_1d(itype):
    # 1-D X (K = 1) with repeats: narrow rows, added by one thread whatever the thread count.
    r = rng(11)
    N = 200_000
    idx = r.integers(0, N, size=N)
    dY = r.standard_normal(N)
    expected = ref_permutation_grad(idx, dY)
    old = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            assert_close(C2.batch_permutation_gradient(t(idx, itype), t(dY)), expected, rtol=1e-12, atol=1e-12)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "expanded"])
def test_batch_permutation_gradient_rows_written_at_first_use(layout):
    # A destination over 4 MiB of rows of a cache line or more: each thread owns a range of
    # rows and writes each at its first contribution, adds the later ones in index order and
    # zeroes the rows no index names. Bit for bit np.add.at into zeros, whatever the thread
    # count: repeated rows, unnamed rows, and a -0.0 gradient (0 + -0.0 is +0.0).
    r = rng(12)
    N, K = 70_000, 16
    idx = r.integers(0, N, size=N)
    values = r.standard_normal((N, K)).astype(np.float32)
    if layout == "expanded":
        values[:] = values[:, :1]
    negzero = np.flatnonzero(np.bincount(idx, minlength=N)[idx] == 1)[:50]
    values[negzero] = -0.0
    expected = np.zeros((N, K), np.float32)
    np.add.at(expected, idx, values)
    dY = torch.from_numpy(values)
    if layout == "transposed":
        dY = dY.t().contiguous().t()
    elif layout == "expanded":
        dY = dY[:, :1].expand(N, K)
    poison = (torch.arange(N), torch.full((N, K), float("nan")))
    for itype in INDEX_DTYPES:
        for threads in (1, 2, 3):
            with intra_op_threads(threads):
                # The output is not zeroed first: leave NaN in the memory it will likely reuse,
                # so that an unnamed row left unwritten shows.
                C2.batch_permutation_gradient(*poison)
                got = C2.batch_permutation_gradient(t(idx, itype), dY)
            assert torch.equal(got.view(torch.int32), torch.from_numpy(expected).view(torch.int32)), (itype, threads)


def test_batch_permutation_gtest_permutations():
    perms = [list(range(8)), list(range(7, -1, -1)), [1, 3, 5, 7, 0, 2, 4, 6], [4, 5, 6, 7, 0, 1, 2, 3], [3, 1, 5, 7, 6, 2, 4, 0]]
    X = torch.arange(8 * 2 * 3 * 2, dtype=torch.float32).reshape(8, 2, 3, 2)
    for p in perms:
        idx = torch.tensor(p, dtype=torch.int32)
        assert torch.equal(C2.batch_permutation(X, idx), X[idx.long()])
        assert torch.equal(C2.batch_permutation_gradient(idx, C2.batch_permutation(X, idx)), X)


def test_batch_permutation_errors():
    X = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match=r"batch_permutation.*value 3 out of range \[0, 3\) at position 1"):
        C2.batch_permutation(X, torch.tensor([0, 3, 1]))
    with pytest.raises(RuntimeError, match=r"value -1 out of range"):
        C2.batch_permutation(X, torch.tensor([0, -1, 1]))
    with pytest.raises(RuntimeError, match=r"must equal len\(indices\)"):
        C2.batch_permutation(X, torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="1-d"):
        C2.batch_permutation(X, torch.tensor([[0, 1, 2]]))
    with pytest.raises(RuntimeError, match="int32 or int64"):
        C2.batch_permutation(X, torch.tensor([0., 1, 2]))
    with pytest.raises(RuntimeError, match="rank >= 1"):
        C2.batch_permutation(torch.tensor(1.), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="batch_permutation_gradient.*out of range"):
        C2.batch_permutation_gradient(torch.tensor([0, 5, 1]), X)
    with pytest.raises(RuntimeError, match=r"batch_permutation_gradient: dY.shape\[0\] = 3 must equal len\(indices\) = 2"):
        C2.batch_permutation_gradient(torch.tensor([0, 1]), X)
    # K = 0 still validates the indices.
    with pytest.raises(RuntimeError, match="out of range"):
        C2.batch_permutation(torch.randn(3, 0), torch.tensor([0, 9, 1]))


@pytest.mark.parametrize("itype", INDEX_DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_index_range_check_reports_the_first_bad_position(itype, threads):
    # The range check scans blocks of indices at full speed and searches one by one only in a
    # block that holds a bad value: the first bad position must be found whichever block,
    # thread or lane it falls in, and values at the bounds must pass.
    n = 40_000
    X = torch.zeros(n, 0)
    good = torch.arange(n, dtype=itype).flip(0)
    assert C2.batch_permutation(X, good).shape == (n, 0)
    for positions, value in [([0], n), ([4095], -1), ([4096, 4097], n), ([39_999], -1),
                             ([12_345, 30_000], torch.iinfo(itype).max), ([20_000, 8_191], torch.iinfo(itype).min)]:
        idx = good.clone()
        for p in positions:
            idx[p] = value
        with intra_op_threads(threads), pytest.raises(
                RuntimeError, match=rf"value {value} out of range \[0, {n}\) at position {min(positions)}$"):
            C2.batch_permutation(X, idx)
    # A bound beyond int32's range (2^31 + 5 rows of nothing): every non-negative int32 index
    # is in range, and negative ones still are not.
    M = 2**31 + 5
    param = torch.zeros(M, 0)
    assert C2.sparse_normalize(param, torch.tensor([2**31 - 1, 0], dtype=itype)).shape == (M, 0)
    for bad in (-1, -(2**31)):
        with pytest.raises(RuntimeError, match=rf"value {bad} out of range \[0, {M}\) at position 1"):
            C2.sparse_normalize(param, torch.tensor([2**31 - 1, bad], dtype=itype))


# ------------------------------------------------------------------------- batch_gather


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("itype", INDEX_DTYPES)
def test_batch_gather_random(seed, itype):
    r = rng(seed)
    B, M = int(r.integers(0 if seed == 7 else 1, 10)), int(r.integers(1, 100))
    tail = tuple(r.integers(1, 3, size=int(r.integers(0, 3))))
    data = r.uniform(-10, 10, size=(B, M) + tail).astype(np.float32)
    idx_shape = [(int(r.integers(1, 10)), 1), (int(r.integers(0, 6)),), (), (2, 3)][seed % 4]
    idx = r.integers(0, M, size=idx_shape)
    out = C2.batch_gather(t(data), t(idx, itype))
    assert_close(out, ref_gather(data, idx))
    grad = r.standard_normal(out.shape)
    assert_close(C2.batch_gather_gradient(t(data, torch.float64), t(idx, itype), t(grad)),
                 ref_gather_grad(data.shape, idx, grad), rtol=1e-10, atol=1e-10)
    # match_outer: each batch row its own index row
    idx2 = r.integers(0, M, size=(B, int(r.integers(1, 20))) + ((2,) if seed % 3 == 0 else ()))
    out = C2.batch_gather(t(data), t(idx2, itype), match_outer=True)
    assert_close(out, ref_gather(data, idx2, True))
    grad = r.standard_normal(out.shape)
    assert_close(C2.batch_gather_gradient(t(data, torch.float64), t(idx2, itype), t(grad), match_outer=True),
                 ref_gather_grad(data.shape, idx2, grad, match_outer=True), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.float16, torch.uint8, torch.float64])
def test_batch_gather_any_dtype(dtype):
    data = (torch.arange(2 * 5 * 3) % 7).reshape(2, 5, 3).to(dtype)
    idx = torch.tensor([4, 0, 0, 2])
    assert torch.equal(C2.batch_gather(data, idx), data[:, idx])
    assert torch.equal(C2.batch_gather(noncontiguous(data), idx), data[:, idx])


@pytest.mark.cpu_only
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gathers_of_whole_lines_past_the_cache_bit_exact(threads):
    # A gather whose blocks are whole 64-byte lines and that moves 32 MiB or more (its output,
    # and as much data as it can read) writes its output with streaming stores on AVX-512
    # machines (elsewhere this checks the ordinary loop): blocks of 1 to 5 lines, indices shared
    # or per outer row, int32 or int64, and each thread's share starting mid-row (5 rows).
    r = rng(23)
    with intra_op_threads(threads):
        X = torch.from_numpy(r.standard_normal((70000, 64)).astype(np.float32))  # 17.9 MB each way
        perm = torch.from_numpy(r.permutation(70000))
        for itype in (torch.int32, torch.int64):
            assert torch.equal(C2.batch_permutation(X, perm.to(itype)), X[perm])
        # (data bytes, output bytes): (19.2M, 19.2M), (3.3M, 33.9M), (64K, 35.2M), (19.2M, 19.2M)
        for dtype, block, (B, M, L) in [(torch.float32, 16, (5, 60000, 60001)), (torch.float64, 16, (257, 100, 1031)),
                                        (torch.int8, 320, (5, 40, 22000)), (torch.float32, 48, (1, 100000, 100000))]:
            data = torch.from_numpy(r.integers(-100, 100, size=(B, M, block))).to(dtype)
            idx = torch.from_numpy(r.integers(0, M, size=L))
            for itype in (torch.int32, torch.int64):
                assert torch.equal(C2.batch_gather(data, idx.to(itype)), data[:, idx])
            if B > 1:
                idx2 = torch.from_numpy(r.integers(0, M, size=(B, L)))
                expected = torch.gather(data, 1, idx2.unsqueeze(-1).expand(B, L, block))
                assert torch.equal(C2.batch_gather(data, idx2, match_outer=True), expected)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_gather_block_sizes_and_regimes(threads):
    # Block widths of every copy class (1 to 400 bytes), with few indices per slab (blocks
    # prefetched one by one) and many (the next slab streamed), over enough positions that the
    # work is split between threads mid-row.
    r = rng(21)
    with intra_op_threads(threads):
        for dtype, block in [(torch.uint8, 1), (torch.float16, 1), (torch.float32, 1), (torch.float64, 1),
                             (torch.float32, 3), (torch.float32, 4), (torch.float64, 3), (torch.float32, 8),
                             (torch.float32, 12), (torch.float32, 16), (torch.float64, 16), (torch.float64, 32),
                             (torch.float32, 5), (torch.float32, 100)]:
            for B, M, L in [(300, 64, 200), (40, 500, 30), (1, 700, 900)]:
                data = torch.from_numpy(r.standard_normal((B, M, block))).to(dtype)
                idx = torch.from_numpy(r.integers(0, M, size=L))
                for itype in (torch.int32, torch.int64):
                    assert torch.equal(C2.batch_gather(data, idx.to(itype)), data[:, idx])
                idx2 = torch.from_numpy(r.integers(0, M, size=(B, L)))
                expected = torch.gather(data, 1, idx2.unsqueeze(-1).expand(B, L, block))
                assert torch.equal(C2.batch_gather(data, idx2, match_outer=True), expected)
                if dtype.is_floating_point and dtype != torch.float16:
                    grad = torch.from_numpy(r.standard_normal((B, L, block))).to(dtype)
                    expected = torch.zeros_like(data).index_add_(1, idx, grad)
                    assert_close(C2.batch_gather_gradient(data, idx, grad), expected, rtol=1e-5, atol=1e-5)
        # Every copy width class: byte blocks of 1 to 300 bytes (exact powers of two, the
        # overlapping pairs between them, and longer rows).
        for block in range(1, 301):
            data = torch.from_numpy(r.integers(0, 255, size=(3, 20, block), dtype=np.uint8))
            idx = torch.from_numpy(r.integers(0, 20, size=700))  # 2100 positions: split at 2 threads
            assert torch.equal(C2.batch_gather(data, idx), data[:, idx]), block
        # Data past the size where the gather prefetches (1 MiB): narrow blocks stream the next
        # slab, wider ones prefetch block by block.
        for dtype, block in [(torch.float16, 1), (torch.float32, 1), (torch.float32, 2), (torch.float64, 8)]:
            data = torch.from_numpy(r.standard_normal((3000, 256, block))).to(dtype)
            for L in (40, 3, 700):
                idx = torch.from_numpy(r.integers(0, 256, size=L))
                assert torch.equal(C2.batch_gather(data, idx), data[:, idx])
                idx2 = torch.from_numpy(r.integers(0, 256, size=(3000, L)))
                expected = torch.gather(data, 1, idx2.unsqueeze(-1).expand(3000, L, block))
                assert torch.equal(C2.batch_gather(data, idx2, match_outer=True), expected)


def test_batch_gather_special_shapes():
    data = torch.randn(3, 0, 2)
    out = C2.batch_gather(data, torch.tensor([[5, 7]]))  # M == 0: DATA's shape, no index read
    assert out.shape == (3, 0, 2)
    out = C2.batch_gather(torch.randn(0, 4), torch.tensor([9, 9]))  # empty output: no check
    assert out.shape == (0, 2)
    assert C2.batch_gather(torch.randn(2, 4, 5), torch.tensor(3)).shape == (2, 5)
    assert C2.batch_gather(torch.randn(2, 4), torch.zeros(0, dtype=torch.long)).shape == (2, 0)


def test_batch_gather_gradient_axis():
    r = rng(3)
    data = r.standard_normal((2, 3, 4, 2))
    idx = r.integers(0, 4, size=(5,))
    grad = r.standard_normal((2, 3, 5, 2))
    assert_close(C2.batch_gather_gradient(t(data), t(idx), t(grad), axis=2),
                 ref_gather_grad(data.shape, idx, grad, axis=2), rtol=1e-12)
    assert_close(C2.batch_gather_gradient(t(data), t(idx), t(grad), axis=-2),
                 ref_gather_grad(data.shape, idx, grad, axis=2), rtol=1e-12)


def test_batch_gather_errors():
    data = torch.randn(2, 5)
    with pytest.raises(RuntimeError, match=r"INDICES element is out of DATA bounds, id=5 axis_dim=5"):
        C2.batch_gather(data, torch.tensor([1, 5]))
    with pytest.raises(RuntimeError, match=r"id=-1"):
        C2.batch_gather(data, torch.tensor([-1]))
    with pytest.raises(RuntimeError, match="at least 2-D"):
        C2.batch_gather(torch.randn(5), torch.tensor([1]))
    with pytest.raises(RuntimeError, match="same outer dims"):
        C2.batch_gather(data, torch.tensor([[1], [2], [3]]), True)
    with pytest.raises(RuntimeError, match="same outer dims"):
        C2.batch_gather(data, torch.tensor(1), True)
    # match_outer: every index row is checked, not only the first
    with pytest.raises(RuntimeError, match="out of DATA bounds"):
        C2.batch_gather(data, torch.tensor([[1, 2], [3, 7]]), True)
    with pytest.raises(RuntimeError, match="int32 or int64"):
        C2.batch_gather(data, torch.tensor([1.0]))
    with pytest.raises(RuntimeError, match="outer dimensions should match"):
        C2.batch_gather_gradient(data, torch.tensor([1]), torch.randn(3, 1))
    with pytest.raises(RuntimeError, match="not implemented on tensor of type"):
        C2.batch_gather_gradient(data.int(), torch.tensor([1]), torch.randn(2, 1).int())
    with pytest.raises(RuntimeError, match="out of DATA bounds"):
        C2.batch_gather_gradient(data, torch.tensor([8]), torch.randn(2, 1))


# ------------------------------------------------------------------------- sparse <-> dense


def random_sparse(r, B, D, unique=True):
    lengths = r.integers(0 if not unique else 1, D + 1, size=B)
    idx = np.concatenate([r.choice(D, l, replace=False) if unique else r.integers(0, D, size=l) for l in lengths] or [np.zeros(0, int)])
    return lengths, idx.astype(np.int64)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ltype", INDEX_DTYPES)
@pytest.mark.parametrize("itype", INDEX_DTYPES)
def test_sparse_to_dense_random(seed, ltype, itype):
    r = rng(seed)
    B, D = int(r.integers(5, 11)), int(r.integers(5, 11))
    default = float(r.uniform(2, 3))
    lengths, idx = random_sparse(r, B, D)
    values = r.random(len(idx)).astype(np.float32)
    expected = ref_s2d(lengths, idx, values, D, default)
    out = C2.batch_sparse_to_dense(t(lengths, ltype), t(idx, itype), t(values), dense_last_dim=D, default_value=default)
    assert_close(out, expected)
    S = torch.rand(B, D)
    assert_close(C2.batch_sparse_to_dense(t(lengths, ltype), t(idx, itype), t(values), S, default_value=default), expected)
    assert_close(C2.batch_sparse_to_dense(t(lengths, ltype), t(idx, itype), t(values), torch.rand(1, D), D, default), expected)
    dense = r.random((B, D))
    assert_close(C2.batch_dense_to_sparse(t(lengths, ltype), t(idx, itype), t(dense)), ref_d2s(lengths, idx, dense))
    gv = r.random(len(idx))
    assert_close(C2.batch_dense_to_sparse_gradient(t(lengths, ltype), t(idx, itype), t(gv), t(dense)),
                 ref_s2d(lengths, idx, gv, D), rtol=1e-12)
    assert_close(C2.batch_sparse_to_dense_gradient(t(lengths, ltype), t(idx, itype), t(dense)),
                 ref_d2s(lengths, idx, dense), rtol=1e-12)


def test_sparse_to_dense_duplicates_last_wins_and_edges():
    out = C2.batch_sparse_to_dense(torch.tensor([3]), torch.tensor([1, 1, 1]), torch.tensor([1., 2, 3]), dense_last_dim=2)
    assert out.tolist() == [[0, 3]]
    out = C2.batch_sparse_to_dense(torch.tensor([0, 0]), torch.zeros(0, dtype=torch.long), torch.zeros(0), dense_last_dim=3, default_value=7)
    assert out.tolist() == [[7] * 3] * 2
    out = C2.batch_sparse_to_dense(torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.long), torch.zeros(0), dense_last_dim=4)
    assert out.shape == (0, 4)
    # values of any shape with numel L are taken flattened
    out = C2.batch_sparse_to_dense(torch.tensor([2, 2]), torch.tensor([0, 1, 1, 0]), torch.tensor([[1., 2], [3, 4]]), dense_last_dim=2)
    assert out.tolist() == [[1, 2], [4, 3]]
    assert C2.batch_dense_to_sparse(torch.tensor([0, 0]), torch.zeros(0, dtype=torch.long), torch.randn(2, 3)).shape == (0,)


def test_sparse_dense_errors():
    L, I, V = torch.tensor([2, 1]), torch.tensor([0, 2, 1]), torch.tensor([1., 2, 3])
    with pytest.raises(RuntimeError, match=r"an index must name a column of dense, whose last dim is 3, got 3"):
        C2.batch_sparse_to_dense(L, torch.tensor([0, 3, 1]), V, dense_last_dim=3)
    with pytest.raises(RuntimeError, match="value -1 out of range"):
        C2.batch_sparse_to_dense(L, torch.tensor([0, -1, 1]), V, dense_last_dim=3)
    with pytest.raises(RuntimeError, match=r"sum of lengths \(4\)"):
        C2.batch_sparse_to_dense(torch.tensor([2, 2]), I, V, dense_last_dim=3)
    with pytest.raises(RuntimeError, match="is negative"):
        C2.batch_sparse_to_dense(torch.tensor([4, -1]), I, V, dense_last_dim=3)
    with pytest.raises(RuntimeError, match="The last dim of dense must be >= 1"):
        C2.batch_sparse_to_dense(L, I, V)
    with pytest.raises(RuntimeError, match="not aligned"):
        C2.batch_sparse_to_dense(L, I, V, torch.zeros(2, 4), 3)
    with pytest.raises(RuntimeError, match="2-D"):
        C2.batch_sparse_to_dense(L, I, V, torch.zeros(2, 4, 1))
    with pytest.raises(RuntimeError, match="values must have one entry per index: indices has 3 elements, values 2"):
        C2.batch_sparse_to_dense(L, I, torch.tensor([1., 2]), dense_last_dim=3)
    with pytest.raises(RuntimeError, match="1-D"):
        C2.batch_sparse_to_dense(L.reshape(2, 1), I, V, dense_last_dim=3)
    dense = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="must name a column of dense, whose last dim is 3"):
        C2.batch_dense_to_sparse(L, torch.tensor([0, 3, 1]), dense)
    with pytest.raises(RuntimeError, match="must equal dense.shape"):
        C2.batch_dense_to_sparse(torch.tensor([3]), I, dense)
    with pytest.raises(RuntimeError, match="sum of lengths"):
        C2.batch_dense_to_sparse(torch.tensor([1, 1]), I, dense)
    with pytest.raises(RuntimeError, match="2-D"):
        C2.batch_dense_to_sparse(L, I, dense.reshape(-1))


# ------------------------------------------------------------------------- batch_mat_mul


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_batch_mat_mul_random(seed, dtype):
    r = rng(seed)
    batch = tuple(r.integers(1, 3, size=int(r.integers(0, 4))))
    M, K, N = (int(v) for v in r.integers(1, 11, size=3))
    ta, tb = bool(r.integers(2)), bool(r.integers(2))
    A = r.standard_normal(batch + ((K, M) if ta else (M, K)))
    B = r.standard_normal(batch + ((N, K) if tb else (K, N)))
    Y = C2.batch_mat_mul(t(A, dtype), t(B, dtype), ta, tb)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert_close(Y, ref_mat_mul(A, B, ta, tb), rtol=tol, atol=tol)
    G = r.standard_normal(Y.shape)
    gA, gB = C2.batch_mat_mul_gradient(t(G, dtype), t(A, dtype), t(B, dtype), ta, tb)
    a = np.swapaxes(A, -1, -2) if ta else A
    b = np.swapaxes(B, -1, -2) if tb else B
    ga, gb = G @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ G
    assert_close(gA, np.swapaxes(ga, -1, -2) if ta else ga, rtol=tol, atol=tol)
    assert_close(gB, np.swapaxes(gb, -1, -2) if tb else gb, rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(8))
def test_batch_mat_mul_broadcast_and_vectors(seed):
    r = rng(seed)
    vals = list(r.integers(0, 3, size=3))
    c1, c2 = int(r.integers(0, 4)), int(r.integers(0, 4))
    M, K, N = (int(v) for v in r.integers(1, 11, size=3))
    A = r.standard_normal(tuple(vals[len(vals) - c1:]) + (M, K))
    B = r.standard_normal(tuple(vals[len(vals) - c2:]) + (K, N))
    assert_close(C2.batch_mat_mul(t(A), t(B), broadcast=True), np.matmul(A, B), rtol=1e-10, atol=1e-10)
    a, b = r.standard_normal(K), r.standard_normal(K)
    y = C2.batch_mat_mul(t(a), t(b), True, True)
    assert y.shape == (1,)
    assert_close(y, [a @ b], rtol=1e-10)
    Bm = r.standard_normal((2, K, N))
    assert_close(C2.batch_mat_mul(t(a), t(Bm), trans_a=True), np.matmul(a, Bm), rtol=1e-10)
    assert_close(C2.batch_mat_mul(t(a), t(np.swapaxes(Bm, -1, -2).copy()), trans_b=True), np.matmul(a, Bm), rtol=1e-10)
    Am = r.standard_normal((3, M, K))
    assert_close(C2.batch_mat_mul(t(Am), t(b), trans_b=True), np.matmul(Am, b), rtol=1e-10)
    # unlike Caffe2: trans_a with a 1-D B gives [..., M]
    assert_close(C2.batch_mat_mul(t(np.swapaxes(Am, -1, -2).copy()), t(b), trans_a=True), np.matmul(Am, b), rtol=1e-10)


def test_batch_mat_mul_caffe2_rules():
    # rank padding without broadcast is fine while padded batch dims are identical
    assert C2.batch_mat_mul(torch.ones(1, 2, 3), torch.ones(3, 4)).shape == (1, 2, 4)
    assert C2.batch_mat_mul(torch.ones(2, 3), torch.ones(1, 3, 4)).shape == (1, 2, 4)
    # 0 broadcasts against any size
    y = C2.batch_mat_mul(torch.ones(0, 2, 3), torch.ones(5, 3, 4), broadcast=True)
    assert y.shape == (0, 2, 4)
    # K = 0 gives zeros
    assert (C2.batch_mat_mul(torch.ones(2, 0), torch.ones(0, 3)) == 0).all()
    with pytest.raises(RuntimeError, match="broadcast=True"):
        C2.batch_mat_mul(torch.ones(5, 2, 3), torch.ones(3, 4))
    with pytest.raises(RuntimeError, match="K mismatch"):
        C2.batch_mat_mul(torch.ones(2, 3), torch.ones(4, 4))
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        C2.batch_mat_mul(torch.ones(2, 2, 3), torch.ones(3, 3, 4), broadcast=True)
    with pytest.raises(RuntimeError, match="same length"):
        C2.batch_mat_mul(torch.ones(2), torch.ones(3))
    with pytest.raises(RuntimeError, match="dtype"):
        C2.batch_mat_mul(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64))


def test_batch_mat_mul_gradient_broadcast_and_vectors():
    r = rng(0)
    cases = [((3,), (3,), False, False, False), ((3,), (2, 3, 4), True, False, False), ((3,), (2, 4, 3), False, True, False),
             ((2, 4, 3), (3,), False, False, False), ((2, 3, 4), (3,), True, False, False),
             ((1, 2, 3), (3, 4), False, False, False), ((5, 2, 3), (1, 3, 4), False, False, True),
             ((2, 1, 3, 2), (4, 4, 3), True, True, True)]
    for sa, sb, ta, tb, bc in cases:
        A = torch.tensor(r.standard_normal(sa), requires_grad=True)
        B = torch.tensor(r.standard_normal(sb), requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: C2.batch_mat_mul(a, b, ta, tb, bc), (A, B))


# ------------------------------------------------------------------------- batch_moments


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", ["NCHW", "NHWC", "nchw", "nhwc"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_batch_moments_random(seed, order, dtype):
    r = rng(seed)
    spatial = (int(r.integers(1, 6)), int(r.integers(1, 6))) if seed % 2 else tuple(int(v) for v in r.integers(1, 4, size=3))
    N, C = int(r.integers(1, 6)), int(r.integers(1, 6))
    shape = (N, C) + spatial if order.upper() == "NCHW" else (N,) + spatial + (C,)
    X = r.standard_normal(shape)
    mu, var = C2.batch_moments(t(X, dtype), order)
    rm, rv = ref_moments(X, order)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close(mu, rm, rtol=tol, atol=tol)
    assert_close(var, rv, rtol=tol, atol=tol)
    dmu, dvar = r.standard_normal(C), r.standard_normal(C)
    assert_close(C2.batch_moments_gradient(t(dmu, dtype), t(dvar, dtype), t(X, dtype), order),
                 ref_moments_grad(dmu, dvar, X, order), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,order", [((64, 3, 32, 32), "NCHW"), ((2, 300, 7), "NCHW"), ((5000, 3), "NHWC"),
                                         ((40, 513), "NHWC"), ((3, 4, 5, 6), "NCHW"), ((1, 1, 70000), "NCHW")])
def test_batch_moments_large_paths(shape, order):
    # Shapes that take each of the kernel's strategies (long runs, wide rows, narrow rows).
    X = rng(1).standard_normal(shape).astype(np.float32)
    mu, var = C2.batch_moments(t(X), order)
    rm, rv = ref_moments(X.astype(np.float64), order)
    assert_close(mu, rm, rtol=1e-5, atol=1e-6)
    assert_close(var, rv, rtol=1e-5, atol=1e-6)


def _moments_in_sixteen_lanes(X):
    """batch_moments of float32 [N, C, S] (S >= 16) added in the CPU kernel's order: per run of
    S, chunks of 1024 elements into 16 float32 lanes (element i to lane i % 16), the lanes
    added in order, each chunk's sum promoted to float64, the runs added in order of N."""
    N, C, S = X.shape
    s, s2 = np.zeros(C), np.zeros(C)
    for n in range(N):
        for c in range(C):
            part, part2 = 0.0, 0.0
            for base in range(0, S, 1024):
                chunk = X[n, c, base:base + 1024]
                full = len(chunk) // 16 * 16
                a, b = np.zeros(16, np.float32), np.zeros(16, np.float32)
                for r in range(0, full, 16):
                    v = chunk[r:r + 16]
                    a, b = a + v, b + v * v
                tail = chunk[full:]
                a[:len(tail)] += tail
                b[:len(tail)] += tail * tail
                sa, sb = a[0], b[0]
                for k in range(1, 16):
                    sa, sb = np.float32(sa + a[k]), np.float32(sb + b[k])
                part, part2 = part + float(sa), part2 + float(sb)
            s[c] += part
            s2[c] += part2
    return (s / (N * S)).astype(np.float32), (s2 / (N * S)).astype(np.float32)


@pytest.mark.cpu_only
def test_batch_moments_float32_sums_in_a_fixed_order():
    # The same bits on every CPU: the AVX-512, AVX2 and baseline code all add in this order.
    # Runs of exactly 1024 with N = 1 divide each float32 sum by a power of two, so the result
    # shows its every bit (longer runs and N > 1 round the sums together again); a run of
    # 2500 (two chunks and a tail of 4) as well.
    for shape in [(1, 6, 1024), (3, 2, 2500)]:
        X = rng(4).standard_normal(shape).astype(np.float32) * 3 + 1
        rm, rv = _moments_in_sixteen_lanes(X)
        for threads in (1, 2):
            with intra_op_threads(threads):
                mu, var = C2.batch_moments(t(X))
            assert np.array_equal(mu.numpy(), rm) and np.array_equal(var.numpy(), rv)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_batch_moments_reduced_precision_long_runs(dtype):
    # Runs of 16 elements or more (converted to float lane by lane) and a tail.
    X = rng(5).standard_normal((4, 3, 203)).astype(np.float32)
    mu, var = C2.batch_moments(t(X).to(dtype))
    rm, rv = ref_moments(t(X).to(dtype).double().numpy())
    tol = 1e-2 if dtype == torch.float16 else 2e-2
    assert_close(mu.double(), rm, rtol=tol, atol=tol)
    assert_close(var.double(), rv, rtol=tol, atol=tol)


@pytest.mark.cpu_only
def test_batch_moments_deterministic_across_threads():
    X = torch.randn(8, 3, 300, 301)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = C2.batch_moments(X)
        torch.set_num_threads(2)
        b = C2.batch_moments(X)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_batch_moments_edges_and_errors():
    mu, var = C2.batch_moments(torch.zeros(3, 0, 4))
    assert mu.shape == (0,) and var.shape == (0,)
    mu, var = C2.batch_moments(torch.zeros(0, 2, 4))
    assert mu.shape == (2,) and torch.isnan(mu).all() and torch.isnan(var).all()
    a = torch.randn(6, 4)
    torch.testing.assert_close(C2.batch_moments(a, "NHWC"), C2.batch_moments(a, "NCHW"))
    with pytest.raises(RuntimeError, match="rank >= 2"):
        C2.batch_moments(torch.randn(5))
    with pytest.raises(RuntimeError, match="Unsupported storage order: NCWH"):
        C2.batch_moments(torch.randn(2, 3), "NCWH")
    with pytest.raises(RuntimeError, match=r"dvar must have shape \[C\]"):
        C2.batch_moments_gradient(torch.zeros(3), torch.zeros(2), torch.randn(2, 3))
    with pytest.raises(RuntimeError, match="float"):
        C2.batch_moments(torch.ones(2, 3, dtype=torch.int32))


# ------------------------------------------------------------------------- batch_box_cox


def box_cox_inputs(r, N, D, zero_mask=None):
    data = np.concatenate([r.uniform(-10, 1 - 1e-3, size=N * D), r.uniform(1 + 1e-3, 10, size=N * D)])
    data = r.permutation(data)[:N * D].reshape(N, D)
    l1 = r.permutation(np.concatenate([r.uniform(-2, -1e-3, D), r.uniform(1e-3, 2, D)]))[:D]
    if zero_mask is not None:
        l1[zero_mask] = 0
    l2 = r.uniform(-2, 2, D)
    base = data + l2
    data = np.where(np.abs(base - 1) < 1e-3, data + 2e-3, data)
    return data, l1, l2


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("min_block_size", [0, 6, 256])
def test_batch_box_cox_random(seed, dtype, min_block_size):
    r = rng(seed)
    N, D = int(r.integers(0, 6)), int(r.integers(1, 6))
    data, l1, l2 = box_cox_inputs(r, N, D, zero_mask=r.random(D) < 0.3)
    npd = np.float32 if dtype == torch.float32 else np.float64
    data, l1, l2 = data.astype(npd), l1.astype(npd), l2.astype(npd)
    y = C2.batch_box_cox(t(data), t(l1), t(l2), min_block_size)
    assert_close(y, ref_box_cox(data, l1, l2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N,D,nonzero", [(1, 1, 0), (2, 1, 0), (1, 3, 0), (2, 3, 0), (1, 5, 2), (3, 6, 3), (2, 7, 4), (2, 7, 5)])
def test_batch_box_cox_fixed_cases(N, D, nonzero):
    r = rng(N * 100 + D)
    data, l1, l2 = box_cox_inputs(r, N, D)
    l1[nonzero:] = 0
    data, l1, l2 = data.astype(np.float32), l1.astype(np.float32), l2.astype(np.float32)
    assert_close(C2.batch_box_cox(t(data), t(l1), t(l2)), ref_box_cox(data, l1, l2), rtol=1e-4, atol=1e-4)


def test_batch_box_cox_large_float32_matches_float64():
    # Long rows exercise the vectorised float32 path against the float64 reference.
    r = rng(7)
    data, l1, l2 = box_cox_inputs(r, 64, 1000, zero_mask=r.random(1000) < 0.2)
    y = C2.batch_box_cox(t(data.astype(np.float32)), t(l1.astype(np.float32)), t(l2.astype(np.float32)))
    ref = ref_box_cox(data.astype(np.float32).astype(np.float64), l1.astype(np.float32).astype(np.float64),
                      l2.astype(np.float32).astype(np.float64))
    # (t^l - 1)/l cancels near t = 1 in any float32 evaluation; 1e-4 is the documented tolerance.
    assert_close(y, ref, rtol=1e-4, atol=1e-4)


def test_batch_box_cox_edges_and_errors():
    data = torch.tensor([[1e-5, 1e-6, 1e-7]])
    y = C2.batch_box_cox(data, torch.zeros(3), torch.tensor([0, 0, 1e-6]))
    assert_close(y, ref_box_cox(data.cpu().numpy(), np.zeros(3, np.float32), np.array([0, 0, 1e-6], np.float32)), rtol=1e-5)
    y = C2.batch_box_cox(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0.5, 0.0]), torch.zeros(2))
    assert torch.isnan(y[0, 0]) and y[0, 1] == 0
    y = C2.batch_box_cox(torch.tensor([[float("nan")]]), torch.tensor([0.0]), torch.zeros(1))
    assert torch.isnan(y).all()
    assert C2.batch_box_cox(torch.zeros(0, 3), torch.zeros(7), torch.zeros(1)).shape == (0, 3)  # lambdas unchecked
    y = C2.batch_box_cox(torch.tensor([1., 2, 3]), torch.tensor([0.]), torch.tensor([0.]))  # 1-D: D = 1
    assert_close(y, np.log([1., 2, 3]).astype(np.float32), rtol=1e-6)
    with pytest.raises(RuntimeError, match="lambda1 must have D = 2"):
        C2.batch_box_cox(torch.zeros(2, 2), torch.zeros(3), torch.zeros(2))
    with pytest.raises(RuntimeError, match="lambda2 must have the dtype"):
        C2.batch_box_cox(torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="rank >= 1"):
        C2.batch_box_cox(torch.tensor(1.), torch.zeros(1), torch.zeros(1))
    with pytest.raises(RuntimeError, match="float32 or float64"):
        C2.batch_box_cox(torch.zeros(2, 2, dtype=torch.float16), torch.zeros(2), torch.zeros(2))


# ------------------------------------------------------------------------- batch_bucketize


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("itype", INDEX_DTYPES)
def test_batch_bucketize_random(seed, itype):
    r = rng(seed)
    N, D = int(r.integers(0, 6)) if seed else 0, 5
    x = r.uniform(0, 5, size=(N, D)).astype(np.float32)
    K = int(r.integers(0, D + 1))
    idx = np.sort(r.choice(D, K, replace=False)) if seed % 2 else r.integers(0, D, size=K)  # duplicates allowed
    lengths = r.integers(0, 5, size=K)
    boundaries = np.concatenate([np.sort(r.standard_normal(l) * 5) if seed % 3 else r.standard_normal(l) * 5 for l in lengths] or [np.zeros(0)]).astype(np.float32)
    out = C2.batch_bucketize(t(x), t(idx, itype), t(boundaries), t(lengths, itype))
    assert out.dtype == torch.int32 and out.shape == (N, K)
    assert (out.cpu().numpy() == ref_bucketize(x, idx, boundaries, lengths)).all()
    if seed % 3:
        for j in range(K):  # sorted borders: torch.bucketize(right=False)
            off = lengths[:j].sum()
            assert (out[:, j].long() == torch.bucketize(t(x[:, idx[j]]), t(boundaries[off:off + lengths[j]]))).all()


def test_batch_bucketize_errors():
    x = torch.rand(3, 2)
    b, ln = torch.tensor([0.5]), torch.tensor([1])
    with pytest.raises(RuntimeError, match="indices value 2 out of range"):
        C2.batch_bucketize(x, torch.tensor([2]), b, ln)  # Caffe2's >= let D through; the port does not
    with pytest.raises(RuntimeError, match="value -1 out of range"):
        C2.batch_bucketize(x, torch.tensor([-1]), b, ln)
    with pytest.raises(RuntimeError, match="is negative"):
        C2.batch_bucketize(x, torch.tensor([0, 1]), torch.tensor([0.5]), torch.tensor([2, -1]))
    with pytest.raises(RuntimeError, match="number of boundaries"):
        C2.batch_bucketize(x, torch.tensor([0]), torch.tensor([0.5, 0.6]), ln)
    with pytest.raises(RuntimeError, match="entries but indices"):
        C2.batch_bucketize(x, torch.tensor([0, 1]), b, ln)
    with pytest.raises(RuntimeError, match="2-D"):
        C2.batch_bucketize(x.reshape(-1), torch.tensor([0]), b, ln)
    with pytest.raises(RuntimeError, match="batch_bucketize: boundaries must be .*float32 or float64, got Long"):
        C2.batch_bucketize(x, torch.tensor([0]), torch.tensor([1]), ln)


@pytest.mark.parametrize("bdtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("fdtype", FLOAT_DTYPES)
def test_bucket_boundaries_any_floating_dtype(fdtype, bdtype):
    # Compared in torch.result_type(features, boundaries), as torch.bucketize does.
    r = rng(3)
    x = torch.from_numpy(r.uniform(-3, 3, size=(7, 3))).to(fdtype)
    x[0, 0] = 0.1  # float32(0.1) > float64(0.1): the promoted comparison decides the bucket
    lengths = torch.tensor([2, 3, 1])
    boundaries = torch.tensor([-1.0, 0.1, -2.0, 0.5, 2.0, 0.25], dtype=bdtype)
    out = C2.batch_bucketize(x, torch.tensor([0, 1, 2]), boundaries, lengths)
    expected = torch.stack([torch.bucketize(x[:, j], b) for j, b in enumerate(boundaries.split([2, 3, 1]))], 1)
    assert out.dtype == torch.int32 and torch.equal(out.long(), expected)
    one_hot = C2.batch_bucket_one_hot(x, lengths, boundaries)
    assert one_hot.dtype == fdtype
    cols = torch.cat([torch.nn.functional.one_hot(expected[:, j], int(n) + 1) for j, n in enumerate(lengths)], 1)
    assert torch.equal(one_hot, cols.to(fdtype))
    meta = C2.batch_bucketize(x.to("meta"), torch.tensor([0, 1, 2], device="meta"), boundaries.to("meta"), lengths.to("meta"))
    assert meta.shape == (7, 3) and meta.dtype == torch.int32


def test_bucket_float64_boundaries_promote_float32_features():
    x = torch.tensor([[0.1]], dtype=torch.float32)
    b64 = torch.tensor([0.1], dtype=torch.float64)
    assert C2.batch_bucketize(x, torch.tensor([0]), b64, torch.tensor([1])).item() == 1  # 0.1f > 0.1
    assert C2.batch_bucketize(x, torch.tensor([0]), b64.float(), torch.tensor([1])).item() == 0
    assert C2.batch_bucket_one_hot(x, torch.tensor([1]), b64).tolist() == [[0.0, 1.0]]


# ------------------------------------------------------------------------- concat_batch_mat_mul_batch_gather


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("itype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_ccbmmbg_random(seed, itype, dtype):
    r = rng(seed)
    n, B = int(r.integers(1, 6)), int(r.integers(0, 5))
    e = tuple(r.integers(0 if seed == 5 else 1, 5, size=int(r.integers(0, 3))))
    xs = [r.standard_normal((B,) + e) for _ in range(n)]
    idx = r.integers(0, n * n, size=int(r.integers(0, 10)))
    y = C2.concat_batch_mat_mul_batch_gather(t(idx, itype), [t(x, dtype) for x in xs])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close(y, ref_ccbmmbg(idx, xs), rtol=tol, atol=tol)


def test_ccbmmbg_errors():
    xs = [torch.randn(2, 3), torch.randn(2, 3)]
    with pytest.raises(RuntimeError, match="value 4 out of range"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([4]), xs)
    with pytest.raises(RuntimeError, match="at least one"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([0]), [])
    with pytest.raises(RuntimeError, match="same type"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([0]), [xs[0], xs[1].double()])
    with pytest.raises(RuntimeError, match="shape of inputs"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([0]), [xs[0], torch.randn(2, 4)])
    with pytest.raises(RuntimeError, match="1-D"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([[0]]), xs)
    with pytest.raises(RuntimeError, match="Axis not in input ndim range"):
        C2.concat_batch_mat_mul_batch_gather(torch.tensor([0]), [torch.tensor(1.)])


# ------------------------------------------------------------------------- batch_bucket_one_hot


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ltype", INDEX_DTYPES)
def test_batch_bucket_one_hot_random(seed, ltype):
    r = rng(seed)
    shape = tuple(int(v) for v in r.integers(1, 6, size=2)) if seed else (0, 3)
    data = r.uniform(-5, 5, size=shape).astype(np.float32)
    D = shape[1]
    lengths = r.integers(1, 5, size=D)
    boundaries = np.concatenate([np.sort(r.standard_normal(l) * 5) for l in lengths]).astype(np.float32)
    if seed % 2:  # ties with duplicate borders: the middle bucket
        boundaries[:] = np.round(boundaries)
        data = np.round(data)
    out = C2.batch_bucket_one_hot(t(data), t(lengths, ltype), t(boundaries))
    assert_close(out, ref_one_hot(data, lengths, boundaries))
    if not seed % 2 and data.size:  # no ties: np.digitize(right=True)
        col = [np.digitize(data[:, j], boundaries[lengths[:j].sum():lengths[:j + 1].sum()], right=True) for j in range(D)]
        offs = np.concatenate([[0], np.cumsum(lengths + 1)])
        for j in range(D):
            assert (out.cpu().numpy()[np.arange(shape[0]), offs[j] + col[j]] == 1).all()


def test_batch_bucket_one_hot_errors():
    d = torch.randn(2, 2)
    with pytest.raises(RuntimeError, match="must be > 0"):
        C2.batch_bucket_one_hot(d, torch.tensor([0, 1]), torch.tensor([0.5]))
    with pytest.raises(RuntimeError, match=r"batch_bucket_one_hot: The sum of length should be equal to the length of boundaries: sum\(lengths\) = 2, boundaries has 1 elements"):
        C2.batch_bucket_one_hot(d, torch.tensor([1, 1]), torch.tensor([0.5]))
    with pytest.raises(RuntimeError, match="lengths must have D = 2"):
        C2.batch_bucket_one_hot(d, torch.tensor([1]), torch.tensor([0.5]))
    with pytest.raises(RuntimeError, match="rank >= 1"):
        C2.batch_bucket_one_hot(torch.tensor(1.), torch.tensor([1]), torch.tensor([0.5]))


# ------------------------------------------------------------------------- autograd


def test_gradcheck_differentiable_ops():
    r = rng(0)
    dd = dict(dtype=torch.float64, requires_grad=True)
    X = torch.randn(5, 2, 3, **dd)
    idx = torch.tensor([3, 0, 4, 4, 1])
    assert torch.autograd.gradcheck(lambda x: C2.batch_permutation(x, idx), (X,))
    data = torch.randn(3, 6, 2, **dd)
    assert torch.autograd.gradcheck(lambda d: C2.batch_gather(d, torch.tensor([[5], [0], [5]])), (data,))
    assert torch.autograd.gradcheck(lambda d: C2.batch_gather(d, torch.tensor([[5, 1], [0, 0], [2, 3]]), True), (data,))
    lengths, ind = torch.tensor([2, 0, 3]), torch.tensor([1, 3, 0, 2, 3])
    vals = torch.randn(5, **dd)
    assert torch.autograd.gradcheck(lambda v: C2.batch_sparse_to_dense(lengths, ind, v, dense_last_dim=4, default_value=1.5), (vals,))
    assert torch.autograd.gradcheck(lambda v: C2.batch_sparse_to_dense(lengths, ind, v, torch.zeros(3, 4)), (vals,))
    dense = torch.randn(3, 4, **dd)
    assert torch.autograd.gradcheck(lambda d: C2.batch_dense_to_sparse(lengths, ind, d), (dense,))
    A, B = torch.randn(2, 3, 4, **dd), torch.randn(2, 5, 4, **dd)
    assert torch.autograd.gradcheck(lambda a, b: C2.batch_mat_mul(a, b, False, True), (A, B))
    for order, shape in (("NCHW", (2, 3, 4, 2)), ("NHWC", (2, 4, 3))):
        Xm = torch.randn(*shape, **dd)
        assert torch.autograd.gradcheck(lambda x: C2.batch_moments(x, order), (Xm,))
        assert torch.autograd.gradcheck(lambda x: C2.batch_moments(x, order)[0], (Xm,))  # dvar missing -> zeros
        assert torch.autograd.gradcheck(lambda x: C2.batch_moments(x, order)[1], (Xm,))
    # the Python wrappers are differentiable too, and scriptable
    f = torch.jit.script(ops.batch_gather)
    assert torch.autograd.gradcheck(lambda d: f(d, torch.tensor([1, 1]), False), (data,))


def test_composite_gradient_ops_double_backward():
    lengths, ind = torch.tensor([2, 1]), torch.tensor([0, 2, 1])
    g = torch.randn(3, dtype=torch.float64, requires_grad=True)
    dense = torch.zeros(2, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda g: C2.batch_dense_to_sparse_gradient(lengths, ind, g, dense), (g,))


@pytest.mark.parametrize("name,args", [
    ("batch_box_cox", lambda x: (x, torch.ones(3, dtype=x.dtype), torch.ones(3, dtype=x.dtype))),
    ("batch_bucket_one_hot", lambda x: (x, torch.tensor([1, 1, 1]), torch.zeros(3, dtype=x.dtype))),
])
def test_no_gradient_ops_raise_on_backward(name, args):
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    y = getattr(C2, name)(*args(x))
    with pytest.raises(RuntimeError, match=f"caffe2ops::{name}"):
        y.sum().backward()


# ------------------------------------------------------------------------- opcheck


def opcheck_cases():
    """The family's sample table (tests/samples/batch.py); tests/test_cuda.py uses it too."""
    return samples.opcheck_cases("batch")


@pytest.mark.parametrize("case", opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case, device):
    name, args = case
    opcheck(name, on_device(args, device))


# ------------------------------------------------------------------------- TorchScript, compile, export


class BatchNet(torch.nn.Module):
    def forward(self, X, idx, data, gidx, lengths, sidx, values, A, B):
        y1 = ops.batch_permutation(X, idx)
        y2 = ops.batch_gather(data, gidx)
        y3 = ops.batch_sparse_to_dense(lengths, sidx, values, dense_last_dim=4, default_value=0.5)
        y4 = ops.batch_dense_to_sparse(lengths, sidx, y3 * 2.0)
        y5 = ops.batch_mat_mul(A, B, trans_b=True)
        mu, var = ops.batch_moments(X)
        return y1, y2, y4, y5, mu, var


def batch_net_inputs():
    dd = dict(dtype=torch.float64)
    return [torch.randn(4, 3, 2, **dd), torch.tensor([3, 1, 0, 2], dtype=torch.int32), torch.randn(2, 5, 3, **dd),
            torch.tensor([[4], [0]]), torch.tensor([2, 0, 1]), torch.tensor([0, 3, 1]), torch.randn(3, **dd),
            torch.randn(2, 3, 4, **dd), torch.randn(2, 5, 4, **dd)]


class NoGradNet(torch.nn.Module):
    def forward(self, x, l1, l2, idx, b, ln, xs: list[torch.Tensor]):
        return (ops.batch_box_cox(x, l1, l2), ops.batch_bucketize(x, idx, b, ln),
                ops.batch_bucket_one_hot(x, ln, b), ops.concat_batch_mat_mul_batch_gather(idx, xs))


def no_grad_inputs():
    return [torch.rand(5, 2), torch.tensor([0., 0.5]), torch.tensor([0.1, 0.2]), torch.tensor([1, 0]),
            torch.tensor([0.3, 0.5, 0.7]), torch.tensor([1, 2]), [torch.randn(5, 3), torch.randn(5, 3)]]


@pytest.mark.slow
def test_torchscript_roundtrip_fresh_process():
    assert_script_roundtrip(BatchNet(), batch_net_inputs())
    assert_script_roundtrip(NoGradNet(), no_grad_inputs(), grad=False)


def test_torch_compile_matches_eager():
    assert_compile_matches(BatchNet(), *batch_net_inputs())
    assert_compile_matches(NoGradNet(), *no_grad_inputs(), grad=False)


def test_torch_compile_inductor_dynamic():
    # Two sizes through one compiled graph: the Meta kernels must be symbolic.
    torch._dynamo.reset()
    f = torch.compile(lambda x, i: C2.batch_moments(C2.batch_permutation(x, i))[1], fullgraph=True, dynamic=True)
    for n in (4, 7):
        x, i = torch.randn(n, 3, 5), torch.randperm(n)
        torch.testing.assert_close(f(x, i), C2.batch_moments(x[i])[1])


def test_torch_export():
    m = BatchNet()
    ins = tuple(batch_net_inputs())
    ep = torch.export.export(m, ins)
    names = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert "caffe2ops.batch_permutation.default" in names and "caffe2ops.batch_mat_mul.default" in names
    for a, b in zip(ep.module()(*ins), m(*ins)):
        torch.testing.assert_close(a, b)


def test_inference_calls_skip_autograd_but_keep_values():
    # Without a gradient to compute, the autograd kernels call the op directly (no graph node).
    data = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([4, 0, 4])
    with_graph = C2.batch_gather(data, idx)
    assert with_graph.grad_fn is not None
    with torch.no_grad():
        plain = C2.batch_gather(data, idx)
    assert plain.grad_fn is None and not plain.requires_grad
    assert torch.equal(plain, with_graph.detach())
    mu, var = C2.batch_moments(data.detach())
    assert mu.grad_fn is None and var.grad_fn is None


def test_lengths_whose_sum_wraps_int64_raise():
    # Each length is >= 0 but the running sum wraps; a wrapped sum equal to numel would pass the
    # "sum == numel" check and send the kernels out of bounds.
    big = torch.tensor([2**62] * 4)
    with pytest.raises(RuntimeError, match="batch_sparse_to_dense: the sum of lengths does not fit int64"):
        C2.batch_sparse_to_dense(big, torch.zeros(0, dtype=torch.long), torch.zeros(0), None, 3)
    with pytest.raises(RuntimeError, match="batch_dense_to_sparse: the sum of lengths does not fit int64"):
        C2.batch_dense_to_sparse(big, torch.zeros(0, dtype=torch.long), torch.zeros(4, 3))
    with pytest.raises(RuntimeError, match="batch_bucketize: the sum of lengths does not fit int64"):
        C2.batch_bucketize(torch.zeros(2, 4), torch.tensor([0, 1, 2, 3]), torch.zeros(0), big)


@pytest.mark.parametrize("threads", [1, 2])
def test_gather_gradients_read_strided_grads_in_place(threads):
    # Expanded (the backward of a sum, or one value per row), transposed and sliced gradients
    # give bit for bit the result of the same values made contiguous, whether or not they view
    # as [P, L, block]; on every path of the scatter: several batches, one batch of narrow
    # rows, one batch split by destination rows (4.8 MB, 9000 indices) and one split by columns
    # (160 columns).
    r = rng(33)
    with intra_op_threads(threads):
        for B, M, T, L in [(40, 30, 16, 25), (1, 5000, 1, 3000), (1, 70, 48, 40), (6, 9, 3, 11),
                           (1, 600000, 1, 9000), (1, 300, 160, 200)]:
            data = torch.randn(B, M, T, dtype=torch.float64)
            idx = torch.from_numpy(r.integers(0, M, size=L))
            grads = [torch.tensor(1.5, dtype=torch.float64).expand(B, L, T),
                     torch.randn(T, L, B, dtype=torch.float64).permute(2, 1, 0),
                     torch.randn(B, L, 2 * T, dtype=torch.float64)[:, :, ::2],
                     torch.randn(B, 1, T, dtype=torch.float64).expand(B, L, T),
                     torch.randn(B, L, 1, dtype=torch.float64).expand(B, L, T)]
            for g in grads:
                got = C2.batch_gather_gradient(data, idx, g)
                assert torch.equal(got, C2.batch_gather_gradient(data, idx, g.contiguous()))
                assert_close(got, torch.zeros_like(data).index_add_(1, idx, g))
            perm = torch.from_numpy(r.permutation(M)).to(torch.int32)
            for g in [torch.tensor(2.0).expand(M, T), torch.randn(T, M).t(), torch.randn(M, 1).expand(M, T)]:
                got = C2.batch_permutation_gradient(perm, g)
                assert torch.equal(got, C2.batch_permutation_gradient(perm, g.contiguous()))
