"""Concurrency : 8 Python threads call a mix of forward ops, *_gradient ops
and autograd backward passes of every family on shared inputs; every result must equal, bit for
bit, the one computed serially first, and the shared inputs must come out unchanged.

Inputs are large enough that the kernels take their intra-op parallel paths, so each of the 8
threads also runs OpenMP teams. Dropout uses a generator per call (seeded), since sharing one
generator between threads is racy by design; the in-place sparse_normalize_ works on a
per-call clone (its shared input must stay untouched).

CONCURRENCY_ROUNDS (default 3): passes of each thread over the whole (shuffled) call list.
"""
import os
import random
import threading

import torch

import torch_caffe2ops  # noqa: F401

C = torch.ops.caffe2ops
THREADS = 8
ROUNDS = int(os.environ.get("CONCURRENCY_ROUNDS", "3"))


def _inputs():
    g = torch.Generator().manual_seed(1234)

    def rn(*s, dtype=torch.float32):
        return torch.randn(*s, generator=g, dtype=dtype)

    def ri(hi, *s, dtype=torch.int64):
        return torch.randint(0, hi, s, generator=g, dtype=dtype)

    x = {}
    x["X"] = rn(256, 64, 8)
    x["perm"] = torch.randperm(256, generator=g).to(torch.int32)
    x["dY_perm"] = rn(256, 64, 8)
    x["gdata"] = rn(32, 300, 16, dtype=torch.float64)
    x["gidx"] = ri(300, 40, 3)
    x["gidx_mo"] = ri(300, 32, 50)
    x["ggrad"] = rn(32, 40, 3, 16, dtype=torch.float64)
    B, D = 200, 64
    lens = torch.randint(0, 20, (B,), generator=g)
    x["lengths"] = lens.to(torch.int32)
    x["sp_idx"] = torch.cat([torch.randperm(D, generator=g)[:int(n)] for n in lens])
    x["sp_vals"] = rn(int(lens.sum()))
    x["dense"] = rn(B, D)
    x["A"] = rn(16, 64, 48)
    x["Bm"] = rn(16, 48, 32)
    x["gY"] = rn(16, 64, 32)
    x["mom"] = rn(16, 24, 20, 20, dtype=torch.float64)
    x["dmu"] = rn(24, dtype=torch.float64)
    x["dvar"] = rn(24, dtype=torch.float64)
    x["bc"] = rn(512, 40).abs() + 0.5
    x["l1"] = torch.where(torch.rand(40, generator=g) < 0.3, torch.zeros(40), rn(40))
    x["l2"] = rn(40).abs()
    x["ff"] = rn(1000, 30)
    x["bk_idx"] = ri(30, 12)
    x["bk_len"] = torch.randint(1, 6, (12,), generator=g)
    x["bk_bnd"] = torch.cat([torch.sort(rn(int(n)))[0] for n in x["bk_len"]])
    x["oh_data"] = rn(500, 6)
    x["oh_len"] = torch.randint(1, 5, (6,), generator=g)
    x["oh_bnd"] = torch.cat([torch.sort(rn(int(n)))[0] for n in x["oh_len"]])
    x["cbg_idx"] = ri(16, 10)
    x["cbg_in"] = [rn(64, 32) for _ in range(4)]
    x["cbg_grad"] = rn(64, 10)
    x["cat_in"] = [rn(64, k, 33) for k in (5, 0, 17, 9)]
    x["cat_grad"] = rn(64, 31, 33)
    x["split_in"] = rn(48, 100, 20)
    x["sbl_len"] = torch.tensor([10, 30, 0, 20, 25, 15], dtype=torch.int32)
    x["drop_x"] = rn(300, 300)
    x["drop_mask"] = torch.rand(300, 300, generator=g) >= 0.3
    x["m1"] = rn(20000)
    x["m2"] = rn(20000)
    x["my"] = torch.where(torch.rand(20000, generator=g) < 0.5, -1, 1).to(torch.int32)
    x["mdl"] = rn(20000)
    x["param"] = rn(4000, 32) * 3
    x["param16"] = (rn(4000, 32) * 3).half()
    x["sn_idx"] = ri(4000, 1500)
    return x


