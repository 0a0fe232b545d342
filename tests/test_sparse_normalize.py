"""Sparse-normalize family against a NumPy reference written from docs/operators/."""
import numpy as np
import pytest
import torch

from torch_caffe2ops import ops
import samples
from utils import INDEX_DTYPES, assert_compile_matches, assert_script_roundtrip, on_device, opcheck, rng, t

C2 = torch.ops.caffe2ops


def ref_sparse_normalize(param, indices, use_max_norm=True, norm=1.0):
    out = param.astype(np.float64 if param.dtype == np.float64 else np.float32).copy()
    R = param.shape[0]
    flat = out.reshape(R, -1)
    for r in dict.fromkeys(np.asarray(indices).reshape(-1).tolist()):  # distinct rows (each listed row rescaled once, unlike Caffe2)
        n = np.sqrt((flat[r].astype(np.float64) ** 2).sum())
        if use_max_norm and n <= norm:
            continue
        flat[r] = flat[r] * (norm / (n + 1e-12))
    return out.astype(param.dtype)


def test_spec_example():
    param = torch.tensor([[3., 4], [0.3, 0.4], [6, 8]])
    original = param.clone()
    out = C2.sparse_normalize(param, torch.tensor([0, 1]))
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.3, 0.4], [6, 8]]))
    out = C2.sparse_normalize(param, torch.tensor([0, 1]), use_max_norm=False)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.6, 0.8], [6, 8]]))
    assert torch.equal(param, original)  # functional: input untouched


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("use_max_norm", [True, False])
@pytest.mark.parametrize("itype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_against_reference(seed, use_max_norm, itype, dtype):
    r = rng(seed)
    R = int(r.integers(1, 6))
    shape = (R,) + tuple(int(d) for d in r.integers(1, 6, size=int(r.integers(0, 3))))
    param = r.uniform(-1, 1, size=shape)
    param += np.where(param >= 0, 0.02, -0.02)
    param = param.astype(np.float32 if dtype == torch.float32 else np.float64)
    norm = float(r.uniform(1.0, 4.0)) if seed % 3 else float(r.uniform(0.0, 1.0))
    indices = r.integers(0, R, size=(int(r.integers(0, 8)),))  # duplicates allowed
    expected = ref_sparse_normalize(param, indices, use_max_norm, norm)
    out = C2.sparse_normalize(t(param), t(indices, itype), None, use_max_norm, norm)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=tol, atol=tol)
    listed = np.zeros(R, bool)
    listed[indices] = True
    assert np.array_equal(out.cpu().numpy()[~listed], param[~listed])  # untouched bit for bit
    p = t(param)
    res = C2.sparse_normalize_(p, t(indices, itype), t(param), use_max_norm, norm)  # grad is ignored
    assert res.data_ptr() == p.data_ptr()
    np.testing.assert_allclose(p.cpu().numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["sparse_normalize", "float16_sparse_normalize"])
def test_float16(seed, name):
    r = rng(seed)
    param = r.uniform(-1, 1, size=(5, 4)).astype(np.float16)
    indices = r.integers(0, 5, size=4)
    norm = float(r.uniform(0.5, 2.0))
    for use_max_norm in (True, False):
        # reference: float32 norm, float32 scale applied to the half values
        expected = ref_sparse_normalize(param.astype(np.float32), indices, use_max_norm, norm).astype(np.float16)
        out = getattr(C2, name)(t(param), t(indices), None, use_max_norm, norm)
        assert out.dtype == torch.float16
        np.testing.assert_allclose(out.cpu().numpy().astype(np.float32), expected.astype(np.float32), rtol=2e-3, atol=2e-3)
        p = t(param)
        getattr(C2, name + "_")(p, t(indices), None, use_max_norm, norm)
        assert torch.equal(p, out)


def test_duplicates_normalise_once_from_original():
    p = torch.tensor([[3., 4], [1, 0]])
    a = C2.sparse_normalize(p, torch.tensor([0, 0, 0]), use_max_norm=False, norm=2.0)
    b = C2.sparse_normalize(p, torch.tensor([0]), use_max_norm=False, norm=2.0)
    assert torch.equal(a, b)


