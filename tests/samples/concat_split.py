"""Samples of the concat / split family (see tests/samples/__init__.py)."""
import torch

from samples import DIFF, sample

gr = dict(dtype=torch.float64, requires_grad=True)

SAMPLES = [
    sample("concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(2, 1, **gr)],), DIFF),
    sample("concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(2, 3, **gr)], 0, None, True), DIFF,
           label="add_axis"),
    sample("depth_concat", lambda: ([torch.randn(2, 3, 4, 5, **gr), torch.randn(2, 3, 4, 2, **gr)], None, "NHWC"), DIFF),
    sample("concat_gradient", lambda: (torch.randn(2, 4, **gr), torch.tensor([3, 1], dtype=torch.int32)), DIFF),
    sample("split", lambda: (torch.randn(3, 5, **gr), None, [2, 3]), DIFF),
    sample("split", lambda: (torch.randn(3, 6, **gr), None, [], None, None, False, 3), DIFF, label="equal"),
    sample("split", lambda: (torch.randn(3, 6, **gr), None, [], 0, None, True), DIFF, label="add_axis"),
    sample("depth_split", lambda: (torch.randn(4, 6, **gr), None, [1, 3], 0), DIFF),
    sample("split_by_lengths", lambda: (torch.randn(3, 6, **gr), torch.tensor([1, 2, 3], dtype=torch.int32), 3), DIFF),
    sample("split_gradient", lambda: ([torch.randn(2, 3, **gr), None], [3, 2], 1), DIFF),
]
