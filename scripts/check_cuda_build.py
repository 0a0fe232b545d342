"""Checks a CUDA build of torch_caffe2ops without needing a GPU: it imports, reports the CUDA
version it was built with (equal to torch's), every op of the library has a CUDA kernel and a
Meta kernel (so fake tensors and torch.compile can trace it on CUDA), and cudnn_dropout's Meta
kernel sizes the reserve space through cuDNN.

    python scripts/check_cuda_build.py                      # the Python package on sys.path
    python scripts/check_cuda_build.py --library LIB.so     # a libtorch build (CMakeLists.txt)
"""
import argparse
import sys

import torch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--library", help="load this libtorch_caffe2ops.so instead of importing the package")
args = parser.parse_args()
if args.library:
    torch.ops.load_library(args.library)
    built = f"libtorch library {args.library}"
else:
    import torch_caffe2ops

    assert torch_caffe2ops.CUDA_VERSION is not None, "not a CUDA build"
    assert torch_caffe2ops.CUDA_VERSION == torch.version.cuda, (torch_caffe2ops.CUDA_VERSION, torch.version.cuda)
    built = f"torch_caffe2ops {torch_caffe2ops.__version__}: CUDA {torch_caffe2ops.CUDA_VERSION} build"
names = sorted({name.split("::")[1].split(".")[0] for name in torch._C._dispatch_get_all_op_names()
                if name.startswith("caffe2ops::")})
# The Python build requires cuDNN; CMake builds without it when none is found, and then the two
# cuDNN ops keep only their "needs cuDNN" fallback.
with_cudnn = torch._C._dispatch_has_kernel_for_dispatch_key("caffe2ops::cudnn_dropout", "CUDA")
if args.library and not with_cudnn:
    names = [name for name in names if not name.startswith("cudnn_dropout")]
    built += " (without cuDNN: cudnn_dropout raises)"
missing = []
for name in names:
    qualified = f"caffe2ops::{name}"
    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA"):
        continue
    # Composite gradient ops decompose into ops that have CUDA kernels.
    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CompositeImplicitAutograd"):
        continue
    missing.append(name)
print(f"{built}, {len(names)} ops, cuda available: {torch.cuda.is_available()}")
if missing:
    print("ops without a CUDA kernel:", ", ".join(missing))
    sys.exit(1)
print("every op has a CUDA kernel (or is a composite of ops that have one)")

# The splits' fake kernels are Python (their output sizes come from tensor values); the ops
# name that module (set_python_module), which a libtorch build declares without importing it.
no_meta = [name for name in names
           if not any(torch._C._dispatch_has_kernel_for_dispatch_key(f"caffe2ops::{name}", key)
                      for key in ("Meta", "CompositeExplicitAutograd", "CompositeImplicitAutograd"))
           and not (args.library and torch._C._dispatch_pystub(f"caffe2ops::{name}", ""))]
if no_meta:
    print("ops without a Meta kernel:", ", ".join(no_meta))
    sys.exit(1)
if not with_cudnn:
    print("every op has a Meta kernel")
    sys.exit(0)
y, reserve = torch.ops.caffe2ops.cudnn_dropout(torch.empty(1000, device="meta"), 0.5)
assert y.shape == (1000,) and reserve.dtype == torch.uint8 and reserve.dim() == 1 and reserve.numel() > 0
print(f"every op has a Meta kernel; cudnn_dropout on 1000 elements reserves {reserve.numel()} bytes")
