"""Helpers shared by every family's tests: opcheck, TorchScript round trip in a fresh
process, torch.compile comparison, running a check from several threads at once, and small
random-input utilities."""
import contextlib
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest
import torch

import torch_caffe2ops  # noqa: F401  (registers the ops)

INDEX_DTYPES = [torch.int32, torch.int64]
FLOAT_DTYPES = [torch.float32, torch.float64]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def op(name):
    return getattr(torch.ops.caffe2ops, name).default


def rng(seed):
    return np.random.default_rng(seed)


def default_device():
    """Where factories allocate now: the device under test (tests/conftest.py)."""
    return torch.empty(0).device


def t(a, dtype=None):
    """numpy -> torch on the device under test, keeping the numpy dtype unless one is given."""
    x = torch.from_numpy(np.array(a, order="C", copy=True)).to(default_device())
    return x if dtype is None else x.to(dtype)


def on_device(x, device):
    """Tensors (also inside lists and tuples) moved to `device`, keeping requires_grad."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device).requires_grad_(x.requires_grad)
    if isinstance(x, (list, tuple)):
        return type(x)(on_device(v, device) for v in x)
    return x


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def opcheck(name, args, kwargs=None):
    """torch.library.opcheck with every test it has (schema, autograd registration,
    fake tensor, AOT dispatch static and dynamic)."""
    torch.library.opcheck(op(name), args, kwargs or {})


# The concurrency checks: how many Python threads run at once, and how many passes each makes
# (CONCURRENCY_ROUNDS in the environment, default 3).
THREADS = 8
ROUNDS = int(os.environ.get("CONCURRENCY_ROUNDS", "3"))


def in_threads(body, threads=THREADS):
    """Runs body(tid) in `threads` threads released together; returns what they raised, as
    (tid, repr) pairs."""
    errors = []
    barrier = threading.Barrier(threads)

    def worker(tid):
        try:
            barrier.wait()
            body(tid)
        except Exception as e:  # noqa: BLE001
            errors.append((tid, repr(e)))
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


@contextlib.contextmanager
def intra_op_threads(n):
    """Runs the block with torch.set_num_threads(n), restoring the count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def noncontiguous(x):
    """Same values, non-contiguous layout (a transposed copy transposed back)."""
    if x.dim() < 2:
        y = torch.empty(x.numel() * 2, dtype=x.dtype, device=x.device)[::2]
        y.copy_(x)
        return y
    y = x.transpose(0, -1).contiguous().transpose(0, -1)
    assert not y.is_contiguous() or x.numel() <= 1 or min(x.shape) <= 1
    return y


_FRESH = r"""
import sys, torch, torch_caffe2ops
module = torch.jit.load(sys.argv[1])
inputs = torch.load(sys.argv[2])
grad = sys.argv[4] == "1"
grad_idx = [i for i, x in enumerate(inputs) if grad and isinstance(x, torch.Tensor) and x.is_floating_point()]
for i in grad_idx:
    inputs[i] = inputs[i].detach().requires_grad_(True)
outs = module(*inputs)
outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
if grad:
    loss = sum((o.double() * torch.linspace(0.5, 1.5, o.numel(), dtype=torch.float64, device=o.device).reshape(o.shape)).sum()
               for o in outs if o.is_floating_point())
    loss.backward()
torch.save({"outs": [o.detach() for o in outs], "grads": [inputs[i].grad for i in grad_idx]}, sys.argv[3])
"""


def _outputs_and_grads(fn, inputs, grad=True):
    inputs = [x.detach().clone().requires_grad_(grad) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
              for x in inputs]
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    if not grad:
        return [o.detach() for o in outs], []
    loss = sum((o.double() * torch.linspace(0.5, 1.5, o.numel(), dtype=torch.float64, device=o.device).reshape(o.shape)).sum()
               for o in outs if o.is_floating_point())
    loss.backward()
    grads = [x.grad for x in inputs if isinstance(x, torch.Tensor) and x.is_floating_point()]
    return [o.detach() for o in outs], grads


