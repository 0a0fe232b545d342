"""Samples of the dropout family (see tests/samples/__init__.py). ratio = 0 or test mode makes
a result independent of the random stream, so every derived test applies."""
import torch

from samples import CUDA_ONLY, DIFF, RANDOM, sample

gr = dict(dtype=torch.float64, requires_grad=True)


def _cuda_x():
    return torch.randn(64, device="cuda", requires_grad=True)


SAMPLES = [
    sample("dropout", lambda: (torch.randn(5, 3, **gr), 0.0), DIFF, RANDOM),
    sample("dropout", lambda: (torch.randn(5, 3, **gr), 0.3, True), DIFF, label="is_test"),
    sample("dropout_gradient", lambda: (torch.randn(5, 3, **gr), torch.rand(5, 3) > 0.5, 0.3), DIFF),
    sample("dropout_gradient", lambda: (torch.randn(5, 3, **gr), None, 0.3, True), DIFF, label="is_test"),
    sample("cudnn_dropout", lambda: (_cuda_x(), 0.3, True), DIFF, CUDA_ONLY, cuda=False),
    sample("cudnn_dropout_gradient", lambda: (_cuda_x(), torch.ops.caffe2ops.cudnn_dropout(_cuda_x(), 0.3)[1], 0.3),
           DIFF, CUDA_ONLY, cuda=False),

    # "large" samples (see tests/samples/__init__.py)
    sample("dropout", lambda: (torch.randn(300, 300, requires_grad=True), 0.3, True), label="large is_test"),
    sample("dropout_gradient", lambda: (torch.randn(300, 300, requires_grad=True), torch.rand(300, 300) >= 0.3, 0.3),
           label="large"),
]
