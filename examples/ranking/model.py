"""A small DLRM-style ranker built from torch_caffe2ops, and synthetic click data for it.

Dense features are preprocessed the way Caffe2 ranking nets did: a Box-Cox transform
(``batch_box_cox``), bucket ids (``batch_bucketize``, looked up in an embedding table) and a
one-hot bucket encoding (``batch_bucket_one_hot``). Sparse (categorical) features are embedding
lookups. The interaction layer takes all pairwise dot products of the feature vectors with
``concat(add_axis=True)`` + ``batch_mat_mul`` + ``batch_gather``; the top MLP uses Caffe2's
``Dropout``. Training pairs examples with ``batch_permutation`` and scores the pairs with
``MarginRankingCriterion``.
"""
from typing import List, Tuple

import torch
from torch import Tensor

import torch_caffe2ops  # noqa: F401  (registers torch.ops.caffe2ops.*)
from torch_caffe2ops import nn as c2nn
from torch_caffe2ops import ops

NUM_DENSE = 4
SPARSE_SIZES = [50, 30, 20]           # rows of each categorical feature's table
BUCKET_COLUMNS = [0, 2]               # dense columns that also become bucket ids
BUCKET_BORDERS = [[0.5, 1.0, 2.0], [0.3, 1.5]]
ONE_HOT_BORDERS = [[0.5, 1.5], [1.0], [0.2, 0.8, 2.0], [1.0]]   # one list per dense column


class Ranker(torch.nn.Module):
    def __init__(self, dim: int = 8, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        # Box-Cox parameters: log for columns 0 and 2, square root for 1 and 3.
        self.register_buffer("lambda1", torch.tensor([0.0, 0.5, 0.0, 0.5]))
        self.register_buffer("lambda2", torch.tensor([1.0, 0.0, 1.0, 0.0]))
        self.register_buffer("bucket_indices", torch.tensor(BUCKET_COLUMNS, dtype=torch.int32))
        self.register_buffer("bucket_boundaries", torch.tensor([b for bs in BUCKET_BORDERS for b in bs]))
        self.register_buffer("bucket_lengths", torch.tensor([len(bs) for bs in BUCKET_BORDERS], dtype=torch.int32))
        self.register_buffer("one_hot_boundaries", torch.tensor([b for bs in ONE_HOT_BORDERS for b in bs]))
        self.register_buffer("one_hot_lengths", torch.tensor([len(bs) for bs in ONE_HOT_BORDERS], dtype=torch.int32))
        # bucket ids of column j live at offset bucket_offsets[j] of one shared table
        offsets = [0]
        for bs in BUCKET_BORDERS[:-1]:
            offsets.append(offsets[-1] + len(bs) + 1)
        self.register_buffer("bucket_offsets", torch.tensor(offsets))
        one_hot_width = sum(len(bs) + 1 for bs in ONE_HOT_BORDERS)
        self.bottom = torch.nn.Sequential(torch.nn.Linear(NUM_DENSE + one_hot_width, hidden), torch.nn.ReLU(),
                                          torch.nn.Linear(hidden, dim), torch.nn.ReLU())
        self.tables = torch.nn.ModuleList([torch.nn.Embedding(n, dim) for n in SPARSE_SIZES])
        self.bucket_table = torch.nn.Embedding(sum(len(bs) + 1 for bs in BUCKET_BORDERS), dim)
        n = 1 + len(SPARSE_SIZES) + len(BUCKET_COLUMNS)            # feature vectors that interact
        pairs = [i * n + j for i in range(n) for j in range(i)]    # strict lower triangle of the Gram matrix
        self.register_buffer("pair_indices", torch.tensor(pairs))
        self.top = torch.nn.Sequential(torch.nn.Linear(dim + len(pairs), hidden), torch.nn.ReLU(),
                                       c2nn.Dropout(p=dropout), torch.nn.Linear(hidden, 1))
        with torch.no_grad():
            for t in list(self.tables) + [self.bucket_table]:
                t.weight.mul_(0.1)

    def embedding_tables(self) -> List[torch.nn.Embedding]:
        return list(self.tables) + [self.bucket_table]

    def bucket_ids(self, dense: Tensor) -> Tensor:
        """Rows of the bucket table an example looks up, [B, len(BUCKET_COLUMNS)] int64."""
        buckets = ops.batch_bucketize(dense, self.bucket_indices, self.bucket_boundaries, self.bucket_lengths)
        return buckets.long() + self.bucket_offsets

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        """dense: [B, NUM_DENSE] float32 (non-negative); sparse: [B, len(SPARSE_SIZES)] int64 ids.
        Returns one score per example, [B]."""
        box_cox = ops.batch_box_cox(dense, self.lambda1, self.lambda2)
        one_hot = ops.batch_bucket_one_hot(dense, self.one_hot_lengths, self.one_hot_boundaries)
        bottom_in, _ = ops.concat([box_cox, one_hot], axis=1)
        x = self.bottom(bottom_in)                                             # [B, dim]
        features = [x] + [t(sparse[:, i]) for i, t in enumerate(self.tables)]
        bucket_vectors = self.bucket_table(self.bucket_ids(dense))             # [B, nb, dim]
        features += [bucket_vectors[:, i] for i in range(len(BUCKET_COLUMNS))]
        stacked, _ = ops.concat(features, axis=1, add_axis=True)               # [B, n, dim]
        gram = ops.batch_mat_mul(stacked, stacked, trans_b=True)               # [B, n, n]
        interactions = ops.batch_gather(gram.flatten(1), self.pair_indices)    # [B, n(n-1)/2]
        top_in, _ = ops.concat([x, interactions], axis=1)
        return self.top(top_in).squeeze(1)


def touched_rows(model: Ranker, dense: Tensor, sparse: Tensor) -> List[Tensor]:
    """Per embedding table, the rows this batch looked up (what the max-norm must visit)."""
    return [sparse[:, i] for i in range(sparse.shape[1])] + [model.bucket_ids(dense).flatten()]


class ClickData:
    """Synthetic clicks: a hidden logistic model over the same features decides P(click)."""

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.dense_w = torch.randn(NUM_DENSE, generator=g)
        self.sparse_w = [torch.randn(n, generator=g) * 1.5 for n in SPARSE_SIZES]
        self.seed = seed

    def batch(self, step: int, rank: int, batch_size: int) -> Tuple[Tensor, Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step * 101 + rank)
        dense = torch.rand(batch_size, NUM_DENSE, generator=g) * 3.0
        sparse = torch.stack([torch.randint(0, n, (batch_size,), generator=g) for n in SPARSE_SIZES], 1)
        logit = (dense.log1p() - 0.7) @ self.dense_w + sum(w[sparse[:, i]] for i, w in enumerate(self.sparse_w))
        clicks = torch.bernoulli(torch.sigmoid(logit), generator=g)
        return dense, sparse, clicks


def pair_up(scores: Tensor, clicks: Tensor, perm: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Pairs example i with example perm[i]: (own score, partner score, label in {-1, 0, 1})."""
    partner = ops.batch_permutation(scores, perm)
    label = (clicks - ops.batch_permutation(clicks, perm)).sign().to(torch.int32)
    return scores, partner, label
