"""Concat/split family against NumPy references written from docs/operators/."""
import numpy as np
import pytest
import torch

from torch_caffe2ops import ops
import samples
from utils import (INDEX_DTYPES, assert_compile_matches, assert_script_roundtrip, intra_op_threads,
                   noncontiguous, on_device, opcheck, rng, t)

C2 = torch.ops.caffe2ops


def ref_axis(axis, order, rank):
    if axis is None:
        axis = {"NCHW": 1, "nchw": 1, "NHWC": 3, "nhwc": 3}[order or "NCHW"]
    return axis + rank if axis < 0 else axis


def ref_concat(xs, axis, add_axis=False):
    if add_axis:
        return np.stack(xs, axis), np.ones(len(xs), np.int32)
    return np.concatenate(xs, axis), np.array([x.shape[axis] for x in xs], np.int32)


def ref_split(x, sizes, axis, add_axis=False):
    if add_axis:
        return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]
    bounds = np.cumsum([0] + list(sizes))
    return [np.take(x, np.arange(bounds[i], bounds[i + 1]), axis=axis) for i in range(len(sizes))]


def random_tensor(r, rank):
    # every dim in [4, 5]: sizes 0 and 1 are covered by their own tests
    return r.standard_normal(tuple(int(d) for d in r.integers(4, 6, size=rank)))


def random_cuts(r, C, k):
    points = np.sort(r.integers(0, C + 1, size=k - 1))
    return list(np.diff(np.concatenate([[0], points, [C]])).astype(int))


def assert_np(actual, expected):
    actual = actual.detach().cpu().numpy()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, expected)


# ------------------------------------------------------------------------- worked examples


def test_spec_examples():
    y, info = C2.concat([torch.tensor([[1, 2], [3, 4]]), torch.tensor([[5, 6]])], axis=0)
    assert y.tolist() == [[1, 2], [3, 4], [5, 6]] and info.tolist() == [2, 1]
    assert info.dtype == torch.int32 and info.device.type == "cpu"
    y, info = C2.concat([torch.ones(2, 3), torch.ones(2, 1)])
    assert y.shape == (2, 4) and info.tolist() == [3, 1]
    y, info = C2.concat([torch.ones(2, 3), torch.ones(2, 3)], axis=1, add_axis=True)
    assert y.shape == (2, 2, 3) and info.tolist() == [1, 1]
    outs = C2.split(torch.tensor([2, 2, 6, 6, 6, 0, 5, 7, 4]), split=[3, 2, 4], axis=0)
    assert [o.tolist() for o in outs] == [[2, 2, 6], [6, 6], [0, 5, 7, 4]]
    x = torch.arange(6.)
    outs = C2.split_by_lengths(x, torch.tensor([1, 2, 1, 2], dtype=torch.int32), 2, axis=0)
    assert [o.tolist() for o in outs] == [[0, 1, 2], [3, 4, 5]]
    x = torch.arange(12.)
    outs = C2.split_by_lengths(x, torch.tensor([1, 2, 1, 2], dtype=torch.int32), 2, axis=0, use_scaling_lengths=True)
    assert [o.tolist() for o in outs] == [list(range(6)), list(range(6, 12))]


# ------------------------------------------------------------------------- concat


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("name", ["concat", "depth_concat"])
def test_concat_random(seed, name):
    r = rng(seed)
    rank = int(r.integers(1, 5))
    x = random_tensor(r, rank)
    axis = int(r.integers(-rank, rank))
    a = ref_axis(axis, None, rank)
    sizes = random_cuts(r, x.shape[a], int(r.integers(1, 6)))  # may repeat: empty pieces
    pieces = ref_split(x, sizes, a)
    y, info = getattr(C2, name)([t(p) for p in pieces], axis=axis)
    ey, ei = ref_concat(pieces, a)
    assert_np(y, ey)
    assert_np(info, ei)
    # gradient op against its NumPy adjoint (the slices)
    g = r.standard_normal(ey.shape)
    for got, exp in zip(C2.concat_gradient(t(g), info, axis=axis), ref_split(g, sizes, a)):
        assert_np(got, exp)



