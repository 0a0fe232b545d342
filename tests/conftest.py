"""Runs every family test on each device (a test that runs on the CPU also runs on CUDA when
torch.cuda.is_available()).

The family tests create their inputs with the ordinary factories (torch.tensor, torch.randn,
utils.t); the `device` fixture makes those factories allocate on the device under test, so one
test body checks the CPU and the CUDA kernels against the same NumPy reference. A test whose
subject exists on one device only (thread counts, the CPU generator, "no cuDNN here") is marked
`cpu_only`. Without a CUDA device the CUDA variants are not generated; the header says so, and
tests/test_cuda.py skips with the reason.
"""
import pytest
import torch

FAMILY_MODULES = {"test_batch", "test_concat_split", "test_dropout", "test_margin_rank", "test_sparse_normalize"}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_only: the test is about CPU-only behaviour; not run per device")


def pytest_report_header(config):
    if "cuda" in DEVICES:
        return f"torch_caffe2ops family tests on: cpu, cuda ({torch.cuda.get_device_name()})"
    return "torch_caffe2ops family tests on: cpu (no CUDA device: CUDA variants not generated)"


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__ not in FAMILY_MODULES:
        return
    cpu_only = metafunc.definition.get_closest_marker("cpu_only") is not None
    metafunc.parametrize("device", ["cpu"] if cpu_only else DEVICES, indirect=True)


@pytest.fixture(autouse=True)
def device(request):
    """The device under test; inside the test, factories allocate there by default."""
    name = getattr(request, "param", "cpu")
    if name == "cpu":
        yield name
        return
    with torch.device(name):
        yield name
