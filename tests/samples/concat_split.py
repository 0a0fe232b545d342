"""Samples of the concat / split family (see tests/samples/__init__.py)."""
import torch

from samples import DIFF, sample

gr = dict(dtype=torch.float64, requires_grad=True)
rg = dict(requires_grad=True)  # "large" samples: float32

SAMPLES = [
    sample("concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(2, 1, **gr)],), DIFF),
    sample("concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(1, 3, **gr)], 0), DIFF, label="axis 0"),
    sample("concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(2, 3, **gr)], 0, None, True), DIFF,
           label="add_axis"),
    sample("depth_concat", lambda: ([torch.randn(2, 3, 4, 5, **gr), torch.randn(2, 3, 4, 2, **gr)], None, "NHWC"), DIFF),
    sample("depth_concat", lambda: ([torch.randn(2, 3, **gr), torch.randn(2, 3, **gr)], -1, None, True), DIFF,
           label="add_axis last axis"),
    sample("concat_gradient", lambda: (torch.randn(2, 4, **gr), torch.tensor([3, 1], dtype=torch.int32)), DIFF),
    sample("concat_gradient", lambda: (torch.randn(3, 2, **gr), torch.tensor([1, 2], dtype=torch.int32), 0), DIFF,
           label="axis 0"),
    sample("split", lambda: (torch.randn(3, 5, **gr), None, [2, 3]), DIFF),
    sample("split", lambda: (torch.randn(4, 2, **gr), None, [1, 3], 0), DIFF, label="axis 0"),
    sample("split", lambda: (torch.randn(3, 6, **gr), None, [], None, None, False, 3), DIFF, label="equal"),
    sample("split", lambda: (torch.randn(3, 6, **gr), None, [], 0, None, True), DIFF, label="add_axis"),
    sample("depth_split", lambda: (torch.randn(4, 6, **gr), None, [1, 3], 0), DIFF),
    sample("depth_split", lambda: (torch.randn(2, 3, 2, **gr), None, [], 1, None, True, 3), DIFF, label="add_axis"),
    sample("split_by_lengths", lambda: (torch.randn(3, 6, **gr), torch.tensor([1, 2, 3], dtype=torch.int32), 3), DIFF),
    # more lengths than outputs: each output takes the sum of consecutive lengths
    sample("split_by_lengths", lambda: (torch.randn(5, 2, **gr), torch.tensor([1, 1, 2, 1]), 2, 0), DIFF,
           label="grouped lengths axis 0"),
    sample("split_gradient", lambda: ([torch.randn(2, 3, **gr), None], [3, 2], 1), DIFF),
    sample("split_gradient", lambda: ([torch.randn(1, 2, **gr), torch.randn(2, 2, **gr)], [1, 2], 0), DIFF,
           label="every grad axis 0"),

    # "large" samples (see tests/samples/__init__.py), with zero-size pieces among the others
    sample("concat", lambda: ([torch.randn(64, k, 33, **rg) for k in (5, 0, 17, 9)], 1), label="large"),
    sample("concat", lambda: ([torch.randn(64, 32, **rg) for _ in range(4)], 0, None, True), label="large add_axis"),
    sample("concat_gradient", lambda: (torch.randn(64, 31, 33, **rg), torch.tensor([5, 0, 17, 9], dtype=torch.int32), 1),
           label="large"),
    sample("split", lambda: (torch.randn(48, 100, 20, **rg), None, [10, 0, 60, 30], 1), label="large"),
    sample("split", lambda: (torch.randn(48, 100, 20, **rg), None, [], 2, None, False, 4), label="large equal"),
    sample("split_by_lengths", lambda: (torch.randn(48, 100, 20, **rg),
                                        torch.tensor([10, 30, 0, 20, 25, 15], dtype=torch.int32), 3, 1), label="large"),
    sample("split_gradient", lambda: ([torch.randn(64, 5, 33, **rg), None, torch.randn(64, 17, 33, **rg)], [5, 4, 17], 1),
           label="large"),
]