def test_edges():
    p = torch.randn(4, 3)
    assert torch.equal(C2.sparse_normalize(p, torch.zeros(0, dtype=torch.long)), p)  # empty indices: no-op
    e = torch.zeros(0, 3)
    assert C2.sparse_normalize(e, torch.zeros(0, dtype=torch.int32)).shape == (0, 3)
    z = torch.zeros(3, 0)
    assert C2.sparse_normalize(z, torch.tensor([1]), use_max_norm=False).shape == (3, 0)  # E = 0
    zero_row = torch.zeros(2, 3)
    assert torch.equal(C2.sparse_normalize(zero_row, torch.tensor([0, 1]), use_max_norm=False), zero_row)
    nan = torch.tensor([[float("nan"), 1.0], [1.0, 1.0]])
    out = C2.sparse_normalize(nan, torch.tensor([0]))
    assert torch.isnan(out[0]).all() and torch.equal(out[1], nan[1])
    # norm = 0: constant mode zeroes listed rows; max-norm zeroes listed rows with norm > 0
    q = torch.tensor([[1., 2], [0, 0], [3, 4]])
    assert C2.sparse_normalize(q, torch.tensor([0, 1]), None, False, 0.0).abs().sum(1).tolist()[:2] == [0, 0]
    assert C2.sparse_normalize(q, torch.tensor([0]), None, True, 0.0)[0].abs().sum() == 0
    # 1-D param: rows of one element
    v = torch.tensor([3., -0.5, 2])
    assert C2.sparse_normalize(v, torch.tensor([0, 1, 2])).tolist() == pytest.approx([1.0, -0.5, 1.0])
    # 3-D param: the row is everything after dim 0
    w = torch.full((2, 2, 2), 1.0)
    assert C2.sparse_normalize(w, torch.tensor([1]))[1].norm().item() == pytest.approx(1.0)


def test_in_place_non_contiguous_and_version_counter():
    base = torch.tensor([[3., 0, 4, 0], [1, 0, 0, 0], [6, 0, 8, 0]])
    view = base[:, ::2]
    assert not view.is_contiguous()
    v0 = view._version
    out = C2.sparse_normalize_(view, torch.tensor([0, 2]))
    assert out.data_ptr() == view.data_ptr() and view._version > v0
    torch.testing.assert_close(base, torch.tensor([[0.6, 0, 0.8, 0], [1, 0, 0, 0], [0.6, 0, 0.8, 0]]))


def test_errors():
    p = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match=r"caffe2ops::sparse_normalize: indices value 3 out of range \[0, 3\) at position 1"):
        C2.sparse_normalize(p, torch.tensor([0, 3]))
    with pytest.raises(RuntimeError, match="value -1 out of range"):
        C2.sparse_normalize_(p, torch.tensor([-1]))
    with pytest.raises(RuntimeError, match="norm should be bigger than 0"):
        C2.sparse_normalize(p, torch.tensor([0]), norm=-1.0)
    with pytest.raises(RuntimeError, match="param must be float16"):
        C2.float16_sparse_normalize(p, torch.tensor([0]))
    with pytest.raises(RuntimeError, match="param must be float32, float64 or float16"):
        C2.sparse_normalize(p.int(), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="int32 or int64"):
        C2.sparse_normalize(p, torch.tensor([0.0]))
    with pytest.raises(RuntimeError, match="rank >= 1"):
        C2.sparse_normalize(torch.tensor(1.0), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="out of range"):
        C2.sparse_normalize(torch.zeros(0, 2), torch.tensor([0]))


def test_no_gradient():
    p = torch.randn(3, 2, requires_grad=True)
    out = C2.sparse_normalize(p, torch.tensor([0]))
    with pytest.raises(RuntimeError, match="caffe2ops::sparse_normalize"):
        out.sum().backward()


def opcheck_cases():
    """The family's sample table (tests/samples/sparse_normalize.py); tests/test_cuda.py uses it too."""
    return samples.opcheck_cases("sparse_normalize")


@pytest.mark.parametrize("case", opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case, device):
    opcheck(case[0], on_device(case[1], device))


class Net(torch.nn.Module):
    def forward(self, p, idx):
        q = ops.sparse_normalize(p, idx, None, False, 2.0)
        return q, ops.sparse_normalize_(p.clone(), idx)


@pytest.mark.slow
def test_torchscript_roundtrip_fresh_process():
    assert_script_roundtrip(Net(), [torch.randn(5, 3, dtype=torch.float64) * 3, torch.tensor([4, 0, 4])], grad=False)


def test_torch_compile():
    assert_compile_matches(lambda p, i: C2.sparse_normalize(p, i, None, False, 2.0) * 2,
                           torch.randn(6, 3) * 3, torch.tensor([1, 5, 1]), grad=False)

    def f(p, i):
        q = p * 1.0
        C2.sparse_normalize_(q, i)
        return q
    assert_compile_matches(f, torch.randn(6, 3) * 3, torch.tensor([0, 2]), grad=False)
