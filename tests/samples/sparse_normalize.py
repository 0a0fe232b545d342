"""Samples of the sparse-normalize family (see tests/samples/__init__.py)."""
import torch

from samples import INPLACE, sample

SAMPLES = [
    sample("sparse_normalize", lambda: (torch.randn(4, 3), torch.tensor([0, 2, 2]))),
    sample("sparse_normalize", lambda: (torch.randn(4, 3, dtype=torch.float64), torch.tensor([1]), None, False, 2.0),
           label="float64 const norm"),
    sample("sparse_normalize", lambda: (torch.randn(6, 3).half() * 3, torch.tensor([1, 2]), None, False, 2.0),
           label="float16"),
    sample("sparse_normalize_", lambda: (torch.randn(4, 3), torch.tensor([0, 3])), INPLACE),
    sample("float16_sparse_normalize", lambda: (torch.randn(4, 3).half(), torch.tensor([0, 2]))),
    sample("float16_sparse_normalize_", lambda: (torch.randn(4, 3).half(), torch.tensor([3])), INPLACE),

    # "large" samples (see tests/samples/__init__.py); the indices repeat rows
    sample("sparse_normalize", lambda: (torch.randn(4000, 32) * 3, torch.randint(0, 4000, (1500,)), None, True, 2.0),
           label="large"),
    sample("sparse_normalize", lambda: (torch.randn(4000, 32) * 3, torch.randint(0, 4000, (1500,)), None, False, 1.5),
           label="large const norm"),
    sample("sparse_normalize_", lambda: (torch.randn(4000, 32) * 3, torch.randint(0, 4000, (1500,)), None, False, 1.0),
           INPLACE, label="large"),
    sample("float16_sparse_normalize", lambda: ((torch.randn(4000, 32) * 3).half(), torch.randint(0, 4000, (1500,))),
           label="large"),
]