@pytest.mark.parametrize("threads", [1, 2])
def test_concat_split_many_short_pieces(threads):
    # Many rows of short pieces (1 byte to a few KiB, and one over the 256 KiB chunk), enough
    # (row, piece) items that the threads' shares start and end mid-row and mid-tile; runs of
    # equal widths next to single ones.
    r = np.random.default_rng(5)
    with intra_op_threads(threads):
        for dtype, rows, widths in [(torch.uint8, 3001, [1, 3, 64, 7, 300]),
                                    (torch.float32, 517, [64] + [16] * 20),
                                    (torch.float64, 40, [1, 2, 3, 5, 700, 9]),
                                    (torch.float32, 3, [70000, 5, 1]),
                                    # every copy width from 0 to 300 bytes, with output that fits in
                                    # the cache and output that does not (two loop orders)
                                    (torch.uint8, 9, list(range(301))),
                                    (torch.uint8, 40, list(range(301))[::-1]),
                                    (torch.int16, 9000, [1, 2, 3, 5, 8, 8, 9, 17, 33, 0, 65, 65, 129, 128]),
                                    # narrow rows, output over 1 MiB: tiles of several rows
                                    (torch.uint8, 300001, [1, 2, 3]),
                                    (torch.float32, 262147, [1, 1]),
                                    # widths that change from piece to piece (copied with masked
                                    # moves where the CPU has AVX-512BW)
                                    (torch.uint8, 700, [0] + [1 + (37 * i) % 300 for i in range(40)]),
                                    (torch.float32, 300, [1 + (7 * i) % 64 for i in range(64)])]:
            xs = [torch.from_numpy(r.integers(0, 100, size=(rows, w))).to(dtype) for w in widths]
            out, _ = C2.concat(xs, 1)
            assert torch.equal(out, torch.cat(xs, 1))
            pieces = C2.split(out, split=widths, axis=1)
            assert all(torch.equal(a, b) for a, b in zip(pieces, xs))

@pytest.mark.parametrize("seed", range(8))
def test_concat_add_axis_random(seed):
    r = rng(seed)
    rank = int(r.integers(1, 5))
    x = random_tensor(r, rank)
    axis = int(r.integers(-rank, rank))
    a = ref_axis(axis, None, rank)
    pieces = [np.take(x, i, axis=a) for i in range(x.shape[a])]  # rank - 1 each
    y, info = C2.concat([t(p) for p in pieces], axis=axis if axis >= 0 else a - rank, add_axis=True)
    ey, ei = ref_concat(pieces, a, True)
    assert_np(y, ey)
    assert_np(info, ei)


@pytest.mark.parametrize("order,axis", [(None, 1), ("NCHW", 1), ("nchw", 1), ("NHWC", 3), ("nhwc", 3)])
def test_concat_order_default_axis(order, axis):
    xs = [torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)]
    y, info = C2.concat(xs, order=order)
    torch.testing.assert_close(y, torch.cat(xs, axis), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.float16, torch.int8, torch.float64])
def test_concat_split_any_dtype(dtype):
    x = (torch.arange(60) % 5).reshape(3, 4, 5).to(dtype)
    y, _ = C2.concat([x, x[:, :1]])
    assert torch.equal(y, torch.cat([x, x[:, :1]], 1))
    outs = C2.split(x, split=[1, 3])
    assert all(torch.equal(a, b) for a, b in zip(outs, torch.split(x, [1, 3], 1)))


def test_concat_noncontiguous_and_fresh_outputs():
    a, b = torch.randn(4, 3), torch.randn(4, 2)
    y, _ = C2.concat([noncontiguous(a), noncontiguous(b)])
    torch.testing.assert_close(y, torch.cat([a, b], 1), rtol=0, atol=0)
    y, _ = C2.concat([a])  # n = 1 is a copy, never an alias
    assert torch.equal(y, a) and y.data_ptr() != a.data_ptr()
    outs = C2.split(a, split=[3], axis=1)
    assert outs[0].data_ptr() != a.data_ptr()


