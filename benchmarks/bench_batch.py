"""Batch family: each op against the native PyTorch composition (the composition a user would write instead).

    .venv/bin/python benchmarks/bench_batch.py [--size small|large|both] [--only NAME ...]

The large gradients write 64 MB outputs that both sides map afresh on every call; on a VM
their page faults take most of the time (zeros_like alone: 29 of the 35-41 ms). Our kernels
ask for 2 MiB pages for their large outputs (TORCH_CAFFE2OPS_HUGE_PAGES=0 turns that off), so
by default these rows include that gain. To time the kernels alone, give PyTorch's allocator
huge pages too (THP_MEM_ALLOC_ENABLE=1) or let malloc reuse memory
(MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000).
"""
import torch
import torch.nn.functional as F

from common import fwd_bwd, parse_args, run
from torch_caffe2ops import ops

C2 = torch.ops.caffe2ops
F32 = 4


def permutation(size, device):
    N, K = (1024, 64) if size == "small" else (65536, 64)
    X = torch.randn(N, K, device=device)
    idx = torch.randperm(N, device=device).int()
    il = idx.long()
    Xg = X.clone().requires_grad_(True)
    # The one-element floor of each row (names of their own: the closures read them late).
    X_one, i_one, l_one = (torch.randn(1, 1, device=device), torch.zeros(1, dtype=torch.int32, device=device),
                           torch.zeros(1, dtype=torch.long, device=device))
    yield (f"batch_permutation ({N},{K})", lambda: C2.batch_permutation(X, idx), lambda: X.index_select(0, il),
           2 * X.numel() * F32, "X.index_select(0, idx)",
           (lambda: C2.batch_permutation(X_one, i_one), lambda: X_one.index_select(0, l_one)))
    dY = torch.randn(N, K, device=device)
    yield (f"batch_permutation_gradient ({N},{K})", lambda: C2.batch_permutation_gradient(idx, dY),
           lambda: torch.zeros_like(dY).index_add_(0, il, dY), 3 * X.numel() * F32, "zeros + index_add_(0, idx, dY)",
           (lambda: C2.batch_permutation_gradient(i_one, X_one),
            lambda: torch.zeros_like(X_one).index_add_(0, l_one, X_one)))
    yield ("batch_permutation fwd+bwd", fwd_bwd(lambda x: C2.batch_permutation(x, idx), Xg),
           fwd_bwd(lambda x: x.index_select(0, il), Xg), 4 * X.numel() * F32, "index_select + autograd")
    n1 = N * K  # 1-D X: one element per row, the gradient is split by destination row
    i1 = torch.randint(0, n1, (n1,), device=device)
    dy1 = torch.randn(n1, device=device)
    yield ("batch_permutation_gradient 1-D", lambda: C2.batch_permutation_gradient(i1, dy1),
           lambda: torch.zeros_like(dy1).index_add_(0, i1, dy1), 2 * n1 * F32 + n1 * 8,
           "zeros + index_add_(0, idx, dY)")


def gather(size, device):
    # Inner blocks of 1, 4, 16 and 64 elements: a few dense features per row (the ranking
    # case) up to whole embedding rows. Bytes: the output written plus the same amount read.
    shapes = ([(64, 512, 1, 128), (32, 512, 4, 128), (16, 512, 16, 128), (32, 100, 64, 50)] if size == "small" else
              [(4096, 4096, 1, 1024), (1024, 4096, 4, 1024), (256, 4096, 16, 1024), (256, 1000, 64, 500)])
    d1 = torch.randn(1, 1, 1, device=device)
    one = {dt: torch.zeros(1, dtype=dt, device=device) for dt in (torch.int32, torch.long)}
    for B, M, T, L in shapes:
        data = torch.randn(B, M, T, device=device)
        idx = torch.randint(0, M, (L,), device=device)
        out_bytes = B * L * T * F32
        yield (f"batch_gather ({B},{M},{T})[{L}]", lambda: C2.batch_gather(data, idx),
               lambda: data.index_select(1, idx), 2 * out_bytes, "data.index_select(1, idx)",
               (lambda: C2.batch_gather(d1, one[torch.long]), lambda: d1.index_select(1, one[torch.long])))
        if T == 1:
            i32 = idx.int()
            yield (f"batch_gather ({B},{M},{T})[{L}] int32", lambda: C2.batch_gather(data, i32),
                   lambda: data.index_select(1, i32), 2 * out_bytes, "data.index_select(1, idx int32)",
                   (lambda: C2.batch_gather(d1, one[torch.int32]), lambda: d1.index_select(1, one[torch.int32])))
        grad = torch.randn(B, L, T, device=device)
        yield (f"batch_gather_gradient ({B},{M},{T})[{L}]", lambda: C2.batch_gather_gradient(data, idx, grad),
               lambda: torch.zeros_like(data).index_add_(1, idx, grad), 2 * out_bytes + data.numel() * F32,
               "zeros + index_add_(1, idx, grad)")
    B, M, T, L = shapes[-1]
    data = torch.randn(B, M, T, device=device)
    idx = torch.randint(0, M, (L,), device=device)
    out_bytes = B * L * T * F32
    dg = data.clone().requires_grad_(True)
    yield ("batch_gather fwd+bwd", fwd_bwd(lambda d: C2.batch_gather(d, idx), dg),
           fwd_bwd(lambda d: d.index_select(1, idx), dg), 4 * out_bytes + data.numel() * F32, "index_select + autograd")
    for B, M, T, L in shapes[::3]:
        data = torch.randn(B, M, T, device=device)
        idx2 = torch.randint(0, M, (B, L), device=device)
        gidx = idx2.unsqueeze(-1).expand(B, L, T)
        yield (f"batch_gather match_outer ({B},{M},{T})[{L}]", lambda: C2.batch_gather(data, idx2, True),
               lambda: torch.gather(data, 1, gidx), 2 * B * L * T * F32, "torch.gather(data, 1, idx[..., None].expand)")