def _grad(fn, inputs):
    """Autograd backward through an op: gradients w.r.t. fresh leaves of the shared tensors
    (torch.autograd.grad does not accumulate into .grad, so sharing the data is safe)."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    out = fn(*leaves)
    outs = [o for o in (out if isinstance(out, (list, tuple)) else [out]) if o.is_floating_point()]
    w = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape) for o in outs]
    loss = sum((o * wi).sum() for o, wi in zip(outs, w))
    return list(torch.autograd.grad(loss, leaves, allow_unused=True))


def _calls(x):
    c = {}
    c["batch_permutation"] = lambda: C.batch_permutation(x["X"], x["perm"])
    c["batch_permutation_gradient"] = lambda: C.batch_permutation_gradient(x["perm"], x["dY_perm"])
    c["batch_permutation backward"] = lambda: _grad(lambda X: C.batch_permutation(X, x["perm"]), [x["X"]])
    c["batch_gather"] = lambda: C.batch_gather(x["gdata"], x["gidx"])
    c["batch_gather match_outer"] = lambda: C.batch_gather(x["gdata"], x["gidx_mo"], True)
    c["batch_gather_gradient"] = lambda: C.batch_gather_gradient(x["gdata"], x["gidx"], x["ggrad"])
    c["batch_gather backward"] = lambda: _grad(lambda d: C.batch_gather(d, x["gidx_mo"], True), [x["gdata"]])
    c["batch_sparse_to_dense"] = lambda: C.batch_sparse_to_dense(x["lengths"], x["sp_idx"], x["sp_vals"], None, 64, 0.5)
    c["batch_sparse_to_dense backward"] = lambda: _grad(
        lambda v: C.batch_sparse_to_dense(x["lengths"], x["sp_idx"], v, None, 64), [x["sp_vals"]])
    c["batch_dense_to_sparse"] = lambda: C.batch_dense_to_sparse(x["lengths"], x["sp_idx"], x["dense"])
    c["batch_dense_to_sparse backward"] = lambda: _grad(
        lambda d: C.batch_dense_to_sparse(x["lengths"], x["sp_idx"], d), [x["dense"]])
    c["batch_sparse_to_dense_gradient"] = lambda: C.batch_sparse_to_dense_gradient(x["lengths"], x["sp_idx"], x["dense"])
    c["batch_dense_to_sparse_gradient"] = lambda: C.batch_dense_to_sparse_gradient(
        x["lengths"], x["sp_idx"], x["sp_vals"], x["dense"])
    c["batch_mat_mul"] = lambda: C.batch_mat_mul(x["A"], x["Bm"])
    c["batch_mat_mul trans"] = lambda: C.batch_mat_mul(x["Bm"], x["A"], True, True)
    c["batch_mat_mul_gradient"] = lambda: C.batch_mat_mul_gradient(x["gY"], x["A"], x["Bm"])
    c["batch_mat_mul backward"] = lambda: _grad(lambda a, b: C.batch_mat_mul(a, b), [x["A"], x["Bm"]])
    c["batch_moments"] = lambda: C.batch_moments(x["mom"])
    c["batch_moments NHWC"] = lambda: C.batch_moments(x["mom"], "NHWC")
    c["batch_moments_gradient"] = lambda: C.batch_moments_gradient(x["dmu"], x["dvar"], x["mom"])
    c["batch_moments backward"] = lambda: _grad(lambda X: C.batch_moments(X), [x["mom"]])
    c["batch_box_cox"] = lambda: C.batch_box_cox(x["bc"], x["l1"], x["l2"])
    c["batch_box_cox naive"] = lambda: C.batch_box_cox(x["bc"], x["l1"], x["l2"], 0)
    c["batch_bucketize"] = lambda: C.batch_bucketize(x["ff"], x["bk_idx"], x["bk_bnd"], x["bk_len"])
    c["batch_bucket_one_hot"] = lambda: C.batch_bucket_one_hot(x["oh_data"], x["oh_len"], x["oh_bnd"])
    c["concat_batch_mat_mul_batch_gather"] = lambda: C.concat_batch_mat_mul_batch_gather(x["cbg_idx"], x["cbg_in"])
    if hasattr(C, "concat_batch_mat_mul_batch_gather_gradient"):
        c["concat_batch_mat_mul_batch_gather_gradient"] = lambda: C.concat_batch_mat_mul_batch_gather_gradient(
            x["cbg_idx"], x["cbg_in"], x["cbg_grad"])
    c["concat"] = lambda: C.concat(x["cat_in"], 1)
    c["concat add_axis"] = lambda: C.concat(x["cbg_in"], 0, None, True)
    c["concat backward"] = lambda: _grad(lambda *xs: C.concat(list(xs), 1)[0], x["cat_in"])
    c["concat_gradient"] = lambda: C.concat_gradient(x["cat_grad"], torch.tensor([5, 0, 17, 9], dtype=torch.int32), 1)
    c["split"] = lambda: C.split(x["split_in"], None, [10, 0, 60, 30], 1)
    c["split equal"] = lambda: C.split(x["split_in"], None, [], 2, None, False, 4)
    c["split backward"] = lambda: _grad(lambda s: C.split(s, None, [10, 0, 60, 30], 1), [x["split_in"]])
    c["split_by_lengths"] = lambda: C.split_by_lengths(x["split_in"], x["sbl_len"], 3, 1)
    c["split_gradient"] = lambda: C.split_gradient([x["cat_in"][0], None, x["cat_in"][2]], [5, 4, 17], 1)
    c["dropout"] = lambda: C.dropout(x["drop_x"], 0.3, False, torch.Generator().manual_seed(7))
    c["dropout is_test"] = lambda: C.dropout(x["drop_x"], 0.3, True)
    c["dropout backward"] = lambda: _grad(lambda X: C.dropout(X, 0.4, False, torch.Generator().manual_seed(9))[0],
                                          [x["drop_x"]])
    c["dropout_gradient"] = lambda: C.dropout_gradient(x["drop_x"], x["drop_mask"], 0.3)
    c["margin_ranking_criterion"] = lambda: C.margin_ranking_criterion(x["m1"], x["m2"], x["my"], 0.2)
    c["margin_ranking_criterion_gradient"] = lambda: C.margin_ranking_criterion_gradient(
        x["m1"], x["m2"], x["my"], x["mdl"], 0.2)
    c["margin_ranking_criterion backward"] = lambda: _grad(
        lambda a, b: C.margin_ranking_criterion(a, b, x["my"], 0.2), [x["m1"], x["m2"]])
    c["sparse_normalize"] = lambda: C.sparse_normalize(x["param"], x["sn_idx"], None, True, 2.0)
    c["sparse_normalize const"] = lambda: C.sparse_normalize(x["param"], x["sn_idx"], None, False, 1.5)
    c["sparse_normalize_ (clone)"] = lambda: C.sparse_normalize_(x["param"].clone(), x["sn_idx"], None, False, 1.0)
    c["float16_sparse_normalize"] = lambda: C.float16_sparse_normalize(x["param16"], x["sn_idx"])
    return c


def _flat(r):
    if isinstance(r, torch.Tensor):
        return [r]
    out = []
    for v in r:
        out.extend(_flat(v) if v is not None else [None])
    return out


def _same(a, b):
    a, b = _flat(a), _flat(b)
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if (u is None) != (v is None):
            return False
        if u is not None and not (u.shape == v.shape and u.dtype == v.dtype and torch.equal(u, v)):
            return False
    return True


def test_threads_match_serial():
    x = _inputs()
    snapshot = {k: [t.clone() for t in v] if isinstance(v, list) else v.clone() for k, v in x.items()}
    calls = _calls(x)
    serial = {name: fn() for name, fn in calls.items()}
    # The serial reference itself is deterministic.
    again = {name: fn() for name, fn in calls.items()}
    assert [n for n in calls if not _same(serial[n], again[n])] == []

    errors, mismatches = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(tid):
        rnd = random.Random(tid)
        names = list(calls)
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                rnd.shuffle(names)
                for n in names:
                    r = calls[n]()
                    if not _same(r, serial[n]):
                        with lock:
                            mismatches.append((tid, n))
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append((tid, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(set(m[1] for m in mismatches)) == [], f"results differ from the serial ones: {mismatches[:20]}"
    changed = [k for k, v in x.items()
               if not _same(v, snapshot[k])]
    assert changed == [], f"shared inputs modified: {changed}"
