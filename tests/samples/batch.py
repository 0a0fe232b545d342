"""Samples of the batch family (see tests/samples/__init__.py)."""
import torch

from samples import DIFF, INT_OUT, sample

gr = dict(dtype=torch.float64, requires_grad=True)
i32 = dict(dtype=torch.int32)


def _lengths():
    return torch.tensor([2, 0, 3], **i32), torch.tensor([1, 3, 0, 2, 3])


# "large" samples (see tests/samples/__init__.py) are float32, except batch_gather's and
# batch_moments', which take the parallel paths in float64.
rg = dict(requires_grad=True)


def _large_lengths():
    """200 rows of 0 to 19 distinct column indices (of 64) each."""
    lengths = torch.randint(0, 20, (200,))
    return lengths.to(torch.int32), torch.cat([torch.randperm(64)[:int(n)] for n in lengths])


def _large_sparse_to_dense():
    lengths, indices = _large_lengths()
    return lengths, indices, torch.randn(len(indices), **rg), None, 64, 0.5


def _large_dense_to_sparse_gradient():
    lengths, indices = _large_lengths()
    return lengths, indices, torch.randn(len(indices), **rg), torch.randn(200, 64)


def _large_boundaries(n_features):
    lengths = torch.randint(1, 6, (n_features,))
    return lengths, torch.cat([torch.sort(torch.randn(int(n)))[0] for n in lengths])


def _large_bucketize():
    lengths, boundaries = _large_boundaries(12)
    return torch.randn(1000, 30), torch.randint(0, 30, (12,)), boundaries, lengths


def _large_bucket_one_hot():
    lengths, boundaries = _large_boundaries(6)
    return torch.randn(500, 6), lengths, boundaries


def _large_box_cox(min_block_size):
    lambda1 = torch.where(torch.rand(40) < 0.3, torch.zeros(40), torch.randn(40))
    return torch.randn(512, 40).abs() + 0.5, lambda1, torch.randn(40).abs(), min_block_size