def sparse_dense(size, device):
    B, D, per_row = (64, 128, 16) if size == "small" else (16384, 512, 64)
    lengths = torch.full((B,), per_row, dtype=torch.int32, device=device)
    indices = torch.stack([torch.randperm(D, device=device)[:per_row] for _ in range(B)]).reshape(-1)
    values = torch.randn(B * per_row, device=device)
    rows = torch.repeat_interleave(torch.arange(B, device=device), lengths.long())

    def native_s2d():
        out = torch.full((B, D), 0.5, device=device)
        out.index_put_((rows, indices), values)
        return out

    def native_s2d_full():  # what a user writes: the row ids are recomputed from lengths each call
        r = torch.repeat_interleave(torch.arange(B, device=device), lengths.long())
        out = torch.full((B, D), 0.5, device=device)
        out.index_put_((r, indices), values)
        return out

    dense = torch.randn(B, D, device=device)
    yield ("batch_sparse_to_dense", lambda: C2.batch_sparse_to_dense(lengths, indices, values, None, D, 0.5),
           native_s2d_full, B * D * F32 + values.numel() * 12, "repeat_interleave + full + index_put_")
    yield ("batch_sparse_to_dense (rows precomputed)", lambda: C2.batch_sparse_to_dense(lengths, indices, values, None, D, 0.5),
           native_s2d, B * D * F32 + values.numel() * 12, "full + index_put_")
    yield ("batch_dense_to_sparse", lambda: C2.batch_dense_to_sparse(lengths, indices, dense),
           lambda: dense[torch.repeat_interleave(torch.arange(B, device=device), lengths.long()), indices],
           values.numel() * 16, "dense[repeat_interleave(arange, lengths), indices]")
    yield ("batch_dense_to_sparse (rows precomputed)", lambda: C2.batch_dense_to_sparse(lengths, indices, dense),
           lambda: dense[rows, indices], values.numel() * 16, "dense[rows, indices]")


def mat_mul(size, device):
    shape = (64, 64, 64) if size == "small" else (256, 256, 256)
    b = 16 if size == "small" else 32
    A = torch.randn(b, shape[0], shape[1], device=device)
    B = torch.randn(b, shape[2], shape[1], device=device)
    nbytes = (A.numel() + B.numel() + b * shape[0] * shape[2]) * F32
    yield ("batch_mat_mul trans_b", lambda: C2.batch_mat_mul(A, B, False, True), lambda: torch.matmul(A, B.mT),
           nbytes, "torch.matmul(A, B.mT)")
    Ag, Bg = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    yield ("batch_mat_mul fwd+bwd", fwd_bwd(lambda a, c: C2.batch_mat_mul(a, c, False, True), Ag, Bg),
           fwd_bwd(lambda a, c: torch.matmul(a, c.mT), Ag, Bg), 3 * nbytes, "matmul + autograd")


def moments(size, device):
    shape = (8, 16, 32, 32) if size == "small" else (64, 64, 64, 64)
    X = torch.randn(*shape, device=device)
    dims = [0, 2, 3]
    yield ("batch_moments NCHW", lambda: C2.batch_moments(X), lambda: (X.mean(dims), X.square().mean(dims)),
           X.numel() * F32, "X.mean(dims), X.square().mean(dims)")
    Xh = X.permute(0, 2, 3, 1).contiguous()
    yield ("batch_moments NHWC", lambda: C2.batch_moments(Xh, "NHWC"), lambda: (Xh.mean([0, 1, 2]), Xh.square().mean([0, 1, 2])),
           X.numel() * F32, "mean, square().mean() over N,H,W")
    Xg = X.clone().requires_grad_(True)
    yield ("batch_moments fwd+bwd", fwd_bwd(lambda x: C2.batch_moments(x), Xg),
           fwd_bwd(lambda x: (x.mean(dims), x.square().mean(dims)), Xg), 3 * X.numel() * F32, "composition + autograd")


