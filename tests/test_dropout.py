"""Dropout family: semantics, statistics, reproducibility, gradients."""
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from torch_caffe2ops import nn, ops
import samples
from utils import ROOT, assert_compile_matches, assert_script_roundtrip, intra_op_threads, noncontiguous, on_device, opcheck

C2 = torch.ops.caffe2ops
ALL_FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def test_spec_example_gradient():
    mask = torch.tensor([True, False, False, True])
    assert C2.dropout_gradient(torch.ones(4), mask, 0.5).tolist() == [2, 0, 0, 2]
    # Y = X * mask * scale for the returned mask: check the relation on a real draw
    X = torch.tensor([1., 2, 3, 4])
    Y, m = C2.dropout(X, 0.5)
    assert torch.equal(Y, X * m * 2)


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.75, 0.9, 0.999])
def test_kept_fraction_binomial_bound(ratio):
    n = 1 << 20
    torch.manual_seed(1234)
    _, mask = C2.dropout(torch.ones(n), ratio)
    p = 1 - ratio
    kept = mask.sum().item()
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * p) < 5 * sigma, (kept, n * p, sigma)


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_kept_values_bit_exact(ratio, dtype):
    X = torch.randn(10000).to(dtype)
    Y, mask = C2.dropout(X, ratio)
    assert mask.dtype == torch.bool and Y.dtype == dtype and Y.shape == X.shape
    # A kept value is X * scale, scale = 1/(1 - ratio) in double rounded once to the op-math
    # type, the product rounded once: Caffe2's CPU kernel and torch.native_dropout given the same
    # mask. (A division X / (1 - ratio) differs in the last bit for most of these ratios.)
    opmath = torch.float64 if dtype == torch.float64 else torch.float32
    scale = torch.tensor(1.0 / (1.0 - ratio), dtype=torch.float64).to(opmath)
    expected = (X.to(opmath) * mask.to(opmath) * scale).to(dtype)
    assert torch.equal(Y, expected)
    native = torch.ops.aten.native_dropout_backward(X, mask, 1.0 / (1.0 - ratio))
    assert torch.equal(Y, native)
    np_x = X.cpu().to(opmath).numpy()
    np_scale = np.array(1.0 / (1.0 - ratio), dtype=np.float64).astype(np_x.dtype)
    np_kept = torch.from_numpy(np_x[mask.cpu().numpy()] * np_scale).to(dtype)
    assert torch.equal(Y[mask].cpu(), np_kept)
    assert (Y[~mask] == 0).all()
    dY = torch.randn(10000).to(dtype)
    dX = C2.dropout_gradient(dY, mask, ratio)
    assert torch.equal(dX, torch.ops.aten.native_dropout_backward(dY, mask, 1.0 / (1.0 - ratio)))
    assert torch.equal(dX, (dY.to(opmath) * mask.to(opmath) * scale).to(dtype))


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.4, 0.7, 0.9])
def test_no_division_by_one_minus_ratio(ratio):
    # Guards against the division rule the contract dropped: for these ratios some kept values
    # of a large draw differ in the last bit between X * scale and X / (1 - ratio).
    X = torch.randn(1 << 16)
    Y, mask = C2.dropout(X, ratio)
    assert not torch.equal(Y[mask], X[mask] / (1 - ratio))


def test_dropped_nan_stays_nan():
    X = torch.full((1000,), float("nan"))
    Y, mask = C2.dropout(X, 0.5)
    assert torch.isnan(Y).all()  # kept: NaN * scale; dropped: NaN * 0, as Caffe2 and torch


@pytest.mark.cpu_only
def test_same_seed_same_mask_any_thread_count():
    X = torch.randn(3, 1000, 37)
    old = torch.get_num_threads()
    masks = []
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            masks.append(C2.dropout(X, 0.4)[1])
    finally:
        torch.set_num_threads(old)
    assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
    # the generator advances: a second call differs
    torch.manual_seed(7)
    a = C2.dropout(X, 0.4)[1]
    b = C2.dropout(X, 0.4)[1]
    assert torch.equal(a, masks[0]) and not torch.equal(a, b)