SAMPLES = [
    sample("batch_permutation", lambda: (torch.randn(4, 3, **gr), torch.tensor([2, 0, 3, 1], **i32)), DIFF),
    # repeated rows: the gradient adds up every row a source row went to
    sample("batch_permutation", lambda: (torch.randn(4, 3, **gr), torch.tensor([2, 0, 3, 3])), DIFF,
           label="repeats int64"),
    sample("batch_permutation_gradient", lambda: (torch.tensor([2, 0, 1]), torch.randn(3, 2, **gr)), DIFF),
    sample("batch_permutation_gradient", lambda: (torch.tensor([1, 0, 1]), torch.randn(3, 2, **gr)), DIFF,
           label="repeats"),
    sample("batch_gather", lambda: (torch.randn(3, 5, 2, **gr), torch.tensor([[4, 0], [1, 1]])), DIFF),
    sample("batch_gather", lambda: (torch.randn(3, 5, 2, **gr), torch.tensor([4, 0, 4])), DIFF, label="1-D indices"),
    sample("batch_gather", lambda: (torch.randn(3, 5, **gr), torch.tensor([[4, 0], [1, 1], [2, 2]]), True), DIFF,
           label="match_outer"),
    sample("batch_gather", lambda: (torch.randn(2, 3, 2, **gr), torch.tensor([[1, 0], [2, 2]]), True), DIFF,
           label="match_outer 3-D"),
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
    sample("batch_mat_mul", lambda: (torch.randn(2, 3, **gr), torch.randn(4, 3, **gr), False, True), DIFF,
           label="2-D trans_b"),
    sample("batch_mat_mul", lambda: (torch.randn(2, 1, 4, 3, **gr), torch.randn(3, 5, 4, **gr), True, True, True), DIFF,
           label="trans_a trans_b broadcast"),
    sample("batch_mat_mul_gradient", lambda: (torch.randn(2, 3, 5, **gr), torch.randn(2, 3, 4, **gr),
                                              torch.randn(2, 4, 5, **gr)), DIFF),
    sample("batch_moments", lambda: (torch.randn(2, 3, 4, **gr),), DIFF),
    sample("batch_moments", lambda: (torch.randn(2, 3, 2, 2, **gr),), DIFF, label="4-D"),
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
    sample("concat_batch_mat_mul_batch_gather", lambda: (torch.tensor([0, 1, 5, 7, 8, 3]),
                                                         [torch.randn(2, 4, **gr) for _ in range(3)]), DIFF,
           label="3 inputs"),
    sample("concat_batch_mat_mul_batch_gather_gradient",
           lambda: (torch.tensor([0, 1, 3]), [torch.randn(3, 4, **gr), torch.randn(3, 4, **gr)], torch.randn(3, 3, **gr)),
           DIFF),
    sample("batch_bucket_one_hot", lambda: (torch.rand(4, 2), torch.tensor([1, 2]), torch.tensor([0.5, 0.2, 0.7]))),

    sample("batch_permutation", lambda: (torch.randn(256, 64, 8, **rg), torch.randperm(256).to(torch.int32)), label="large"),
    sample("batch_permutation_gradient", lambda: (torch.randperm(256).to(torch.int32), torch.randn(256, 64, 8, **rg)),
           label="large"),
    sample("batch_gather", lambda: (torch.randn(32, 300, 16, **gr), torch.randint(0, 300, (40, 3))), label="large"),
    sample("batch_gather", lambda: (torch.randn(32, 300, 16, **gr), torch.randint(0, 300, (32, 50)), True),
           label="large match_outer"),
    sample("batch_gather_gradient", lambda: (torch.randn(32, 300, 16, dtype=torch.float64), torch.randint(0, 300, (40, 3)),
                                             torch.randn(32, 40, 3, 16, **gr)), label="large"),
    sample("batch_sparse_to_dense", _large_sparse_to_dense, label="large"),
    sample("batch_sparse_to_dense_gradient", lambda: (*_large_lengths(), torch.randn(200, 64, **rg)), label="large"),
    sample("batch_dense_to_sparse", lambda: (*_large_lengths(), torch.randn(200, 64, **rg)), label="large"),
    sample("batch_dense_to_sparse_gradient", _large_dense_to_sparse_gradient, label="large"),
    sample("batch_mat_mul", lambda: (torch.randn(16, 64, 48, **rg), torch.randn(16, 48, 32, **rg)), label="large"),
    sample("batch_mat_mul", lambda: (torch.randn(16, 48, 32, **rg), torch.randn(16, 64, 48, **rg), True, True),
           label="large trans_a trans_b"),
    sample("batch_mat_mul_gradient", lambda: (torch.randn(16, 64, 32, **rg), torch.randn(16, 64, 48, **rg),
                                              torch.randn(16, 48, 32, **rg)), label="large"),
    sample("batch_moments", lambda: (torch.randn(16, 24, 20, 20, **gr),), label="large"),
    sample("batch_moments", lambda: (torch.randn(16, 20, 20, 24, **gr), "NHWC"), label="large NHWC"),
    sample("batch_moments_gradient", lambda: (torch.randn(24, **gr), torch.randn(24, **gr),
                                              torch.randn(16, 24, 20, 20, **gr)), label="large"),
    sample("batch_box_cox", lambda: _large_box_cox(256), label="large"),
    sample("batch_box_cox", lambda: _large_box_cox(0), label="large min_block_size 0"),
    sample("batch_bucketize", _large_bucketize, INT_OUT, label="large"),
    sample("batch_bucket_one_hot", _large_bucket_one_hot, label="large"),
    sample("concat_batch_mat_mul_batch_gather", lambda: (torch.randint(0, 16, (10,)),
                                                         [torch.randn(64, 32, **rg) for _ in range(4)]), label="large"),
    sample("concat_batch_mat_mul_batch_gather_gradient",
           lambda: (torch.randint(0, 16, (10,)), [torch.randn(64, 32, **rg) for _ in range(4)], torch.randn(64, 10, **rg)),
           label="large"),
]
