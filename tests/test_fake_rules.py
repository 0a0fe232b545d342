"""The Python fake kernels of split / depth_split / split_by_lengths (torch_caffe2ops/_fake.py)
restate the C++ rules. Both must reject the same inputs with the same message, or compile and
export would accept (or word differently) what eager refuses."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import torch_caffe2ops  # noqa: F401  (registers the ops)

C2 = torch.ops.caffe2ops
i32 = dict(dtype=torch.int32)

BAD = [
    ("split", lambda: (torch.randn(3, 4), None, [1, 2], 1)),
    ("split", lambda: (torch.randn(3, 4), None, [1, -1, 4], 1)),
    ("split", lambda: (torch.randn(3, 4), None, [2**62, 2**62, 2**62, 4], 1)),
    ("split", lambda: (torch.randn(3, 4), None, [2**63 - 1, 2**63 - 1, -1], 1)),
    ("split", lambda: (torch.randn(3, 4), None, [], 1, None, False, 3)),
    ("split", lambda: (torch.randn(3, 4), None, [], 1, None, False, 0)),
    ("split", lambda: (torch.randn(3, 4), None, [], 1, None, False, 2**20)),
    ("split", lambda: (torch.randn(3, 4), None, [2, 2], 1, "NCHW")),
    ("split", lambda: (torch.randn(3, 4), None, [2, 2], 5)),
    ("split", lambda: (torch.randn(3, 4), None, [2, 2], None, "NWHC")),
    ("split", lambda: (torch.tensor(1.0), None, [1], 0)),
    ("split", lambda: (torch.randn(3, 4), None, [1, 1], 0, None, True)),
    ("split", lambda: (torch.randn(3, 4), None, [1, 1, 1], 0, None, False, 2)),
    ("split", lambda: (torch.randn(3, 4), torch.tensor([1, 2], **i32), [1, 2], 0)),
    ("split", lambda: (torch.randn(3, 4), torch.tensor([1.0, 2.0]), [], 0)),
    ("split", lambda: (torch.randn(3, 4), torch.tensor([1, 2], **i32), [], 0, None, False, 3)),
    ("split", lambda: (torch.randn(3, 4), None, [2, 2], None, None, True)),
    ("depth_split", lambda: (torch.randn(3, 4), None, [1, 2], 1)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([1, 3]), 0, 1)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([1, 2, 1]), 2, 1)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([[1, 3]]), 1, 1)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([1.0, 3.0]), 1, 1)),
    ("split_by_lengths", lambda: (torch.tensor(2.0), torch.tensor([1]), 1, 0)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([1, 3]), 2**17, 1)),
    ("split_by_lengths", lambda: (torch.randn(3, 4), torch.tensor([1, 3]), 1, 1, "NCHW")),
]


def _error(fn):
    try:
        fn()
    except RuntimeError as e:
        return str(e).split("\n")[0]
    return None


@pytest.mark.parametrize("name,make", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_fake_and_real_reject_alike(name, make):
    op = getattr(C2, name)
    real = _error(lambda: op(*make()))
    assert real is not None and real.startswith(f"caffe2ops::{name}: "), real
    mode = FakeTensorMode()  # static shapes: the messages then carry the same numbers

    def fake_call():
        args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in make()]
        with mode:
            op(*args)

    assert _error(fake_call) == real


def test_python_module_is_declared():
    # The C++ library names torch_caffe2ops._fake as these ops' Python module.
    for name in ("split", "depth_split", "split_by_lengths"):
        assert torch._C._dispatch_pystub(f"caffe2ops::{name}", "") is not None, name