def test_concat_errors():
    with pytest.raises(RuntimeError, match="You shouldn't specify both the dim to concat, and the order"):
        C2.concat([torch.ones(2, 2)], axis=1, order="NCHW")
    with pytest.raises(RuntimeError, match="All inputs must have the same type, expected: Float but got: Double for input: 1"):
        C2.concat([torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64)])
    with pytest.raises(RuntimeError, match=r"Expect dimension = 2 got 3 at axis = 0 for input: 1\. .*along the axis = 1; inputs\[0\] has shape \[2, 2\], inputs\[1\] has shape \[3, 2\]\."):
        C2.concat([torch.ones(2, 2), torch.ones(3, 2)])
    with pytest.raises(RuntimeError, match="Expect dimension"):
        C2.concat([torch.ones(2, 2), torch.ones(2, 3)], axis=1, add_axis=True)
    with pytest.raises(RuntimeError, match="rank of input 0"):
        C2.concat([torch.ones(2, 2), torch.ones(2, 2, 1)])
    with pytest.raises(RuntimeError, match="Axis not in input ndim range"):
        C2.concat([torch.ones(2, 2)], axis=2)
    with pytest.raises(RuntimeError, match="Axis not in input ndim range"):
        C2.concat([torch.ones(2)])  # default axis 1 on rank 1
    with pytest.raises(RuntimeError, match="Unsupported storage order: CHWN"):
        C2.concat([torch.ones(2, 2)], order="CHWN")
    with pytest.raises(RuntimeError, match="add_axis=True needs an explicit axis"):
        C2.concat([torch.ones(2, 2)], add_axis=True)
    with pytest.raises(RuntimeError, match="at least one input"):
        C2.concat([])


