"""SparseNormalize: sparse_normalize_ on an embedding table against torch.embedding_renorm_.

    .venv/bin/python benchmarks/bench_sparse_normalize.py [--size small|large|both]

Large = a 1M x 64 float32 table with 200k indices drawn with repeats. Both ops work in place
and only on the listed rows. Each side runs repeatedly on its own copy of the table: after
the first call the rows are already within the norm, but the work per call (the norm of every
listed row) is the same, and the first-call rescaling is a few percent of it.
"""
import torch

from common import parse_args, run
from torch_caffe2ops import ops

C2 = torch.ops.caffe2ops


def sparse_normalize(size, device):
    rows, dim, n = (10000, 64, 2000) if size == "small" else (1 << 20, 64, 200000)
    table = torch.randn(rows, dim, device=device)
    indices = torch.randint(0, rows, (n,), device=device)
    ours, native = table.clone(), table.clone()
    touched = torch.unique(indices).numel() * dim * 4 * 2
    yield ("sparse_normalize_ max-norm", lambda: C2.sparse_normalize_(ours, indices, None, True, 1.0),
           lambda: torch.embedding_renorm_(native, indices, 1.0, 2.0), touched,
           "torch.embedding_renorm_(w, idx, max_norm=1, norm_type=2)")
    yield ("sparse_normalize (functional)", lambda: C2.sparse_normalize(table, indices, None, True, 1.0),
           lambda: torch.embedding_renorm_(table.clone(), indices, 1.0, 2.0), table.numel() * 8 + touched,
           "clone + embedding_renorm_")


def calls(device):
    """Small calls: (label, wrapper, torch.ops, nearest ATen call, its name, the same ATen op
    through torch.ops.aten)."""
    table = torch.randn(100, 16, device=device)
    indices = torch.tensor([3, 7, 7, 50], device=device)
    w, r, a = table.clone(), table.clone(), table.clone()
    yield ("sparse_normalize_ (100,16)[4]", lambda: ops.sparse_normalize_(w, indices, None, True, 1.0),
           lambda: C2.sparse_normalize_.default(r, indices, None, True, 1.0),
           lambda: torch.embedding_renorm_(a, indices, 1.0, 2.0), "torch.embedding_renorm_",
           lambda: torch.ops.aten.embedding_renorm_.default(a, indices, 1.0, 2.0))


SCENARIOS = {"sparse_normalize": sparse_normalize}

if __name__ == "__main__":
    with torch.no_grad():
        run("sparse normalize", SCENARIOS, parse_args(__doc__, SCENARIOS), calls)
