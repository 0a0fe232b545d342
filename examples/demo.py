"""A short tour of torch_caffe2ops on sample data: each op of the batch family with the
spec's worked examples, its gradient, and a TorchScript round trip.

    bash scripts/demo.sh
"""
import os
import tempfile

import torch

import torch_caffe2ops
from torch_caffe2ops import ops


def show(title, value):
    print(f"{title}:\n{value}\n")


def main():
    print(f"torch_caffe2ops {torch_caffe2ops.__version__} (built against torch {torch_caffe2ops.TORCH_VERSION})\n")

    X = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    Y = ops.batch_permutation(X, torch.tensor([2, 0, 1], dtype=torch.int32))
    show("batch_permutation(X, [2, 0, 1])", Y.detach())
    Y.backward(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    show("  its gradient for dY rows (1, 2, 3)", X.grad)

    data = torch.tensor([[1.0, 1.2, 2.4, 4.5], [2.3, 3.4, 3.6, 2.3], [4.5, 5.7, 1.2, 4.5]])
    show("batch_gather(data, [0, 2])", ops.batch_gather(data, torch.tensor([0, 2])))

    dense = ops.batch_sparse_to_dense(torch.tensor([2, 3, 1]), torch.tensor([0, 1, 2, 3, 4, 5]),
                                      torch.tensor([6.0, 7, 8, 9, 10, 11]), dense_last_dim=6)
    show("batch_sparse_to_dense(lengths=[2,3,1], ...)", dense)
    show("batch_dense_to_sparse back", ops.batch_dense_to_sparse(torch.tensor([2, 3, 1]),
                                                                 torch.tensor([0, 1, 2, 3, 4, 5]), dense))

    y = ops.batch_mat_mul(torch.ones(3, 5, 10), torch.ones(2, 3, 10, 6), broadcast=True)
    show("batch_mat_mul(ones[3,5,10], ones[2,3,10,6], broadcast=True): shape, value", (tuple(y.shape), y[0, 0, 0, 0].item()))

    mu, second = ops.batch_moments(torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]]))
    show("batch_moments: mean and E[x^2] (not the variance)", (mu, second))

    show("batch_box_cox([[1, 2]], lambda1=[0, 0.5], lambda2=[0, 1])",
         ops.batch_box_cox(torch.tensor([[1.0, 2.0]]), torch.tensor([0.0, 0.5]), torch.tensor([0.0, 1.0])))

    feats = torch.tensor([[1.42, 2.07, 3.19, 0.55, 4.32], [4.57, 2.30, 0.84, 4.48, 3.09]])
    show("batch_bucketize (int32)", ops.batch_bucketize(feats, torch.tensor([0, 1, 4], dtype=torch.int32),
                                                        torch.tensor([0.5, 1.0, 1.5, 2.5, 3.5, 2.5]),
                                                        torch.tensor([2, 3, 1], dtype=torch.int32)))
    show("concat_batch_mat_mul_batch_gather: pairwise dot products",
         ops.concat_batch_mat_mul_batch_gather(torch.tensor([0, 1, 3]), [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]))
    show("batch_bucket_one_hot", ops.batch_bucket_one_hot(torch.tensor([[2.0, 3.0], [4.0, 1.0]]), torch.tensor([2, 3]),
                                                          torch.tensor([0.1, 2.5, 1.0, 3.1, 4.5])))

    try:
        ops.batch_gather(data, torch.tensor([0, 7]))
    except RuntimeError as e:
        show("a bad index is an error, not a silent read", str(e).splitlines()[0])

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            mean, second = ops.batch_moments(ops.batch_permutation(x, idx))
            return second - mean * mean

    net = torch.jit.script(Net())
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.pt")
        net.save(path)
        loaded = torch.jit.load(path)
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([3, 1, 0, 2])
    out = loaded(x, idx)
    out.sum().backward()
    show("TorchScript round trip: saved, loaded, run with gradients; equals eager", torch.allclose(out, Net()(x, idx)))
    print("demo finished")


if __name__ == "__main__":
    main()
