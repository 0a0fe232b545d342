"""How the CPU kernels allocate their outputs: large fresh ones ask the kernel for 2 MiB pages
(MADV_HUGEPAGE) where it gives them on request, which TORCH_CAFFE2OPS_HUGE_PAGES=0 turns off;
the values are the same."""
import os
import subprocess
import sys

import pytest
import torch

import torch_caffe2ops

C2 = torch.ops.caffe2ops

# Prints whether the mapping holding the middle of a 16 MiB gather gradient has the "hg" flag
# (huge pages advised), and of a 64 KiB one ("None" where the kernel shows no VmFlags).
_PROBE = r"""
import torch, torch_caffe2ops

def advised(t):
    addr = t.data_ptr() + t.nbytes // 2
    inside = False
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith("VmFlags:"):
            return "hg" in line.split()[1:]
    return None

gradient = torch.ops.caffe2ops.batch_gather_gradient
big = gradient(torch.empty(64, 64, 1024), torch.arange(8), torch.ones(64, 8, 1024))
small = gradient(torch.empty(2, 8, 1024), torch.arange(8), torch.ones(2, 8, 1024))
print(advised(big), advised(small))
"""


def _probe(extra_env, cwd):
    # The fresh interpreter imports the torch_caffe2ops this process imported (checkout or
    # installed wheel), with PyTorch's own huge pages (THP_MEM_ALLOC_ENABLE) off.
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(torch_caffe2ops.__file__)))
    env = dict(os.environ, PYTHONPATH=pkg_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("TORCH_CAFFE2OPS_HUGE_PAGES", "THP_MEM_ALLOC_ENABLE"):
        env.pop(name, None)
    env.update(extra_env)
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.split()


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read()
    except OSError:
        return ""


@pytest.mark.cpu_only
@pytest.mark.skipif("[madvise]" not in _thp_mode(),
                    reason="transparent huge pages are not given on request here (Linux, enabled=madvise)")
def test_large_outputs_ask_for_huge_pages(tmp_path):
    default = _probe({}, tmp_path)
    if "None" in default:
        pytest.skip("the kernel shows no VmFlags in /proc/self/smaps")
    assert default == ["True", "False"]
    assert _probe({"TORCH_CAFFE2OPS_HUGE_PAGES": "0"}, tmp_path) == ["False", "False"]


@pytest.mark.cpu_only
def test_large_outputs_values():
    # A 16 MiB gradient and concat (advised) against the same work in ATen.
    data = torch.randn(64, 64, 1024)
    idx = torch.tensor([3, 0, 63, 3])
    grad = torch.randn(64, 4, 1024)
    got = C2.batch_gather_gradient(data, idx, grad)
    assert torch.equal(got, torch.zeros_like(data).index_add_(1, idx, grad))
    xs = [torch.randn(1024, 2048), torch.randn(1024, 2048)]
    assert torch.equal(C2.concat(xs, 1)[0], torch.cat(xs, 1))
