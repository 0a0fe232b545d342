"""The TorchScript model run by examples/cpp/run_model.cpp, and its fixed inputs.

    python examples/cpp/model.py model.pt     # writes the scripted model
"""
import sys
from typing import List

import torch

import torch_caffe2ops  # noqa: F401
from torch_caffe2ops import ops


class Model(torch.nn.Module):
    def forward(self, X: torch.Tensor, indices: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> List[torch.Tensor]:
        permuted = ops.batch_permutation(X, indices)
        gathered = ops.batch_gather(permuted, torch.tensor([2, 0], dtype=torch.long))
        product = ops.batch_mat_mul(A, B, trans_b=True)
        mean, second_moment = ops.batch_moments(X)
        return [permuted, gathered, product, mean, second_moment]


def inputs():
    """The same values run_model.cpp builds."""
    X = torch.arange(24, dtype=torch.float64).reshape(4, 3, 2) / 10
    indices = torch.tensor([3, 1, 0, 2], dtype=torch.int32)
    A = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4) / 7 - 1
    B = torch.arange(40, dtype=torch.float64).reshape(2, 5, 4) / 11 - 1
    return [X, indices, A, B]


if __name__ == "__main__":
    torch.jit.script(Model()).save(sys.argv[1])
