"""One sample table per operator family (tests/samples/<family>.py): the inputs every generic
test derives its cases from (tests/test_samples.py: opcheck, gradcheck and gradgradcheck,
torch.func against the C++ autograd, vmap against a per-sample loop, threads against a serial
run; tests/test_cuda.py: CUDA against the CPU). An op added to its family's table is exercised
by all of them, and tests/test_coverage.py fails for a registered op without samples.

A sample is (op, make, tags, label): `make()` builds fresh positional arguments with the
ordinary factories (so they land on the device under test, tests/conftest.py). Floating inputs
created with requires_grad=True are the differentiable ones. Samples labelled "large" are sized
so that the CPU kernels split their work across intra-op threads; they keep requires_grad on
their differentiable inputs (the threads check and the CUDA comparison differentiate them once)
but carry no DIFF tag, since a numerical Jacobian of that size is out of reach. Tags:

* DIFF:     the op is differentiable at these inputs (gradcheck applies; inputs away from kinks);
* RANDOM:   draws random numbers (each run is seeded the same);
* INPLACE:  modifies its first argument (derived tests pass clones);
* INT_OUT:  its outputs are integers (no gradient to check);
* CUDA:     runs on CUDA too (compared with the CPU where a GPU exists);
* CUDA_ONLY: runs only on CUDA tensors.
"""
import importlib
from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Tuple

import torch

DIFF, RANDOM, INPLACE, INT_OUT, CUDA, CUDA_ONLY = ("differentiable", "random", "in-place", "integer-output",
                                                   "cuda", "cuda-only")
FAMILIES = ("batch", "concat_split", "dropout", "sparse_normalize", "margin_rank")


class Sample(NamedTuple):
    op: str
    make: Callable[[], Tuple[Any, ...]]
    tags: FrozenSet[str] = frozenset({CUDA})
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}[{self.label}]" if self.label else self.op

    def args(self) -> Tuple[Any, ...]:
        torch.manual_seed(0)  # the same values every time a sample is built
        return self.make()


def sample(op: str, make: Callable[[], Tuple[Any, ...]], *tags: str, label: str = "", cuda: bool = True) -> Sample:
    return Sample(op, make, frozenset(tags) | ({CUDA} if cuda else frozenset()), label)


def table(family: str) -> List[Sample]:
    return importlib.import_module(f"samples.{family}").SAMPLES


def all_samples() -> List[Sample]:
    return [s for family in FAMILIES for s in table(family)]


def by_op() -> Dict[str, List[Sample]]:
    out: Dict[str, List[Sample]] = {}
    for s in all_samples():
        out.setdefault(s.op, []).append(s)
    return out


def leaves(args: Any) -> List[torch.Tensor]:
    """The differentiable inputs of `args` (tensors that require grad), lists flattened."""
    out: List[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor) and a.requires_grad:
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out += leaves(a)
    return out


def runs_under_vmap(s: Sample) -> bool:
    """Whether the vmap and threads checks (tests/test_samples.py) run the sample: not when it
    draws random numbers (vmap's randomness modes and per-thread generators have tests of their
    own), nor when it needs CUDA."""
    return RANDOM not in s.tags and CUDA_ONLY not in s.tags


def opcheck_cases(family: str) -> List[Tuple[str, Tuple[Any, ...]]]:
    """(op, args) for the family's opcheck test and tests/test_cuda.py."""
    return [(s.op, s.args()) for s in table(family) if CUDA_ONLY not in s.tags]
