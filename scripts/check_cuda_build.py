"""Checks a CUDA build of torch_caffe2ops without needing a GPU: it imports, reports the CUDA
version it was built with (equal to torch's), and every op of the library has a CUDA kernel."""
import sys

import torch

import torch_caffe2ops

assert torch_caffe2ops.CUDA_VERSION is not None, "not a CUDA build"
assert torch_caffe2ops.CUDA_VERSION == torch.version.cuda, (torch_caffe2ops.CUDA_VERSION, torch.version.cuda)
names = sorted({name.split("::")[1].split(".")[0] for name in torch._C._dispatch_get_all_op_names()
                if name.startswith("caffe2ops::")})
missing = []
for name in names:
    qualified = f"caffe2ops::{name}"
    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA"):
        continue
    # Composite gradient ops decompose into ops that have CUDA kernels.
    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CompositeImplicitAutograd"):
        continue
    missing.append(name)
print(f"torch_caffe2ops {torch_caffe2ops.__version__}: CUDA {torch_caffe2ops.CUDA_VERSION} build, "
      f"{len(names)} ops, cuda available: {torch.cuda.is_available()}")
if missing:
    print("ops without a CUDA kernel:", ", ".join(missing))
    sys.exit(1)
print("every op has a CUDA kernel (or is a composite of ops that have one)")
