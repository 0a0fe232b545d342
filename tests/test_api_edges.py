"""Friendly edges of the Python API: nn.Dropout's torch-style ``p=``, TypeErrors that name the
argument instead of the dispatcher's cast error, and the wrappers staying scriptable."""
import inspect
import re
import os
import subprocess
import sys
import tempfile

import pytest
import torch

import torch_caffe2ops
from torch_caffe2ops import nn, ops

WRAPPERS = [name for name, f in vars(ops).items()
            if inspect.isfunction(f) and not name.startswith("_") and f.__module__ == ops.__name__]


def registered_ops():
    return {s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("caffe2ops::")}


def test_every_op_has_a_wrapper():
    registered = registered_ops()
    assert len(registered) >= 30
    assert registered == set(WRAPPERS)


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_is_scriptable_and_documented(name):
    f = getattr(ops, name)
    torch.jit.script(f)
    doc = inspect.getdoc(f)
    assert doc and "Args:" in doc and "Returns:" in doc and "Raises:" in doc
    assert not re.search(r"\bspec\b|OPERATORS\.md|§", doc)


def test_dropout_p_alias():
    assert nn.Dropout(p=0.1).ratio == 0.1
    assert nn.Dropout(0.2).ratio == 0.2
    assert nn.Dropout(ratio=0.3).p == 0.3
    assert nn.Dropout().ratio == 0.5
    assert nn.Dropout(ratio=0.25, p=0.25).ratio == 0.25
    m = nn.Dropout(p=0.1)
    m.p = 0.4
    assert m.ratio == 0.4
    with pytest.raises(ValueError, match="not both"):
        nn.Dropout(ratio=0.2, p=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nn.Dropout(p=1.0)
    with pytest.raises(TypeError, match="must be a float"):
        nn.Dropout(p="0.1")
    # same draws as the positional form, and scriptable
    x = torch.randn(64)
    torch.manual_seed(0)
    a = nn.Dropout(p=0.3)(x)
    torch.manual_seed(0)
    b = nn.Dropout(0.3)(x)
    assert torch.equal(a, b)
    scripted = torch.jit.script(nn.Dropout(p=0.3))
    torch.manual_seed(0)
    assert torch.equal(scripted(x), a)


@pytest.mark.parametrize("call, message", [
    (lambda x: ops.split(x, split=2, axis=1), "ops.split: argument 'split' must be a list of ints or None, got int"),
    (lambda x: ops.concat(x), "ops.concat: argument 'inputs' must be a list of Tensors, got Tensor"),
    (lambda x: ops.concat([x, [1.0]]), "ops.concat: argument 'inputs' must be a list of Tensors, but it holds a list"),
    (lambda x: ops.batch_gather(x, [0, 1]), "ops.batch_gather: argument 'indices' must be a Tensor, got list"),
    (lambda x: ops.dropout(x, ratio="0.5"), "ops.dropout: argument 'ratio' must be a float, got str"),
    (lambda x: ops.dropout(x, generator=0), "ops.dropout: argument 'generator' must be a torch.Generator or None"),
    (lambda x: ops.batch_moments(x, order=1), "ops.batch_moments: argument 'order' must be a str, got int"),
    (lambda x: ops.concat([x, x], axis=1.0), "ops.concat: argument 'axis' must be an int or None, got float"),
    (lambda x: ops.batch_mat_mul(x, x.T, trans_a="no"), "ops.batch_mat_mul: argument 'trans_a' must be a bool, got str"),
    (lambda x: ops.sparse_normalize_(x, [0]), "ops.sparse_normalize_: argument 'indices' must be a Tensor, got list"),
    (lambda x: ops.split_by_lengths(x, torch.tensor([1, 2]), num_outputs=None),
     "ops.split_by_lengths: argument 'num_outputs' must be an int, got NoneType"),
    (lambda x: ops.margin_ranking_criterion(x, x, 1), "ops.margin_ranking_criterion: argument 'Y' must be a Tensor, got int"),
])
def test_type_errors_name_the_argument(call, message):
    with pytest.raises(TypeError) as info:
        call(torch.randn(2, 3))
    assert message in str(info.value)


def test_accepted_argument_spellings_still_work():
    import numpy as np
    x = torch.randn(2, 3)
    assert [p.shape[1] for p in ops.split(x, split=(1, 2), axis=1)] == [1, 2]
    assert [p.shape[1] for p in ops.split(x, split=[np.int64(1), 2], axis=1)] == [1, 2]
    assert ops.concat((x, x), axis=np.int64(0))[0].shape == (4, 3)
    assert torch.equal(ops.dropout(x, 0)[0], x)              # int for a float
    assert torch.equal(ops.dropout(x, np.float32(0.0))[0], x)
    assert ops.batch_gather(x, torch.tensor([[0], [1]]), 1).shape == (2, 1)   # Caffe2's 0/1 flags
    assert ops.split_gradient([None, torch.ones(2, 2)], [1, 2], 1).shape == (2, 3)


def test_wrappers_compile_without_graph_breaks():
    f = torch.compile(lambda a: ops.concat([a, a], axis=0)[0] * 2, fullgraph=True, backend="eager")
    assert f(torch.ones(2, 3)).shape == (4, 3)


def test_loading_torchscript_without_the_package_hint():
    """A TorchScript file that uses the ops needs `import torch_caffe2ops` before torch.jit.load;
    the docs' troubleshooting page quotes this exact error."""
    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return ops.dropout(x, 0.5, True)[0]

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.pt")
        torch.jit.script(Net()).save(path)
        code = f"import torch\ntorch.jit.load({path!r})\n"
        bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert bare.returncode != 0 and "Unknown builtin op: caffe2ops::dropout" in bare.stderr
        ok = subprocess.run([sys.executable, "-c", "import torch_caffe2ops\n" + code], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
    assert torch_caffe2ops.__version__
