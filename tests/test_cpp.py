"""The libtorch path: build the library with CMake, install it, build examples/cpp against the
exported target, and check that the C++ program's forward and backward equal Python's."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from utils import ROOT

sys.path.insert(0, os.path.join(ROOT, "examples", "cpp"))
import model as cpp_model  # noqa: E402

# Prefer the tools installed into this interpreter's environment (scripts/setup.sh puts cmake
# and ninja there), then the system's.
_BIN = os.path.dirname(sys.executable)
CMAKE = shutil.which("cmake", path=_BIN) or shutil.which("cmake")
NINJA = shutil.which("ninja", path=_BIN) or shutil.which("ninja")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CMAKE is None, reason="cmake is not installed")]

BUILD = os.path.join(ROOT, "build", "cmake")


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _cmake_build(src, build, prefix_path, extra=()):
    gen = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={NINJA}"] if NINJA else []
    _run([CMAKE, "-S", src, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_PREFIX_PATH={';'.join(prefix_path)}", *extra])
    _run([CMAKE, "--build", build, "--parallel", str(os.cpu_count() or 2)])


@pytest.fixture(scope="module")
def run_model_binary():
    prefix = os.path.join(BUILD, "install")
    _cmake_build(ROOT, os.path.join(BUILD, "lib"), [torch.utils.cmake_prefix_path])
    _run([CMAKE, "--install", os.path.join(BUILD, "lib"), "--prefix", prefix])
    _cmake_build(os.path.join(ROOT, "examples", "cpp"), os.path.join(BUILD, "example"),
                 [prefix, torch.utils.cmake_prefix_path])
    return os.path.join(BUILD, "example", "run_model")


def _parse(text):
    out = {}
    for line in text.strip().splitlines():
        head, values = line.split(" :")
        name, *shape = head.split()
        vals = [float(v) for v in values.split()]
        out[name] = torch.tensor(vals, dtype=torch.float64).reshape([int(s) for s in shape])
    return out


def test_cpp_example_matches_python(run_model_binary, tmp_path):
    path = str(tmp_path / "model.pt")
    torch.jit.script(cpp_model.Model()).save(path)
    _assert_matches_python(_parse(_run([run_model_binary, path])), cpp_model.Model())


def _assert_matches_python(got, model):
    """The C++ program's outputs and input gradients (run_model.cpp's inputs and loss) equal
    the same computation in Python."""
    X, indices, A, B = cpp_model.inputs()
    X.requires_grad_(True), A.requires_grad_(True), B.requires_grad_(True)
    outs = model(X, indices, A, B)
    loss = sum((o * torch.linspace(0.5, 1.5, o.numel(), dtype=torch.float64).reshape(o.shape)).sum() for o in outs)
    loss.backward()
    for i, o in enumerate(outs):
        torch.testing.assert_close(got[f"output{i}"], o.detach())
    for name, x in (("grad_X", X), ("grad_A", A), ("grad_B", B)):
        torch.testing.assert_close(got[name], x.grad)


NET = """
name: "cpp_net"
op { input: "X" input: "indices" output: "P" type: "BatchPermutation" }
op { input: "P" output: "R" type: "Relu" }
op { input: "R" input: "w" output: "Rw" type: "Mul" arg { name: "broadcast" i: 1 } }
op { input: "A" input: "B" output: "M" type: "BatchMatMul" arg { name: "trans_b" i: 1 } }
op { input: "M" output: "S" type: "Sigmoid" }
external_input: "X" external_input: "indices" external_input: "A" external_input: "B" external_input: "w"
external_output: "Rw" external_output: "S"
"""
INIT = """
op { output: "w" type: "GivenTensorDoubleFill"
     arg { name: "shape" ints: 2 } arg { name: "values" floats: 0.5 floats: -1.5 } }
"""


def test_cpp_example_runs_an_imported_caffe2_net(run_model_binary, tmp_path):
    """A NetDef imported with torch_caffe2ops.caffe2, scripted, saved, and run from libtorch."""
    pytest.importorskip("google.protobuf")
    from typing import List

    from torch_caffe2ops.caffe2 import load_net

    class ListOut(torch.nn.Module):  # the C++ example reads a list of outputs
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, X, indices, A, B) -> List[torch.Tensor]:
            y, s = self.net(X, indices, A, B)
            return [y, s]

    model = ListOut(load_net(NET, INIT))
    path = str(tmp_path / "imported.pt")
    torch.jit.script(model).save(path)
    _assert_matches_python(_parse(_run([run_model_binary, path])), model)