# An independent NumPy statement of the CPU mask, pinned bit for bit: the key is the next 64
# bits of the CPU generator (two MT19937 words, the first one high); element e of block b
# (2048 elements) takes the 16-bit half e // 1024 of word e % 1024 of the Philox4x32-10 calls
# b * 256 ... b * 256 + 255 (words stored word-major), and is kept when that half exceeds the
# threshold t = ceil(ratio * 2^32)'s high half; on a tie, the low 16 bits of word 0 of call
# 2^63 + e decide (kept when >= t's low half).
def _philox(counters, k0, k1):
    m32 = np.uint64(0xFFFFFFFF)
    c0, c1 = counters & m32, counters >> np.uint64(32)
    c2, c3 = np.zeros_like(c0), np.zeros_like(c0)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c2, c1, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, (p0 >> np.uint64(32)) ^ c3 ^ k1, p1 & m32, p0 & m32
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & m32, (k1 + np.uint64(0xBB67AE85)) & m32
    return c0, c1, c2, c3


def _reference_mask(n, ratio, seed, first_block=0):
    """The mask of elements first_block * 2048 ... n - 1."""
    hi, lo = (int(v) for v in np.random.RandomState(seed).randint(0, 2**32, size=2, dtype=np.uint64))
    k0, k1 = lo, hi
    t = math.ceil(ratio * 2.0**32)
    keep = []
    for b in range(first_block, (n + 2047) // 2048):
        words = np.concatenate(_philox(np.arange(b * 256, (b + 1) * 256, dtype=np.uint64), k0, k1))
        high = np.concatenate([words & np.uint64(0xFFFF), words >> np.uint64(16)]).astype(np.int64)
        block = high > (t >> 16)
        for i in np.nonzero(high == (t >> 16))[0]:
            word = _philox(np.array([(1 << 63) | (b * 2048 + int(i))], dtype=np.uint64), k0, k1)[0][0]
            block[i] = (int(word) & 0xFFFF) >= (t & 0xFFFF)
        keep.append(block)
    return np.concatenate(keep)[:n - first_block * 2048]


# 2^20 elements: about 16 high halves tie with the threshold's, at ratios that are multiples
# of 2^-16 (0.5, and 1 - 2^-16 where only the top high half keeps: ties keep) and at one that is
# not (0.3: ties need the low half); the largest ratio below 1 keeps nothing.
@pytest.mark.parametrize("seed, n, ratio", [(0, 5000, 0.5), (7, 70001, 0.3), (123, 3, 0.9), (5, 2048, 0.0),
                                            (11, 1 << 20, 0.5), (12, 1 << 20, 0.3), (13, 1 << 20, 1 - 2**-16),
                                            (14, 1 << 16, math.nextafter(1.0, 0.0))])
def test_cpu_mask_matches_numpy_philox_reference(seed, n, ratio):
    expected = _reference_mask(n, ratio, seed)
    with intra_op_threads(1):
        torch.manual_seed(seed)
        y1, mask1 = C2.dropout(torch.ones(n), ratio)
    for threads in (1, 2):
        with intra_op_threads(threads):
            torch.manual_seed(seed)
            y, mask = C2.dropout(torch.ones(n), ratio)
        assert np.array_equal(mask.numpy(), expected)
        # Y: every kept element (those decided on a tie included) is the one scaled value,
        # every dropped one 0, the same at any thread count.
        assert torch.equal(y, y1)
        assert (y[~mask] == 0).all()
        if mask.any():
            assert (y[mask] == y[mask][0]).all() and y[mask][0] >= 1


# A float32 call of 32 MiB or more (X, Y and the mask) writes Y and the mask with streaming
# stores on AVX-512 machines, in full blocks; the partial last block and every smaller call
# take the ordinary loop (as everything does on other machines, where this checks that loop).
# Both must give the same mask and values: the first 2^20 elements against a call of that
# size (ordinary loop; about 16 of them tie with the threshold at this ratio and are decided
# after the streamed stores), the last blocks (the partial one too) against the NumPy
# reference, and every value bit for bit, NaN, inf and -0.0 included.
@pytest.mark.cpu_only
def test_streamed_large_call_matches_the_ordinary_loop_and_the_reference():
    n, ratio, seed = (1 << 22) + 5000, 0.3, 21
    torch.manual_seed(0)
    X = torch.randn(n)
    X[::4099] = float("nan")
    X[1::4111] = float("inf")
    X[2::4127] = -0.0
    results = []
    for threads in (1, 2):
        with intra_op_threads(threads):
            torch.manual_seed(seed)
            results.append(C2.dropout(X, ratio))
    (Y, mask), (Y2, mask2) = results
    assert torch.equal(mask, mask2) and torch.equal(Y.view(torch.int32), Y2.view(torch.int32))
    torch.manual_seed(seed)
    _, small_mask = C2.dropout(X[: 1 << 20], ratio)
    assert torch.equal(mask[: 1 << 20], small_mask)
    first_block = n // 2048 - 2
    assert np.array_equal(mask[first_block * 2048:].numpy(), _reference_mask(n, ratio, seed, first_block))
    scale = torch.tensor(1.0 / (1.0 - ratio), dtype=torch.float64).float()
    expected = X * mask.float() * scale  # kept: X * scale; dropped: X * 0 (NaN for NaN and inf, -0.0 for -0.0)
    assert torch.equal(Y.view(torch.int32), expected.view(torch.int32))
    assert Y[2::4127].signbit().all() and torch.isnan(Y[1::4111][~mask[1::4111]]).all()
    # The gradient streams too: each thread's share starts wherever the split falls, on a
    # line or not.
    dY = torch.randn(n)
    dY[3::4133] = float("nan")
    expected = torch.ops.aten.native_dropout_backward(dY, mask, 1.0 / (1.0 - ratio))
    for threads in (1, 2, 3):
        with intra_op_threads(threads):
            dX = C2.dropout_gradient(dY, mask, ratio)
        assert torch.equal(dX.view(torch.int32), expected.view(torch.int32))


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the check")
def test_vectorised_philox_words_match_the_scalar_generator(tmp_path):
    # The masks above only reach counters below 2^32; this builds a small program over the
    # header itself to compare every vector path's words with the scalar ones at counters with
    # non-zero high words, up to the top of the 64-bit range.
    exe = tmp_path / "philox_words"
    subprocess.run(["g++", "-O2", "-std=c++17", f"-I{os.path.join(ROOT, 'csrc')}",
                    os.path.join(ROOT, "tests", "native", "philox_words.cpp"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_generator_argument(device):
    X = torch.randn(5000)
    gen = lambda seed: torch.Generator(device).manual_seed(seed)
    g1, g2 = gen(3), gen(3)
    assert torch.equal(C2.dropout(X, 0.5, generator=g1)[1], C2.dropout(X, 0.5, generator=g2)[1])
    assert not torch.equal(C2.dropout(X, 0.5, generator=gen(4))[1], C2.dropout(X, 0.5, generator=g1)[1])


def test_mask_independent_of_shape_and_layout():
    torch.manual_seed(0)
    a = C2.dropout(torch.randn(6000), 0.5)[1]
    torch.manual_seed(0)
    b = C2.dropout(noncontiguous(torch.randn(60, 100)), 0.5)[1]
    assert torch.equal(a, b.reshape(-1))


def test_no_bias_between_positions():
    # Elements are drawn from different parts of each Philox block; every position class
    # must keep 1 - ratio of its elements.
    n = 1 << 20
    torch.manual_seed(5)
    mask = C2.dropout(torch.ones(n), 0.5)[1].reshape(-1, 2048).float()
    for part in (mask[:, :1024], mask[:, 1024:], mask[:, 0::4], mask[:, 3::4]):
        frac = part.mean().item()
        assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / part.numel())


@pytest.mark.parametrize("shape", [(4,), (2, 3), (1, 5, 2, 3), (0,), (3, 0)])
def test_is_test_and_ratio_zero(shape):
    X = torch.randn(*shape)
    Y, mask = C2.dropout(X, 0.7, is_test=True)
    assert torch.equal(Y, X) and mask.dtype == torch.bool and mask.all() and mask.shape == X.shape
    assert Y.data_ptr() != X.data_ptr() or X.numel() == 0
    Y, mask = C2.dropout(X, 0.0)
    assert torch.equal(Y, X) and mask.all()
    assert C2.dropout_gradient(X, None, 0.7, True).equal(X)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_ratio_outside_range_rejected(ratio):
    for is_test in (False, True):
        with pytest.raises(RuntimeError, match=r"caffe2ops::dropout: ratio must be in \[0, 1\)"):
            C2.dropout(torch.randn(3), ratio, is_test)
    with pytest.raises(RuntimeError, match="ratio must be in"):
        C2.dropout_gradient(torch.randn(3), torch.ones(3, dtype=torch.bool), ratio)


def test_gradient_errors_and_values():
    dY = torch.randn(2, 3, dtype=torch.float64)
    mask = torch.rand(2, 3) > 0.5
    assert torch.equal(C2.dropout_gradient(dY, mask, 0.25), dY * mask / 0.75)
    assert torch.equal(C2.dropout_gradient(dY, mask.reshape(-1), 0.25), dY * mask / 0.75)  # numel is what counts
    with pytest.raises(RuntimeError, match="mask is required when is_test=False"):
        C2.dropout_gradient(dY)
    with pytest.raises(RuntimeError, match="mask must be bool"):
        C2.dropout_gradient(dY, mask.int(), 0.25)
    with pytest.raises(RuntimeError, match="mask has 5 elements but dY has 6"):
        C2.dropout_gradient(dY, torch.ones(5, dtype=torch.bool), 0.25)
    with pytest.raises(RuntimeError, match="X must be"):
        C2.dropout(torch.ones(3, dtype=torch.int32))


def test_autograd(device):
    x = torch.randn(50, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: C2.dropout(x, 0.4, generator=torch.Generator(device).manual_seed(1))[0], (x,))
    assert torch.autograd.gradcheck(lambda x: C2.dropout(x, 0.0)[0], (x,))
    assert torch.autograd.gradcheck(lambda x: C2.dropout(x, 0.6, True)[0], (x,))
    y, mask = C2.dropout(x, 0.4)
    assert not mask.requires_grad
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, mask.double() * (1 / 0.6))


def test_nn_dropout_follows_training():
    m = nn.Dropout(0.5)
    x = torch.randn(1000)
    assert not torch.equal(m(x), x)
    m.eval()
    assert torch.equal(m(x), x)
    with pytest.raises(ValueError):
        nn.Dropout(1.0)


@pytest.mark.cpu_only
def test_cudnn_ops_raise_clearly_without_cuda():
    with pytest.raises(RuntimeError, match="caffe2ops::cudnn_dropout: needs a CUDA tensor"):
        C2.cudnn_dropout(torch.randn(3))
    with pytest.raises(RuntimeError, match="caffe2ops::cudnn_dropout_gradient: needs a CUDA tensor"):
        C2.cudnn_dropout_gradient(torch.randn(3), torch.zeros(8, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="cudnn_dropout: needs a CUDA tensor"):
        nn.Dropout(0.5, engine="cudnn")(torch.randn(3))


def opcheck_cases():
    """The family's sample table (tests/samples/dropout.py); tests/test_cuda.py uses it too."""
    return samples.opcheck_cases("dropout")


@pytest.mark.parametrize("case", opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case, device):
    opcheck(case[0], on_device(case[1], device))


def test_opcheck_random():
    gr = dict(dtype=torch.float64, requires_grad=True)
    # With ratio > 0 two calls draw different masks, so the AOT-dispatch sub-tests, which
    # compare two runs of the op, cannot apply to a random op.
    torch.library.opcheck(C2.dropout.default, (torch.randn(5, 3, **gr), 0.5),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


class DropoutNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x) * 2.0


@pytest.mark.slow
def test_torchscript_roundtrip_fresh_process():
    net = DropoutNet().eval()  # deterministic in eval mode: the fresh process must agree
    assert_script_roundtrip(net, [torch.randn(4, 5, dtype=torch.float64)])


def test_torch_compile_matches_eager_with_same_seed():
    def f(x):
        y, mask = C2.dropout(x, 0.3)
        return y * 2, mask

    x = torch.randn(64, 33)
    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, dynamic=True)
    torch.manual_seed(11)
    ey, em = f(x)
    torch.manual_seed(11)
    cy, cm = compiled(x)
    assert torch.equal(em, cm) and torch.equal(ey, cy)
    assert_compile_matches(lambda x: C2.dropout(x, 0.0)[0] * 3, torch.randn(7, 3))
