"""Caffe2's operators as ``torch.ops.caffe2ops.*`` with Caffe2's exact semantics.

Importing this package loads the native library, which registers every op with PyTorch's
dispatcher (eager, autograd, TorchScript, torch.compile, torch.export).
"""
import torch

try:
    from ._build_info import CUDA_VERSION, TORCH_VERSION, __version__
except ImportError as e:  # pragma: no cover - only in an unbuilt checkout
    raise ImportError(
        "torch_caffe2ops is not built: run `pip install --no-build-isolation -e .` "
        "in the repository (see README.md)"
    ) from e


def _public(version):
    return version.split("+")[0]


if _public(torch.__version__) != _public(TORCH_VERSION):
    raise ImportError(
        f"torch_caffe2ops {__version__} was built against torch {TORCH_VERSION} but torch "
        f"{torch.__version__} is installed; install the torch_caffe2ops wheel built for this torch, "
        "or rebuild it from source with `pip install --no-build-isolation --force-reinstall --no-deps .`"
    )
if CUDA_VERSION is not None and torch.version.cuda != CUDA_VERSION:
    raise ImportError(
        f"torch_caffe2ops {__version__} was built with CUDA {CUDA_VERSION} kernels but this torch "
        + (f"uses CUDA {torch.version.cuda}" if torch.version.cuda else "is a CPU-only build")
        + "; install the torch_caffe2ops wheel built for this torch, or rebuild it against this torch"
    )

from . import _C  # noqa: E402,F401  (registers torch.ops.caffe2ops.*)
from . import _fake  # noqa: E402,F401  (fake kernels for data-dependent output sizes)
from . import _vmap  # noqa: E402,F401  (torch.func.vmap batching rules)
from . import nn, ops  # noqa: E402,F401

__all__ = ["ops", "nn", "__version__", "TORCH_VERSION", "CUDA_VERSION"]
