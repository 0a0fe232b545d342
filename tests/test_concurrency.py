"""Dropout from several threads at once, each call with its own seeded generator (sharing one
generator between threads races by design): the masks, outputs and gradients equal, bit for
bit, the serial ones. Every other op's concurrency check is derived from the sample tables
(tests/test_samples.py::test_threads_match_serial), which skip random samples.
"""
import torch

import samples
from utils import ROUNDS, in_threads

C2 = torch.ops.caffe2ops


def _dropout(x, seed):
    """Output, mask and the gradient of a weighted sum of the output, with a generator of its own."""
    leaf = x.detach().requires_grad_()
    y, mask = C2.dropout(leaf, 0.3, False, torch.Generator().manual_seed(seed))
    (dx,) = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum(), leaf)
    return y.detach(), mask, dx


def test_dropout_with_its_own_generator_matches_serial_from_threads():
    # the large dropout sample: big enough for the kernel's intra-op parallel path
    x = next(s for s in samples.by_op()["dropout"] if s.label == "large is_test").args()[0].detach()
    before = x.clone()
    seeds = (7, 9)
    serial = {seed: _dropout(x, seed) for seed in seeds}
    assert not torch.equal(serial[7][1], serial[9][1])
    assert all(torch.equal(a, b) for seed in seeds for a, b in zip(_dropout(x, seed), serial[seed]))
    mismatches = []

    def calls(tid):
        for r in range(ROUNDS):
            seed = seeds[(tid + r) % 2]
            if not all(torch.equal(a, b) for a, b in zip(_dropout(x, seed), serial[seed])):
                mismatches.append((tid, seed))
    assert in_threads(calls) == []
    assert mismatches == []
    assert torch.equal(x, before)
