"""Every op on CUDA against the CPU kernels, and what only CUDA has (split_info on the host,
bad indices leaving the context healthy, cuDNN dropout, deterministic scatter-adds). The
family tests run on CUDA too (tests/conftest.py); this file compares the two devices directly.
Runs only where torch.cuda.is_available(); elsewhere each test skips with the reason."""
import math

import pytest
import torch

import samples
import test_batch
import test_concat_split
import test_dropout
import test_margin_rank
import test_sparse_normalize
from utils import on_device, requires_cuda

C2 = torch.ops.caffe2ops
pytestmark = requires_cuda


def run(name, args):
    outs = getattr(C2, name)(*args)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    grads = []
    inputs = samples.leaves(args)
    floats = [o for o in outs if o.is_floating_point() and o.requires_grad]
    if inputs and floats:
        loss = sum((o.double() * (1 + torch.arange(o.numel(), device=o.device).reshape(o.shape) % 3)).sum() for o in floats)
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return outs, grads


def cases():
    out = []
    for module in (test_batch, test_concat_split, test_dropout, test_margin_rank, test_sparse_normalize):
        out += module.opcheck_cases()
    gr = dict(dtype=torch.float64, requires_grad=True)
    out += [  # what only a direct comparison exercises: data-dependent splits, empty batches
        ("split_by_lengths", (torch.randn(3, 6, **gr), torch.tensor([1, 2, 3], dtype=torch.int32), 3)),
        ("split", (torch.randn(3, 6, **gr), torch.tensor([2, 4], dtype=torch.int32))),
        ("batch_moments", (torch.randn(0, 3, 2),)),
    ]
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_cuda_matches_cpu(case):
    name, args = case
    cpu_outs, cpu_grads = run(name, args)
    cuda_args = on_device(args, "cuda")
    if name in ("split", "depth_split", "concat_gradient"):  # split sizes as a tensor stay on the CPU (Caffe2)
        cuda_args = tuple(a.cpu() if isinstance(a, torch.Tensor) and a.dtype == torch.int32 and a.dim() == 1 and i == 1 else a
                          for i, a in enumerate(cuda_args))
    cuda_outs, cuda_grads = run(name, cuda_args)
    assert len(cpu_outs) == len(cuda_outs)
    for c, g in zip(cpu_outs, cuda_outs):
        assert c.dtype == g.dtype and c.shape == g.shape
        torch.testing.assert_close(g.cpu(), c, rtol=1e-4, atol=1e-5, equal_nan=True)
    for c, g in zip(cpu_grads, cuda_grads):
        assert (c is None) == (g is None)
        if c is not None:
            torch.testing.assert_close(g.cpu(), c, rtol=1e-4, atol=1e-5)


def test_cuda_concat_split_info_on_cpu():
    _, info = C2.concat([torch.randn(2, 3, device="cuda"), torch.randn(2, 1, device="cuda")])
    assert info.device.type == "cpu" and info.dtype == torch.int32 and info.tolist() == [3, 1]


@pytest.mark.parametrize("name,args,match", [
    ("batch_permutation", lambda d: (torch.randn(3, 2, device=d), torch.tensor([0, 3, 1], device=d)), "value 3 out of range"),
    ("batch_gather", lambda d: (torch.randn(2, 5, device=d), torch.tensor([1, -1], device=d)), "out of DATA bounds, id=-1"),
    ("batch_sparse_to_dense", lambda d: (torch.tensor([2, 1], device=d), torch.tensor([0, 9, 1], device=d),
                                         torch.randn(3, device=d), None, 3), "must name a column of dense"),
    ("batch_bucketize", lambda d: (torch.rand(3, 2, device=d), torch.tensor([2], device=d), torch.tensor([0.5], device=d),
                                   torch.tensor([1], device=d)), "out of range"),
    ("sparse_normalize", lambda d: (torch.randn(3, 2, device=d), torch.tensor([5], device=d)), "out of range"),
])
def test_cuda_rejects_bad_indices(name, args, match):
    with pytest.raises(RuntimeError, match=match):
        getattr(C2, name)(*args("cuda"))
    torch.cuda.synchronize()  # nothing was read out of bounds: the context is still healthy


