"""Margin-rank family against a NumPy reference written from docs/operators/."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_caffe2ops import nn, ops
import samples
from utils import assert_compile_matches, assert_script_roundtrip, on_device, opcheck, rng, t

C2 = torch.ops.caffe2ops


def ref_loss(x1, x2, y, margin):
    return np.maximum(-y * (x1 - x2) + margin, 0)


def ref_grad(x1, x2, y, g, margin):
    active = (-y * (x1 - x2) + margin) >= 0
    return np.where(active, -y * g, 0), np.where(active, y * g, 0)


def test_spec_example():
    X1, X2, Y = torch.tensor([1.0, 0.2]), torch.tensor([0.5, 1.0]), torch.tensor([1, -1], dtype=torch.int32)
    torch.testing.assert_close(C2.margin_ranking_criterion(X1, X2, Y), torch.tensor([0.5, 0.2]))
    d1, d2 = C2.margin_ranking_criterion_gradient(X1, X2, Y, torch.ones(2))
    assert d1.tolist() == [-1, 1] and d2.tolist() == [1, -1]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ytype", [torch.int32, torch.int64, "float"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_against_reference(seed, ytype, dtype):
    r = rng(seed)
    N = int(r.integers(10, 21)) if seed else 0
    npd = np.float32 if dtype == torch.float32 else np.float64
    x1, x2 = r.standard_normal(N).astype(npd), r.standard_normal(N).astype(npd)
    y = r.choice([-1, 1], size=N) if seed % 4 else r.integers(-2, 3, size=N)  # any int works
    margin = float(r.uniform(-0.5, 0.5))
    yt = t(y, dtype if ytype == "float" else ytype)
    loss = C2.margin_ranking_criterion(t(x1), t(x2), yt, margin)
    assert loss.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(loss.cpu().numpy(), ref_loss(x1, x2, y.astype(npd), npd(margin)), rtol=tol, atol=tol)
    g = r.standard_normal(N).astype(npd)
    d1, d2 = C2.margin_ranking_criterion_gradient(t(x1), t(x2), yt, t(g), margin)
    e1, e2 = ref_grad(x1, x2, y.astype(npd), g, npd(margin))
    np.testing.assert_allclose(d1.cpu().numpy(), e1, rtol=tol, atol=tol)
    np.testing.assert_allclose(d2.cpu().numpy(), e2, rtol=tol, atol=tol)


def test_numel_only_shapes_and_large():
    x1 = torch.randn(3, 4)
    x2 = torch.randn(12)
    y = torch.ones(2, 6, dtype=torch.int32)
    loss = C2.margin_ranking_criterion(x1, x2, y, 0.3)
    assert loss.shape == (3, 4)
    torch.testing.assert_close(loss.reshape(-1), torch.clamp_min(-(x1.reshape(-1) - x2) + 0.3, 0))
    # long enough for several threads and the vectorised path
    a, b = torch.randn(100003), torch.randn(100003)
    yy = (torch.randint(0, 2, (100003,)) * 2 - 1).int()
    torch.testing.assert_close(C2.margin_ranking_criterion(a, b, yy, 0.1),
                               F.margin_ranking_loss(a, b, yy.float(), margin=0.1, reduction="none"))


def test_hinge_point_is_active():
    # dist = -y (x1 - x2) + margin == 0 exactly
    x1, x2, y = torch.tensor([1.5]), torch.tensor([0.5]), torch.tensor([1])
    assert C2.margin_ranking_criterion(x1, x2, y, 1.0).item() == 0
    d1, d2 = C2.margin_ranking_criterion_gradient(x1, x2, y, torch.tensor([2.0]), 1.0)
    assert d1.item() == -2 and d2.item() == 2
    d1, _ = C2.margin_ranking_criterion_gradient(x1, x2, y, torch.tensor([2.0]), 0.5)  # dist < 0
    assert d1.item() == 0


def test_errors():
    a = torch.randn(4)
    with pytest.raises(RuntimeError, match="margin_ranking_criterion: The two inputs for computing ranking loss should have the same size: X1 has 4 elements, X2 has 3"):
        C2.margin_ranking_criterion(a, torch.randn(3), torch.ones(4, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="The input and label should have the same size: X1 has 4 elements, Y has 3"):
        C2.margin_ranking_criterion(a, a, torch.ones(3, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="X2 must have the dtype of X1"):
        C2.margin_ranking_criterion(a, a.double(), torch.ones(4, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="Y must be int32, int64 or X1's dtype"):
        C2.margin_ranking_criterion(a, a, torch.ones(4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="X1 must be float32 or float64"):
        C2.margin_ranking_criterion(a.int(), a.int(), torch.ones(4, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="dLoss has 3 elements but X1 has 4"):
        C2.margin_ranking_criterion_gradient(a, a, torch.ones(4, dtype=torch.int32), torch.ones(3))


def test_inactive_gradient_is_zero_even_for_nan_dloss():
    # dist = -1 * (2 - 0) + 0 < 0: Caffe2 writes 0, whatever dLoss holds.
    d1, d2 = C2.margin_ranking_criterion_gradient(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]),
                                                  torch.tensor([1, 1]), torch.tensor([float("nan"), float("inf")]), 0.0)
    assert d1[0].item() == 0 and d2[0].item() == 0
    assert d1[1].item() == float("-inf") and d2[1].item() == float("inf")  # active (dist = 0): -y dLoss, y dLoss


def test_gradient_shapes_follow_each_input():
    # Caffe2 sizes each gradient like its own input; only numel has to agree.
    X1, X2 = torch.randn(2, 3), torch.randn(6)
    Y, dLoss = torch.tensor([1, -1, 1, -1, 1, -1], dtype=torch.int32), torch.randn(2, 3)
    dX1, dX2 = C2.margin_ranking_criterion_gradient(X1, X2, Y, dLoss, 0.5)
    assert dX1.shape == (2, 3) and dX2.shape == (6,)
    ref1, ref2 = C2.margin_ranking_criterion_gradient(X1, X2.reshape(2, 3), Y, dLoss, 0.5)
    assert torch.equal(dX1, ref1) and torch.equal(dX2, ref2.reshape(6))
    meta = [x.to("meta") for x in (X1, X2, Y, dLoss)]
    m1, m2 = C2.margin_ranking_criterion_gradient(*meta, 0.5)
    assert m1.shape == (2, 3) and m2.shape == (6,)


def test_gradcheck_away_from_kink():
    r = rng(0)
    x1, x2 = r.standard_normal(15), r.standard_normal(15)
    y = r.choice([-1, 1], size=15)
    margin = 0.2
    near = np.abs(margin - y * (x1 - x2)) < 0.1
    x1[near] += 0.1
    x2[near] -= 0.1
    X1, X2 = t(x1).requires_grad_(True), t(x2).reshape(3, 5).requires_grad_(True)
    for yt in (t(y, torch.int32), t(y, torch.int64), t(y, torch.float64)):
        assert torch.autograd.gradcheck(lambda a, b: C2.margin_ranking_criterion(a, b, yt, margin), (X1, X2))


def test_nn_module():
    a, b = torch.randn(10), torch.randn(10)
    y = torch.ones(10, dtype=torch.int32)
    assert torch.equal(nn.MarginRankingCriterion()(a, b, y), C2.margin_ranking_criterion(a, b, y, 1.0))
    assert nn.MarginRankingCriterion(0.5, "mean")(a, b, y).item() == pytest.approx(C2.margin_ranking_criterion(a, b, y, 0.5).mean().item())
    assert nn.MarginRankingCriterion(0.5, "sum")(a, b, y).shape == ()


def opcheck_cases():
    """The family's sample table (tests/samples/margin_rank.py); tests/test_cuda.py uses it too."""
    return samples.opcheck_cases("margin_rank")


@pytest.mark.parametrize("case", opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case, device):
    name, args = case
    opcheck(name, on_device(args, device))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.loss = nn.MarginRankingCriterion(0.3)

    def forward(self, a, b, y):
        return self.loss(a, b, y) * 2.0


@pytest.mark.slow
def test_torchscript_roundtrip_fresh_process():
    assert_script_roundtrip(Net(), [torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64),
                                    torch.tensor([1, -1, 1, 1, -1, -1, 1, -1], dtype=torch.int32)])


def test_torch_compile():
    assert_compile_matches(Net(), torch.randn(9), torch.randn(9), torch.tensor([1, -1, 1] * 3))