def box_cox(size, device):
    N, D = (256, 64) if size == "small" else (16384, 512)
    x = torch.rand(N, D, device=device) * 10
    l1 = torch.rand(D, device=device) * 2 - 1
    l1[::4] = 0
    l2 = torch.rand(D, device=device)

    def native():
        t = (x + l2).clamp_min(1e-6)
        return torch.where(l1 == 0, t.log(), (t.pow(l1) - 1) / l1)
    yield ("batch_box_cox", lambda: C2.batch_box_cox(x, l1, l2), native, 2 * x.numel() * F32,
           "clamp_min, log, pow, where")


def bucketize(size, device):
    N, D, K, L = (256, 32, 16, 8) if size == "small" else (65536, 64, 32, 16)
    x = torch.randn(N, D, device=device)
    idx = torch.randperm(D, device=device)[:K].int()
    lengths = torch.full((K,), L, dtype=torch.int32, device=device)
    borders = torch.sort(torch.randn(K, L, device=device), dim=1).values
    flat = borders.reshape(-1)
    cols = idx.long().tolist()

    def native():
        return torch.stack([torch.bucketize(x[:, c], borders[j]) for j, c in enumerate(cols)], 1).int()
    yield ("batch_bucketize", lambda: C2.batch_bucketize(x, idx, flat, lengths), native,
           N * K * 8, "per column torch.bucketize, stack, int()")


def bucket_one_hot(size, device):
    N, D, L = (256, 16, 8) if size == "small" else (32768, 32, 16)
    x = torch.randn(N, D, device=device)
    lengths = torch.full((D,), L, dtype=torch.int32, device=device)
    borders = torch.sort(torch.randn(D, L, device=device), dim=1).values
    flat = borders.reshape(-1)

    def native():
        return torch.cat([F.one_hot(torch.bucketize(x[:, j], borders[j]), L + 1).float() for j in range(D)], 1)
    yield ("batch_bucket_one_hot", lambda: C2.batch_bucket_one_hot(x, lengths, flat), native,
           (x.numel() + N * D * (L + 1)) * F32, "per column bucketize, one_hot, float, cat")


def ccbmmbg(size, device):
    B, n, E = (64, 8, 16) if size == "small" else (2048, 27, 64)
    xs = [torch.randn(B, E, device=device) for _ in range(n)]
    iu = torch.triu_indices(n, n, 1, device=device)
    idx = (iu[0] * n + iu[1]).int()
    il = idx.long()

    def native():
        C = torch.stack(xs, 1)
        return torch.bmm(C, C.transpose(1, 2)).reshape(B, -1)[:, il]
    yield ("concat_batch_mat_mul_batch_gather", lambda: C2.concat_batch_mat_mul_batch_gather(idx, xs), native,
           (B * n * E + B * idx.numel()) * F32, "stack, bmm, reshape, index")
    # Training: the fused gradient (dX_p += g X_q, dX_q += g X_p) against autograd through the
    # composition (index backward, bmm backward twice, stack backward).
    xg = [x.clone().requires_grad_(True) for x in xs]

    def native_graph(*x):
        C = torch.stack(x, 1)
        return torch.bmm(C, C.transpose(1, 2)).reshape(B, -1)[:, il]
    yield ("concat_batch_mat_mul_batch_gather fwd+bwd",
           fwd_bwd(lambda *x: C2.concat_batch_mat_mul_batch_gather(idx, list(x)), *xg),
           fwd_bwd(native_graph, *xg), (3 * B * n * E + 2 * B * idx.numel()) * F32,
           "cat + bmm + gather + autograd")


def calls(device):
    """Small calls: (label, wrapper, torch.ops, nearest ATen call, its name, the same ATen op
    through torch.ops.aten)."""
    data = torch.randn(8, 16, 4, device=device)
    idx = torch.tensor([3, 0, 7, 7], device=device)
    yield ("batch_gather (8,16,4)[4]", lambda: ops.batch_gather(data, idx), lambda: C2.batch_gather.default(data, idx),
           lambda: data.index_select(1, idx), "data.index_select(1, idx)",
           lambda: torch.ops.aten.index_select.default(data, 1, idx))
    X = torch.randn(16, 8, device=device)
    perm = torch.randperm(16, device=device)
    yield ("batch_permutation (16,8)", lambda: ops.batch_permutation(X, perm), lambda: C2.batch_permutation.default(X, perm),
           lambda: X.index_select(0, perm), "X.index_select(0, idx)",
           lambda: torch.ops.aten.index_select.default(X, 0, perm))


SCENARIOS = {"permutation": permutation, "gather": gather, "sparse_dense": sparse_dense, "mat_mul": mat_mul,
             "moments": moments, "box_cox": box_cox, "bucketize": bucketize, "bucket_one_hot": bucket_one_hot,
             "ccbmmbg": ccbmmbg}

if __name__ == "__main__":
    run("batch family", SCENARIOS, parse_args(__doc__, SCENARIOS), calls)