def test_cuda_dropout_statistics_and_seed():
    X = torch.randn(1 << 20, device="cuda")
    for ratio in (0.1, 0.5, 0.9):
        torch.manual_seed(3)
        Y, mask = C2.dropout(X, ratio)
        torch.manual_seed(3)
        Y2, mask2 = C2.dropout(X, ratio)
        assert torch.equal(mask, mask2) and torch.equal(Y, Y2)
        p = 1 - ratio
        assert abs(mask.sum().item() - X.numel() * p) < 5 * math.sqrt(X.numel() * p * (1 - p))
        # X * scale with scale rounded once to float, as torch.native_dropout (computed on the CPU)
        assert torch.equal(Y.cpu(), torch.ops.aten.native_dropout_backward(X.cpu(), mask.cpu(), 1 / (1 - ratio)))
        assert not torch.equal(C2.dropout(X, ratio)[1], mask)  # the generator advanced
    dY = torch.randn_like(X)
    expected = torch.ops.aten.native_dropout_backward(dY.cpu(), mask.cpu(), 1 / (1 - 0.9))
    assert torch.equal(C2.dropout_gradient(dY, mask, 0.9).cpu(), expected)


@pytest.mark.skipif(not torch.backends.cudnn.is_available(), reason="cuDNN is not available")
def test_cudnn_dropout():
    X = torch.randn(1 << 18, device="cuda")
    ratio = 0.3
    Y, reserve = C2.cudnn_dropout(X, ratio)
    assert reserve.dtype == torch.uint8 and reserve.dim() == 1
    # The mask, recovered as the gradient of ones: kept -> 1/(1-p), dropped -> 0.
    g = C2.cudnn_dropout_gradient(torch.ones_like(X), reserve, ratio)
    kept = g != 0
    torch.testing.assert_close(g[kept], torch.full_like(g[kept], 1 / (1 - ratio)))
    p = 1 - ratio
    assert abs(kept.sum().item() - X.numel() * p) < 5 * math.sqrt(X.numel() * p * (1 - p))
    torch.testing.assert_close(Y, X * kept / (1 - ratio))
    dY = torch.randn_like(X)
    torch.testing.assert_close(C2.cudnn_dropout_gradient(dY, reserve, ratio), dY * kept / (1 - ratio))
    # test mode: identity, and the gradient op returns dY
    Yt, _ = C2.cudnn_dropout(X, ratio, True)
    assert torch.equal(Yt, X)
    assert torch.equal(C2.cudnn_dropout_gradient(dY, reserve, ratio, True), dY)
    # reproducible with a generator
    a = C2.cudnn_dropout(X, ratio, generator=torch.Generator("cuda").manual_seed(1))[0]
    b = C2.cudnn_dropout(X, ratio, generator=torch.Generator("cuda").manual_seed(1))[0]
    assert torch.equal(a, b)
    # empty input: nothing to drop, no cuDNN descriptor
    Ye, re = C2.cudnn_dropout(X[:0], ratio)
    assert Ye.shape == (0,) and re.numel() == 0 and C2.cudnn_dropout_gradient(Ye, re, ratio).shape == (0,)
    # the Meta kernel sizes the reserve space as cuDNN does (fake tensors, torch.compile)
    torch.library.opcheck(C2.cudnn_dropout.default, (X[:4096].clone(), ratio),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    torch.library.opcheck(C2.cudnn_dropout_gradient.default, (X[:4096].clone(), C2.cudnn_dropout(X[:4096], ratio)[1], ratio),
                          test_utils=("test_schema", "test_faketensor"))
    # through autograd
    x = X[:1000].clone().requires_grad_(True)
    y, r = C2.cudnn_dropout(x, ratio)
    y.sum().backward()
    torch.testing.assert_close(x.grad, C2.cudnn_dropout_gradient(torch.ones_like(x), r, ratio))


def test_cuda_deterministic_gradients():
    data = torch.randn(4, 50, 8, device="cuda", dtype=torch.float64)
    idx = torch.randint(0, 50, (2000,), device="cuda")
    grad = torch.randn(4, 2000, 8, device="cuda", dtype=torch.float64)
    torch.use_deterministic_algorithms(True)
    try:
        a = C2.batch_gather_gradient(data, idx, grad)
        b = C2.batch_gather_gradient(data, idx, grad)
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(a, b)