# ------------------------------------------------------------------------- split


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("source", ["arg", "tensor32", "tensor64", "equal"])
@pytest.mark.parametrize("name", ["split", "depth_split"])
def test_split_random(seed, source, name):
    r = rng(seed)
    rank = int(r.integers(1, 5))
    x = random_tensor(r, rank)
    axis = int(r.integers(-rank, rank))
    a = ref_axis(axis, None, rank)
    C = x.shape[a]
    k = int(r.integers(1, 6))
    kwargs = dict(axis=axis)
    if source == "equal":
        k = [d for d in range(1, C + 1) if C % d == 0][seed % 2]
        sizes = [C // k] * k
        kwargs["num_outputs"] = k
    else:
        sizes = random_cuts(r, C, k)
        if source == "arg":
            kwargs["split"] = sizes
        else:
            kwargs["split_tensor"] = torch.tensor(sizes, dtype=torch.int32 if source == "tensor32" else torch.int64,
                                                  device="cpu")  # a host tensor on every device, as in Caffe2
    outs = getattr(C2, name)(t(x), **kwargs)
    expected = ref_split(x, sizes, a)
    assert len(outs) == len(expected)
    for got, exp in zip(outs, expected):
        assert_np(got, exp)
    # split_gradient against its adjoint (the concatenation), missing gradients as zeros
    grads = [r.standard_normal(e.shape) for e in expected]
    missing = int(r.integers(0, len(grads))) if len(grads) > 1 else -1
    got = C2.split_gradient([None if i == missing else t(g) for i, g in enumerate(grads)], sizes, a)
    assert_np(got, np.concatenate([np.zeros_like(g) if i == missing else g for i, g in enumerate(grads)], a))


def test_split_add_axis_and_order():
    x = torch.randn(2, 3, 4)
    outs = C2.split(x, axis=1, add_axis=True)
    assert len(outs) == 3 and all(torch.equal(o, x[:, i]) for i, o in enumerate(outs))
    outs = C2.split(x, split=[1, 1, 1], axis=1, add_axis=True)
    assert all(torch.equal(o, x[:, i]) for i, o in enumerate(outs))
    g = C2.split_gradient([torch.ones(2, 4), None, torch.ones(2, 4)], [1, 1, 1], 1, True)
    assert g.shape == (2, 3, 4) and g[:, 1].abs().sum() == 0 and g[:, 0].sum() == 8
    x = torch.randn(2, 6, 3, 4)
    outs = C2.split(x, num_outputs=3)  # default axis 1 (from NCHW)
    assert [o.shape[1] for o in outs] == [2, 2, 2]
    outs = C2.split(x, num_outputs=2, order="NHWC")
    assert [o.shape for o in outs] == [(2, 6, 3, 2)] * 2
    outs = C2.split(torch.zeros(3, 0), num_outputs=3)  # C = 0, equal split: all empty
    assert [o.shape for o in outs] == [(3, 0)] * 3


def test_split_errors():
    x = torch.randn(2, 6)
    with pytest.raises(RuntimeError, match="You shouldn't specify both the dim to split"):
        C2.split(x, split=[6], axis=1, order="NCHW")
    with pytest.raises(RuntimeError, match="If you set split with an input blob, do not pass in split in the argument"):
        C2.split(x, torch.tensor([6], dtype=torch.int32, device="cpu"), [6])
    with pytest.raises(RuntimeError, match="number of input channels should be divisible by the output size"):
        C2.split(x, num_outputs=4)
    with pytest.raises(RuntimeError, match="needs num_outputs > 0"):
        C2.split(x)
    with pytest.raises(RuntimeError, match="The number of splits specified should be equal to the number of outputs"):
        C2.split(x, split=[3, 3], num_outputs=3)
    with pytest.raises(RuntimeError, match="Sum of split dimensions do not match: should be 6"):
        C2.split(x, split=[3, 2])
    with pytest.raises(RuntimeError, match=r"split\[1\] = -1 is negative"):
        C2.split(x, split=[7, -1])
    with pytest.raises(RuntimeError, match="Sum of split dimensions do not match"):
        C2.split(x, split=[1, 1], axis=1, add_axis=True)
    with pytest.raises(RuntimeError, match="split_tensor must be int32 or int64"):
        C2.split(x, torch.tensor([6.0]))
    with pytest.raises(RuntimeError, match="Axis not in input ndim range"):
        C2.split(torch.randn(6), split=[6])  # default axis 1 on rank 1
    with pytest.raises(RuntimeError, match="needs at least one defined output gradient"):
        C2.split_gradient([None, None], [1, 2], 0)
    with pytest.raises(RuntimeError, match="2 gradients for 3 split sizes"):
        C2.split_gradient([torch.ones(1), None], [1, 2, 3], 0)


# ------------------------------------------------------------------------- split_by_lengths


def ref_split_by_lengths(x, lengths, k, axis, scaling=False):
    S = int(np.sum(lengths))
    mult = (x.shape[axis] // S if S else 1) if scaling else 1
    g = len(lengths) // k
    sizes = [mult * int(np.sum(lengths[i * g:(i + 1) * g])) for i in range(k)]
    return sizes, ref_split(x, sizes, axis)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ltype", INDEX_DTYPES)
def test_split_by_lengths_random(seed, ltype):
    r = rng(seed)
    m = int(r.integers(0, 12))
    lengths = r.integers(0 if seed % 2 else 1, 12, size=m)
    k = next((d for d in [2, 3, 5, 7, 9, 11] if m % d == 0), max(m, 1))
    scaling = seed % 3 == 0 and lengths.sum() > 0
    mult = 2 if scaling else 1
    x = r.standard_normal((mult * int(lengths.sum()),) + tuple(int(d) for d in r.integers(1, 4, size=int(r.integers(0, 3)))))
    outs = C2.split_by_lengths(t(x), t(lengths, ltype), k, axis=0, use_scaling_lengths=scaling)
    sizes, expected = ref_split_by_lengths(x, lengths, k, 0, scaling)
    assert len(outs) == k
    for got, exp in zip(outs, expected):
        assert_np(got, exp)


def test_split_by_lengths_default_axis_and_errors():
    x = torch.randn(2, 6, 3)
    outs = C2.split_by_lengths(x, torch.tensor([2, 4], dtype=torch.int32), 2)  # axis 1 by default
    assert [o.shape for o in outs] == [(2, 2, 3), (2, 4, 3)]
    with pytest.raises(RuntimeError, match=r"len\(lengths\) = 3 must be divisible by num_outputs = 2"):
        C2.split_by_lengths(x, torch.tensor([1, 2, 3]), 2)
    with pytest.raises(RuntimeError, match=r"sum\(lengths\) = 5 must equal input.shape\[1\] = 6"):
        C2.split_by_lengths(x, torch.tensor([2, 3]), 2)
    with pytest.raises(RuntimeError, match=r"with use_scaling_lengths, input.shape\[1\] = 6 must be divisible by sum\(lengths\) = 4"):
        C2.split_by_lengths(x, torch.tensor([2, 2]), 2, use_scaling_lengths=True)
    with pytest.raises(RuntimeError, match="is negative"):
        C2.split_by_lengths(x, torch.tensor([7, -1]), 2)
    with pytest.raises(RuntimeError, match="lengths sum to 0"):
        C2.split_by_lengths(x, torch.tensor([0, 0]), 2, use_scaling_lengths=True)
    with pytest.raises(RuntimeError, match="int32 or int64"):
        C2.split_by_lengths(x, torch.tensor([2., 4.]), 2)
    outs = C2.split_by_lengths(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int32), 2, axis=0)
    assert [o.shape for o in outs] == [(0, 2), (0, 2)]


# ------------------------------------------------------------------------- autograd


def test_gradcheck():
    dd = dict(dtype=torch.float64, requires_grad=True)
    a, b, c = torch.randn(2, 3, **dd), torch.randn(2, 0, **dd), torch.randn(2, 2, **dd)
    assert torch.autograd.gradcheck(lambda a, b, c: C2.concat([a, b, c])[0], (a, b, c))
    assert torch.autograd.gradcheck(lambda a, c: C2.depth_concat([a, a, c], axis=-1)[0], (a, c))
    assert torch.autograd.gradcheck(lambda a: C2.concat([a, a], axis=2, add_axis=True)[0], (a,))
    x = torch.randn(3, 5, **dd)
    assert torch.autograd.gradcheck(lambda x: C2.split(x, split=[2, 0, 3]), (x,))
    assert torch.autograd.gradcheck(lambda x: C2.split(x, split=[2, 0, 3])[2], (x,))  # others missing -> zeros
    assert torch.autograd.gradcheck(lambda x: C2.depth_split(x, torch.tensor([1, 2], dtype=torch.int32, device="cpu"), axis=0), (x,))
    assert torch.autograd.gradcheck(lambda x: C2.split(x, axis=0, add_axis=True), (x,))
    assert torch.autograd.gradcheck(lambda x: C2.split_by_lengths(x, torch.tensor([1, 1, 3]), 3), (x,))
    assert torch.autograd.gradcheck(lambda x: C2.split_by_lengths(x, torch.tensor([1, 1, 3]), 3)[0], (x,))
    g = torch.randn(3, 2, **dd)
    assert torch.autograd.gradcheck(lambda g: C2.split_gradient([g, None], [2, 3], 1), (g,))
    s = torch.randn(5, 2, **dd)
    info = torch.tensor([3, 2], dtype=torch.int32, device="cpu")  # split_info lives on the host
    assert torch.autograd.gradcheck(lambda s: C2.concat_gradient(s, info, axis=0), (s,))


# ------------------------------------------------------------------------- opcheck, TorchScript, compile


def opcheck_cases():
    """The family's sample table (tests/samples/concat_split.py); tests/test_cuda.py uses it too."""
    return samples.opcheck_cases("concat_split")


@pytest.mark.parametrize("case", opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case, device):
    name, args = case
    # the data (first argument) goes to the device; split_info stays on the host
    opcheck(name, (on_device(args[0], device),) + args[1:])


def test_opcheck_data_dependent():
    # Fake kernels with unbacked sizes; the AOT-dispatch tests need static outputs.
    for name, args in [("split", (torch.randn(3, 5), torch.tensor([2, 3], dtype=torch.int32, device="cpu"))),
                       ("split_by_lengths", (torch.randn(3, 5), torch.tensor([2, 1, 2]), 1, 1)),
                       ("split_by_lengths", (torch.randn(6, 5), torch.tensor([1, 2]), 2, 0, None, True))]:
        torch.library.opcheck(getattr(C2, name).default, args,
                              test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


class ConcatSplitNet(torch.nn.Module):
    def forward(self, a, b, lengths):
        y, info = ops.concat([a, b], axis=1)
        p = ops.split(y, split=[2, 3], axis=1)
        q = ops.split_by_lengths(y, lengths, 2, axis=1)
        r = ops.split(y, info)
        return p[0] * 2.0, p[1], q[0], q[1], r[1], info


def net_inputs():
    return [torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64), torch.tensor([1, 1, 2, 1], dtype=torch.int32)]


@pytest.mark.slow
def test_torchscript_roundtrip_fresh_process():
    assert_script_roundtrip(ConcatSplitNet(), net_inputs())


def test_torch_compile_static_sizes():
    def f(a, b):
        y, _ = C2.concat([a, b], axis=1)
        p = C2.split(y, split=[1, 4], axis=1)
        return p[0] * 3, p[1]
    assert_compile_matches(f, *net_inputs()[:2])


def test_torch_compile_data_dependent_split():
    torch._dynamo.config.capture_dynamic_output_shape_ops = True
    torch._dynamo.config.capture_scalar_outputs = True
    a, b, lengths = net_inputs()
    assert_compile_matches(ConcatSplitNet(), a, b, lengths)
    # different lengths through the same compiled graph
    f = torch.compile(lambda x, l: [p.sum(1) for p in C2.split_by_lengths(x, l, 2, axis=1)], fullgraph=True)
    for l in ([1, 1, 2, 1], [2, 0, 0, 3]):
        lt = torch.tensor(l, dtype=torch.int32)
        for got, exp in zip(f(torch.randn(3, 5), lt), [p.sum(1) for p in C2.split_by_lengths(torch.randn(3, 5), lt, 2, axis=1)]):
            assert got.shape == exp.shape


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("meta", [False, True])
@pytest.mark.parametrize("name", ["concat", "depth_concat", "split", "depth_split"])
def test_shared_kernel_names_the_op_called(name, meta, requires_grad, device):
    # concat and depth_concat (split and depth_split) share one kernel per dispatch key, which
    # the registration hands the name it was registered under: an error names the op called.
    device = "meta" if meta else device
    x = torch.randn(2, 3, device=device, requires_grad=requires_grad)
    op = getattr(torch.ops.caffe2ops, name)
    with pytest.raises(RuntimeError, match=rf"^caffe2ops::{name}: "):
        if name.endswith("concat"):
            op([x, torch.randn(3, 3, device=device)], 1)  # dim 0 differs
        else:
            op(x, None, [1, 1], 1)  # the sizes add up to 2, not 3
    if name.endswith("concat"):  # no tensor to dispatch on: the composite fallback's error
        with pytest.raises(RuntimeError, match=rf"^caffe2ops::{name}: needs at least one input"):
            op([])


@pytest.mark.parametrize("layout", ["transposed", "expanded", "strided"])
@pytest.mark.parametrize("name, add_axis", [("split", False), ("split", True), ("split_by_lengths", False)])
def test_split_strided_input(name, add_axis, layout, device):
    # Non-contiguous inputs are read in place piece by piece (concat's backward gets expanded
    # gradients from sum()); the pieces must equal those of the contiguous input, and be fresh,
    # contiguous tensors.
    base = torch.randn(3, 4, 5, device=device)
    x = {"transposed": noncontiguous(base), "expanded": torch.randn(1, 4, 1, device=device).expand(3, 4, 5),
         "strided": torch.randn(3, 8, 5, device=device)[:, ::2]}[layout]
    assert not x.is_contiguous()
    if name == "split":
        kwargs = dict(split=[1, 1, 1, 1] if add_axis else [1, 3], axis=1, add_axis=add_axis)
        got, expected = C2.split(x, **kwargs), C2.split(x.contiguous(), **kwargs)
    else:
        lengths = torch.tensor([1, 3], dtype=torch.int32, device=device)
        got, expected = (C2.split_by_lengths(x, lengths, 2, axis=1),
                         C2.split_by_lengths(x.contiguous(), lengths, 2, axis=1))
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        assert g.is_contiguous() and torch.equal(g, e)
    np_pieces = np.split(x.cpu().numpy(), np.cumsum([1, 1, 1] if add_axis else [1]), axis=1)
    for g, e in zip(got, np_pieces):
        assert_np(g, e.squeeze(1) if add_axis else e)


@pytest.mark.parametrize("add_axis", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat_mixed_layouts(axis, add_axis, device):
    # Contiguous inputs are block-copied, the others read in place by a strided copy: a mix of
    # both, in every position, must give NumPy's concatenation.
    r = rng(axis)
    base = [r.standard_normal((3, 2, 4)) for _ in range(4)]
    if not add_axis:
        base[1] = r.standard_normal(tuple(5 if d == axis else s for d, s in enumerate((3, 2, 4))))
    base[2] = np.broadcast_to(base[2][:1], base[2].shape)
    xs = [t(base[0]), noncontiguous(t(base[1])), t(base[2][:1]).expand(3, 2, 4), t(base[3])]
    assert [x.is_contiguous() for x in xs] == [True, False, False, True]
    y, info = C2.concat(xs, axis=axis, add_axis=add_axis)
    expected = np.stack(base, axis) if add_axis else np.concatenate(base, axis)
    assert_np(y, expected)
    assert y.is_contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int8, torch.bool,
                                   torch.complex128])
