"""Measures, op by op, what the support-matrix page's "transforms" table reports: double
backward (torch.autograd.gradgradcheck), torch.func.vmap, torch.func.grad / vjp / jacrev.
Prints the Markdown table rows; paste them between the TRANSFORMS markers of
docs/support_matrix.md.

    .venv/bin/python docs/tools/measure_transforms.py
"""
import warnings

import torch
import torch_caffe2ops  # noqa: F401
from torch_caffe2ops import ops

d = torch.float64


def r(*shape):
    return torch.randn(*shape, dtype=d)


# op name -> (function of the differentiable inputs, differentiable inputs, batchable inputs for vmap or None)
CASES = {
    "batch_permutation": (lambda x: ops.batch_permutation(x, torch.tensor([2, 0, 1])), [r(3, 2)]),
    "batch_gather": (lambda x: ops.batch_gather(x, torch.tensor([0, 2])), [r(2, 3)]),
    "batch_sparse_to_dense": (lambda v: ops.batch_sparse_to_dense(torch.tensor([2, 1]), torch.tensor([0, 2, 1]), v,
                                                                   dense_last_dim=3), [r(3)]),
    "batch_dense_to_sparse": (lambda m: ops.batch_dense_to_sparse(torch.tensor([2, 1]), torch.tensor([0, 2, 1]), m),
                              [r(2, 3)]),
    "batch_mat_mul": (lambda a, b: ops.batch_mat_mul(a, b), [r(2, 3, 4), r(2, 4, 2)]),
    "batch_moments": (lambda x: ops.batch_moments(x), [r(2, 3, 2)]),
    "batch_box_cox": (lambda x: ops.batch_box_cox(x, torch.tensor([0.0, 0.5], dtype=d), torch.ones(2, dtype=d)),
                      [r(3, 2).abs()]),
    "batch_bucketize": (lambda x: ops.batch_bucketize(x, torch.tensor([0, 1]), torch.tensor([0.0, 0.0], dtype=d),
                                                      torch.tensor([1, 1])), [r(3, 2)]),
    "concat_batch_mat_mul_batch_gather": (lambda a, b: ops.concat_batch_mat_mul_batch_gather(torch.tensor([1, 3]), [a, b]),
                                          [r(2, 3), r(2, 3)]),
    "batch_bucket_one_hot": (lambda x: ops.batch_bucket_one_hot(x, torch.tensor([1, 1]), torch.tensor([0.0, 0.0], dtype=d)),
                             [r(3, 2)]),
    "concat": (lambda a, b: ops.concat([a, b], axis=0)[0], [r(2, 3), r(1, 3)]),
    "split": (lambda x: tuple(ops.split(x, split=[1, 2], axis=1)), [r(2, 3)]),
    "split_by_lengths": (lambda x: tuple(ops.split_by_lengths(x, torch.tensor([1, 2]), 2, axis=1)), [r(2, 3)]),
    "dropout": (lambda x: ops.dropout(x, 0.5, False, torch.Generator().manual_seed(0))[0], [r(4, 3)]),
    "sparse_normalize": (lambda p: ops.sparse_normalize(p, torch.tensor([0])), [r(3, 2)]),
    "margin_ranking_criterion": (lambda a, b: ops.margin_ranking_criterion(a, b, torch.tensor([1, -1, 1]), 0.5),
                                 [r(3), r(3)]),
}


NOT_DIFFERENTIABLE = {"batch_box_cox", "batch_bucketize", "batch_bucket_one_hot", "sparse_normalize"}


def attempt(f):
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ok = f()
        slow = any("fallback" in str(x.message).lower() or "batching rule" in str(x.message).lower() for x in w)
        if ok is False:
            return "no (wrong values)"
        return "yes (slow fallback, warns)" if slow else "yes"
    except Exception as e:  # noqa: BLE001
        return "no: " + str(e).splitlines()[0][:90].replace("|", "/")


def main():
    print("| op | double backward | vmap | torch.func.grad / vjp / jacrev |")
    print("|---|---|---|---|")
    for name, (f, xs) in CASES.items():
        def first(*a):
            out = f(*a)
            return out[0] if isinstance(out, tuple) else out

        xs_g = [x.clone().requires_grad_() for x in xs]
        if name in NOT_DIFFERENTIABLE:
            gg = "n/a (no gradient)"
        else:
            gg = attempt(lambda: torch.autograd.gradgradcheck(lambda *a: first(*a), xs_g, check_undefined_grad=False))

        def vm():
            batched = [torch.stack([x, x * 2]) for x in xs]
            out = torch.func.vmap(first, randomness="same")(*batched)
            ref = torch.stack([first(*[b[i] for b in batched]) for i in range(2)])
            return name in ("dropout",) or torch.allclose(out, ref)
        vmap = attempt(vm)
        if vmap == "yes":  # a real batching rule, or PyTorch's slow per-sample fallback?
            torch._C._functorch._set_vmap_fallback_enabled(False)
            try:
                if attempt(vm) != "yes":
                    vmap = "slow fallback only (loops over the batch, warns)"
            finally:
                torch._C._functorch._set_vmap_fallback_enabled(True)

        def fn():
            torch.func.grad(lambda *a: first(*a).sum())(*xs)
            torch.func.vjp(first, *xs)
            torch.func.jacrev(first)(*xs)
            return True
        fg = "n/a (no gradient)" if name in NOT_DIFFERENTIABLE else attempt(fn)
        print(f"| `{name}` | {gg} | {vmap} | {fg} |")


if __name__ == "__main__":
    main()
