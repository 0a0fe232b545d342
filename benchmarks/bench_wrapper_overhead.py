"""What a torch_caffe2ops.ops wrapper adds over the raw torch.ops call, on the success path.

    .venv/bin/python benchmarks/bench_wrapper_overhead.py [--rounds 41] [--number 2000]

Two numbers, both medians over interleaved rounds (timeit, best of 3 per round):

* ops.concat([a, b], 1) against torch.ops.caffe2ops.concat([a, b], 1, None, False) on two
  64 x 32 float32 tensors: the end-to-end difference, kernel included (noisy on a busy machine);
* the same wrapper body around a do-nothing op (a stub with the packet's call signature), which
  isolates the Python the wrapper adds: torch.jit.is_scripting(), one call, the functorch check.
"""
import argparse
import statistics
import timeit

import torch

import torch_caffe2ops  # noqa: F401
from torch_caffe2ops import ops
from torch_caffe2ops.ops import _call


class _Stub:
    """Stands for an op packet whose kernel costs nothing."""
    _qualified_op_name = "caffe2ops::concat"
    default = torch.ops.caffe2ops.concat.default  # the schema the wrapper's checks read

    def __call__(self, *args):
        return args


def _stub_wrapper(inputs, axis=None, order=None, add_axis=False):
    if not torch.jit.is_scripting():
        return _call.call(_STUB, inputs, axis, order, add_axis)  # the generic entry: a lookup more than ops.concat
    return _STUB(inputs, axis, order, add_axis)


_STUB = _Stub()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--number", type=int, default=2000)
    a = parser.parse_args()
    x, y = torch.randn(64, 32), torch.randn(64, 32)
    inputs = [x, y]
    env = dict(torch=torch, ops=ops, inputs=inputs, stub=_STUB, stub_wrapper=_stub_wrapper)
    stmts = {
        "torch.ops.caffe2ops.concat": "torch.ops.caffe2ops.concat(inputs, 1, None, False)",
        "ops.concat": "ops.concat(inputs, 1)",
        "stub op": "stub(inputs, 1, None, False)",
        "wrapper around stub": "stub_wrapper(inputs, 1)",
    }
    times = {k: [] for k in stmts}
    for _ in range(a.rounds):
        for k, s in stmts.items():
            times[k].append(min(timeit.repeat(s, number=a.number, repeat=3, globals=env)) / a.number * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:28s} {v:8.3f} us")
    print(f"{'wrapper overhead (concat)':28s} {med['ops.concat'] - med['torch.ops.caffe2ops.concat']:8.3f} us")
    print(f"{'wrapper overhead (Python)':28s} {med['wrapper around stub'] - med['stub op']:8.3f} us")


if __name__ == "__main__":
    main()