def test_concat_and_split_transposed_and_channels_last_inputs(dtype):
    # Inputs whose elements run down the output's rows (a transposed matrix; a channels-last
    # input concatenated along its channels) are copied in register-transposed tiles of 8x8
    # (4-byte), 4x4 (8-byte) or one by one (other sizes): every tile edge, bit for bit
    # torch.cat, mixed with contiguous inputs, at one and two threads.
    r = rng(3)

    def make(shape):
        return (torch.from_numpy(r.standard_normal(shape)) * 100).to(dtype)

    cases = []
    for rows, widths in [(1, [3, 1]), (2, [1, 2]), (8, [8, 8]), (13, [1, 7, 9, 31]), (37, [16, 33, 2]),
                         (300, [70, 5, 129])]:
        cases.append(([make((w, rows)).t() for w in widths] + [make((rows, 3))], 1))
    for n, channels, hw in [(2, [3, 6], (4, 5)), (3, [1, 9, 17], (3, 3)), (1, [8, 16], (1, 1)), (2, [33], (7, 9)),
                            (1, [16, 9], (5, 3))]:
        xs = [make((n, c) + hw).contiguous(memory_format=torch.channels_last) for c in channels]
        cases.append((xs + [make((n, 2) + hw)], 1))
    # Column-major matrices along axis 0 (one row of the copy: each is one transposed block),
    # and a column broadcast along the rows (source column stride 0).
    cases.append(([make((9, h)).t() for h in (17, 3, 8)] + [make((4, 9))], 0))
    cases.append(([make((16, 1)).expand(16, 24), make((16, 5))], 1))
    for xs, axis in cases:
        for threads in (1, 2):
            with intra_op_threads(threads):
                y, info = C2.concat(xs, axis=axis)
            expected = torch.cat(xs, axis)
            assert y.is_contiguous() and y.dtype == dtype and torch.equal(y, expected), ([x.shape for x in xs], threads)
            assert info.tolist() == [x.shape[axis] for x in xs]
        # The same layouts split back (the transposed ones through a narrow of the whole).
        if all(x.is_contiguous() for x in xs):
            continue
        whole = torch.cat([x for x in xs if not x.is_contiguous()], axis)
        if whole.is_contiguous():
            whole = whole.t().contiguous().t() if whole.dim() == 2 else whole.contiguous(memory_format=torch.channels_last)
        sizes = [x.shape[axis] for x in xs if not x.is_contiguous()]
        for threads in (1, 2):
            with intra_op_threads(threads):
                pieces = C2.split(whole, split=sizes, axis=axis)
            for got, want in zip(pieces, torch.split(whole, sizes, axis), strict=True):
                assert got.is_contiguous() and torch.equal(got, want), (whole.shape, whole.stride(), sizes)
    # A transposed 3-D input matches neither form and takes the strided copy.
    x = make((4, 3, 2)).permute(2, 1, 0)
    assert torch.equal(C2.concat([x, x], axis=1)[0], torch.cat([x, x], 1))
    assert all(torch.equal(a, b) for a, b in zip(C2.split(x, split=[1, 2], axis=1), torch.split(x, [1, 2], 1)))
