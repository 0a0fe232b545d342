"""Samples of the batch family (see tests/samples/__init__.py)."""
import torch

from samples import DIFF, INT_OUT, sample

gr = dict(dtype=torch.float64, requires_grad=True)
i32 = dict(dtype=torch.int32)


def _lengths():
    return torch.tensor([2, 0, 3], **i32), torch.tensor([1, 3, 0, 2, 3])


SAMPLES = [
    sample("batch_permutation", lambda: (torch.randn(4, 3, **gr), torch.tensor([2, 0, 3, 1], **i32)), DIFF),
    sample("batch_permutation_gradient", lambda: (torch.tensor([2, 0, 1]), torch.randn(3, 2, **gr)), DIFF),
    sample("batch_gather", lambda: (torch.randn(3, 5, 2, **gr), torch.tensor([[4, 0], [1, 1]])), DIFF),
    sample("batch_gather", lambda: (torch.randn(3, 5, **gr), torch.tensor([[4, 0], [1, 1], [2, 2]]), True), DIFF,
           label="match_outer"),
    sample("batch_gather_gradient", lambda: (torch.randn(3, 5, dtype=torch.float64), torch.tensor([1, 4]), torch.randn(3, 2, **gr)),
           DIFF),
    sample("batch_gather_gradient", lambda: (torch.zeros(2, 2, 4, dtype=torch.float64), torch.tensor([3, 0, 3]),
                                             torch.randn(2, 2, 3, **gr), 2), DIFF, label="axis 2"),
    sample("batch_sparse_to_dense", lambda: (*_lengths(), torch.randn(5, **gr), None, 4, 0.5), DIFF),
    sample("batch_sparse_to_dense", lambda: (*_lengths(), torch.randn(5, **gr), torch.zeros(3, 4)), DIFF,
           label="shape tensor"),
    sample("batch_sparse_to_dense_gradient", lambda: (*_lengths(), torch.randn(3, 4, **gr)), DIFF),
    sample("batch_dense_to_sparse", lambda: (*_lengths(), torch.randn(3, 4, **gr)), DIFF),
    sample("batch_dense_to_sparse_gradient", lambda: (*_lengths(), torch.randn(5, **gr), torch.randn(3, 4)), DIFF),
    sample("batch_mat_mul", lambda: (torch.randn(2, 3, 4, **gr), torch.randn(2, 4, 5, **gr)), DIFF),
    sample("batch_mat_mul", lambda: (torch.randn(4, **gr), torch.randn(2, 5, 4, **gr), False, True), DIFF,
           label="1-D trans_b"),
    sample("batch_mat_mul", lambda: (torch.randn(3, 3, 4, **gr), torch.randn(4, 5, **gr), False, False, True), DIFF,
           label="broadcast"),
    sample("batch_mat_mul_gradient", lambda: (torch.randn(2, 3, 5, **gr), torch.randn(2, 3, 4, **gr),
                                              torch.randn(2, 4, 5, **gr)), DIFF),
    sample("batch_moments", lambda: (torch.randn(2, 3, 4, **gr),), DIFF),
    sample("batch_moments", lambda: (torch.randn(2, 4, 3, **gr), "NHWC"), DIFF, label="NHWC"),
    sample("batch_moments_gradient", lambda: (torch.randn(3, **gr), torch.randn(3, **gr), torch.randn(2, 3, 4, **gr)),
           DIFF),
    sample("batch_box_cox", lambda: (torch.rand(4, 3), torch.tensor([0., 0.5, -1]), torch.rand(3), 6)),
    sample("batch_bucketize", lambda: (torch.rand(4, 3), torch.tensor([2, 0]), torch.tensor([0.2, 0.5, 0.7]),
                                       torch.tensor([1, 2])), INT_OUT),
    sample("concat_batch_mat_mul_batch_gather", lambda: (torch.tensor([0, 1, 3]), [torch.randn(3, 4), torch.randn(3, 4)]),
           label="no grad"),
    sample("concat_batch_mat_mul_batch_gather", lambda: (torch.tensor([0, 1, 3, 3]),
                                                         [torch.randn(3, 2, **gr), torch.randn(3, 2, **gr)]), DIFF),
    sample("concat_batch_mat_mul_batch_gather_gradient",
           lambda: (torch.tensor([0, 1, 3]), [torch.randn(3, 4, **gr), torch.randn(3, 4, **gr)], torch.randn(3, 3, **gr)),
           DIFF),
    sample("batch_bucket_one_hot", lambda: (torch.rand(4, 2), torch.tensor([1, 2]), torch.tensor([0.5, 0.2, 0.7]))),
]
