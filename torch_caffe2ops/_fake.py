"""Python fake kernels for ops whose output sizes can depend on tensor values (spec 0.8):
split / depth_split (sizes from split_tensor) and split_by_lengths (sizes from lengths).
Every other op has a C++ Meta kernel. These mirror the shape rules of
csrc/concat_split/concat_split_shapes.cpp; value checks happen in the real kernels."""
from typing import List, Optional, Sequence

import torch

_ORDER_AXIS = {"NCHW": 1, "nchw": 1, "NHWC": 3, "nhwc": 3}
# As csrc/common/sizes.h: outputs one call may return, and the int64 bound on size sums.
_MAX_OUTPUTS = 1 << 16
_INT64_MAX = (1 << 63) - 1


def _check_count(op: str, what: str, k: int) -> None:
    torch._check(1 <= k <= _MAX_OUTPUTS,
                 lambda: f"caffe2ops::{op}: {what} = {k} outputs; must be in [1, {_MAX_OUTPUTS}]")


def _axis(op: str, axis: Optional[int], order: Optional[str], add_axis: bool, rank: int) -> int:
    torch._check(not (axis is not None and order is not None),
                 lambda: f"caffe2ops::{op}: You shouldn't specify both the dim to split, and the order in the case of 4-D images.")
    if axis is None:
        torch._check(not add_axis, lambda: f"caffe2ops::{op}: add_axis=True needs an explicit axis")
        o = order if order is not None else "NCHW"
        torch._check(o in _ORDER_AXIS, lambda: f"caffe2ops::{op}: Unsupported storage order: {o}")
        axis = _ORDER_AXIS[o]
    torch._check(-rank <= axis < rank, lambda: f"caffe2ops::{op}: Axis not in input ndim range: axis {axis} for rank {rank}")
    return axis + rank if axis < 0 else axis


def _pieces(x: torch.Tensor, axis: int, sizes: Sequence, add_axis: bool) -> List[torch.Tensor]:
    outs = []
    for s in sizes:
        shape = list(x.shape)
        if add_axis:
            del shape[axis]
        else:
            shape[axis] = s
        outs.append(x.new_empty(shape))
    return outs


def _dynamic_sizes(k: int):
    ctx = torch.library.get_ctx()
    return [ctx.new_dynamic_size() for _ in range(k)]


def _split_fake(op):
    def fake(input, split_tensor=None, split=(), axis=None, order=None, add_axis=False, num_outputs=-1):
        torch._check(input.dim() >= 1, lambda: f"caffe2ops::{op}: input must have rank >= 1")
        a = _axis(op, axis, order, add_axis, input.dim())
        C = input.shape[a]
        if split_tensor is not None:
            torch._check(len(split) == 0, lambda: f"caffe2ops::{op}: If you set split with an input blob, do not pass in split in the argument.")
            k = split_tensor.numel()
            torch._check(num_outputs in (-1, k), lambda: f"caffe2ops::{op}: num_outputs disagrees with split_tensor")
            _check_count(op, "split_tensor's number of entries", k)
            if add_axis:
                torch._check(k == C, lambda: f"caffe2ops::{op}: Sum of split dimensions do not match: should be {C}")
                return _pieces(input, a, [1] * k, True)
            sizes = _dynamic_sizes(k)
            torch._check(sum(sizes) == C, lambda: f"caffe2ops::{op}: Sum of split dimensions do not match: should be {C}")
            return _pieces(input, a, sizes, False)
        if len(split) > 0:
            torch._check(num_outputs in (-1, len(split)),
                         lambda: f"caffe2ops::{op}: The number of splits specified should be equal to the number of outputs.")
            _check_count(op, "the number of entries of split", len(split))
            sizes = list(split)
        else:
            k = num_outputs if num_outputs != -1 or not add_axis else C
            torch._check(k > 0, lambda: f"caffe2ops::{op}: an equal split needs num_outputs > 0")
            _check_count(op, "num_outputs", k)
            torch._check(C % k == 0, lambda: f"caffe2ops::{op}: If you did not specify split explicitly, the number of input channels should be divisible by the output size.")
            sizes = [C // k] * k
        torch._check(all(s >= 0 for s in sizes), lambda: f"caffe2ops::{op}: negative split size")
        torch._check(sum(sizes) <= _INT64_MAX, lambda: f"caffe2ops::{op}: the sum of split {list(sizes)} does not fit int64")
        torch._check(len(sizes) == C if add_axis else sum(sizes) == C,
                     lambda: f"caffe2ops::{op}: Sum of split dimensions do not match: should be {C}")
        return _pieces(input, a, sizes, add_axis)
    return fake


torch.library.register_fake("caffe2ops::split")(_split_fake("split"))
torch.library.register_fake("caffe2ops::depth_split")(_split_fake("depth_split"))


@torch.library.register_fake("caffe2ops::split_by_lengths")
def _split_by_lengths_fake(input, lengths, num_outputs, axis=None, order=None, use_scaling_lengths=False):
    op = "split_by_lengths"
    torch._check(input.dim() >= 1, lambda: f"caffe2ops::{op}: input must have rank >= 1")
    torch._check(lengths.dim() == 1, lambda: f"caffe2ops::{op}: lengths must be 1-D")
    _check_count(op, "num_outputs", num_outputs)
    torch._check(lengths.numel() % num_outputs == 0,
                 lambda: f"caffe2ops::{op}: len(Lengths) {lengths.numel()}should be divisible by OutputSize() {num_outputs}.")
    a = _axis(op, axis, order, False, input.dim())
    sizes = _dynamic_sizes(num_outputs)
    if not use_scaling_lengths:
        torch._check(sum(sizes) == input.shape[a])
    return _pieces(input, a, sizes, False)