def assert_script_roundtrip(module, inputs, grad=True):
    """Script `module`, save it, load it in a fresh interpreter that imports only torch and
    torch_caffe2ops, and check that outputs and input gradients equal the eager ones."""
    scripted = torch.jit.script(module)
    eager_outs, eager_grads = _outputs_and_grads(module, inputs, grad)
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, n) for n in ("m.pt", "in.pt", "out.pt")]
        scripted.save(paths[0])
        torch.save(list(inputs), paths[1])
        # the fresh interpreter imports the torch_caffe2ops this process imported (the checkout's
        # editable build, the installed wheel or the ASAN build), not necessarily the checkout
        pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(torch_caffe2ops.__file__)))
        env = dict(os.environ, PYTHONPATH=pkg_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-c", _FRESH, *paths, "1" if grad else "0"], cwd=d, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        result = torch.load(paths[2])
    assert len(result["outs"]) == len(eager_outs)
    for a, b in zip(result["outs"], eager_outs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(result["grads"]) == len(eager_grads)
    for a, b in zip(result["grads"], eager_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def assert_compile_matches(fn, *args, dynamic=True, backend="aot_eager", grad=True):
    """torch.compile(fullgraph=True) equals eager, forward and (where floating) backward."""
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend=backend)
    eager_outs, eager_grads = _outputs_and_grads(fn, args, grad)
    comp_outs, comp_grads = _outputs_and_grads(compiled, args, grad)
    for a, b in zip(comp_outs, eager_outs):
        torch.testing.assert_close(a, b)
    for a, b in zip(comp_grads, eager_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


# --- building Caffe2 NetDefs (tests of torch_caffe2ops.caffe2) -----------------------------


def add_op(net, op_type, inputs, outputs, **args):
    """Append an OperatorDef; Python values go to Caffe2's Argument fields the way
    caffe2.python.utils.MakeArgument puts them (float -> f, int/bool -> i, str -> s, lists)."""
    op = net.op.add(type=op_type, input=list(inputs), output=list(outputs))
    for name, value in args.items():
        a = op.arg.add(name=name)
        if isinstance(value, bool) or isinstance(value, (int, np.integer)):
            a.i = int(value)
        elif isinstance(value, float):
            a.f = value
        elif isinstance(value, str):
            a.s = value.encode()
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, float) for v in value):
                a.floats.extend(float(v) for v in value)
            elif any(isinstance(v, str) for v in value):
                a.strings.extend(v.encode() for v in value)
            else:
                a.ints.extend(int(v) for v in value)
        else:
            raise TypeError(value)
    return op


def fill(init, name, value):
    """The GivenTensor*Fill op a Caffe2 exporter writes for a blob of this dtype."""
    value = np.asarray(value)
    op_type = {
        np.dtype(np.float32): "GivenTensorFill",
        np.dtype(np.float64): "GivenTensorDoubleFill",
        np.dtype(np.int32): "GivenTensorIntFill",
        np.dtype(np.int64): "GivenTensorInt64Fill",
        np.dtype(np.bool_): "GivenTensorBoolFill",
    }[value.dtype]
    flat = value.reshape(-1).tolist()
    flat = [float(v) for v in flat] if value.dtype.kind == "f" else [int(v) for v in flat]
    op = add_op(init, op_type, [], [name], shape=list(value.shape))
    a = op.arg.add(name="values")
    (a.floats if value.dtype.kind == "f" else a.ints).extend(flat)


def single_op_net(op_type, inputs, outputs, **args):
    """A NetDef of one operator whose inputs are the net's inputs and whose outputs its outputs."""
    from torch_caffe2ops import caffe2 as c2

    net = c2.NetDef(name="single")
    add_op(net, op_type, list(inputs), list(outputs), **args)
    net.external_input.extend(list(inputs))
    net.external_output.extend(list(outputs))
    return net


def run_single_op_numpy(op_type, inputs, outputs, **args):
    """Import a one-operator net fed with ``inputs`` (name -> array), run it, return NumPy outputs."""
    from torch_caffe2ops import caffe2 as c2

    model = c2.load_net(single_op_net(op_type, list(inputs), outputs, **args))
    out = model(*[torch.from_numpy(np.array(v, copy=True)) for v in inputs.values()])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def assert_exact(actual, expected, dtype=None):
    """Same shape and values (and dtype, when given), bit for bit."""
    expected = np.asarray(expected)
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, expected)
