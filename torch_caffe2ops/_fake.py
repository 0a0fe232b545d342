"""Python fake kernels for the ops whose output sizes can depend on tensor values: split /
depth_split (sizes from ``split_tensor``) and split_by_lengths (sizes from ``lengths``). Every
other op has a C++ Meta kernel. The C++ library names this module as the ops' Python module
(``set_python_module``), so PyTorch knows where their fake kernels live.

These rules restate the C++ ones (csrc/concat_split/concat_split_shapes.cpp and
csrc/common/sizes.cpp) with the same messages, in the same order; tests/test_fake_rules.py
feeds both the same bad inputs and compares the errors. Rules that need tensor values (the
lengths themselves) are checked by the real kernels only.
"""
from typing import List, Optional, Sequence

import torch

_ORDER_AXIS = {"NCHW": 1, "nchw": 1, "NHWC": 3, "nhwc": 3}
_MAX_OUTPUTS = 1 << 16  # kMaxOutputs
_INT64_MAX = (1 << 63) - 1
_SCALAR_NAMES = {torch.int8: "Char", torch.uint8: "Byte", torch.int16: "Short", torch.int32: "Int",
                 torch.int64: "Long", torch.float16: "Half", torch.bfloat16: "BFloat16",
                 torch.float32: "Float", torch.float64: "Double", torch.bool: "Bool"}


def _fail(op: str, msg: str) -> None:
    raise RuntimeError(f"caffe2ops::{op}: {msg}")


def _check(cond, op: str, msg) -> None:
    torch._check(cond, lambda: f"caffe2ops::{op}: {msg() if callable(msg) else msg}")


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def _check_count(op: str, what: str, k: int) -> None:
    _check(1 <= k <= _MAX_OUTPUTS, op, lambda: f"{what} = {k} outputs; must be in [1, {_MAX_OUTPUTS}]")


def _check_index_dtype(op: str, arg: str, t: torch.Tensor) -> None:
    _check(t.dtype in (torch.int32, torch.int64), op,
           lambda: f"{arg} must be int32 or int64, got {_SCALAR_NAMES.get(t.dtype, t.dtype)}")


def _split_axis(op: str, x: torch.Tensor, axis: Optional[int], order: Optional[str], add_axis: bool) -> int:
    _check(x.dim() >= 1, op, "input must have rank >= 1, got a 0-d tensor")
    rank = x.dim()
    _check(not (axis is not None and order is not None), op,
           "You shouldn't specify both the dim to split, and the order in the case of 4-D images.")
    if axis is None:
        _check(not add_axis, op, "add_axis=True needs an explicit axis (Caffe2 ignored add_axis when the axis "
                                 "came from order)")
        o = order if order is not None else "NCHW"
        if o not in _ORDER_AXIS:
            _fail(op, f"Unsupported storage order: {o}")
        axis = _ORDER_AXIS[o]
    _check(-rank <= axis < rank, op, lambda: f"Axis not in input ndim range: axis {axis} for rank {rank}")
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


def _checked_sum(op: str, arg: str, sizes: Sequence) -> int:
    total = 0
    for i, s in enumerate(sizes):  # one pass, in the C++ order: sign, then the running total
        _check(s >= 0, op, lambda: f"{arg}[{i}] = {s} is negative")
        total += s
        _check(total <= _INT64_MAX, op,
               lambda: f"the sum of {arg} [{', '.join(str(v) for v in sizes)}] does not fit int64")
    return total


def _split_fake(op):
    def fake(input, split_tensor=None, split=(), axis=None, order=None, add_axis=False, num_outputs=-1):
        a = _split_axis(op, input, axis, order, add_axis)
        C = input.shape[a]
        if split_tensor is not None:
            _check(len(split) == 0, op, "If you set split with an input blob, do not pass in split in the argument.")
            _check_index_dtype(op, "split_tensor", split_tensor)
            _check(split_tensor.device.type == "cpu", op,
                   lambda: f"split_tensor must be a CPU tensor (as in Caffe2), got {split_tensor.device}")
            k = split_tensor.numel()
            _check(num_outputs in (-1, k), op, lambda: f"num_outputs = {num_outputs} but split_tensor has {k} entries")
            _check_count(op, "split_tensor's number of entries", k)
            if add_axis:
                _check(k == C, op, lambda: f"Sum of split dimensions do not match: should be {C} outputs with "
                                           f"add_axis, got {k}")
                return _pieces(input, a, [1] * k, True)
            sizes = _dynamic_sizes(k)
            _check(sum(sizes) == C, op, lambda: f"Sum of split dimensions do not match: should be {C}")
            return _pieces(input, a, sizes, False)
        if len(split) > 0:
            _check(num_outputs in (-1, len(split)), op,
                   lambda: "The number of splits specified should be equal to the number of outputs: split has "
                           f"{len(split)} entries, num_outputs = {num_outputs}")
            _check_count(op, "the number of entries of split", len(split))
            sizes = list(split)
        else:
            k = num_outputs if num_outputs != -1 or not add_axis else C
            _check(k > 0, op, lambda: f"an equal split needs num_outputs > 0 (or a split / split_tensor), got {num_outputs}")
            _check_count(op, "num_outputs", k)
            _check(C % k == 0, op, lambda: "If you did not specify split explicitly, the number of input channels "
                                           f"should be divisible by the output size: {C} channels, {k} outputs")
            sizes = [C // k] * k
        total = _checked_sum(op, "split", sizes)
        if add_axis:
            _check(len(sizes) == C, op, lambda: f"Sum of split dimensions do not match: should be {C} outputs with "
                                                f"add_axis, got {len(sizes)}")
        else:
            _check(total == C, op, lambda: f"Sum of split dimensions do not match: should be {C}, got {total}")
        return _pieces(input, a, sizes, add_axis)
    return fake


torch.library.register_fake("caffe2ops::split")(_split_fake("split"))
torch.library.register_fake("caffe2ops::depth_split")(_split_fake("depth_split"))


@torch.library.register_fake("caffe2ops::split_by_lengths")
def _split_by_lengths_fake(input, lengths, num_outputs, axis=None, order=None, use_scaling_lengths=False):
    op = "split_by_lengths"
    a = _split_axis(op, input, axis, order, False)
    _check_index_dtype(op, "lengths", lengths)
    _check(lengths.dim() == 1, op, lambda: f"lengths must be 1-D, got shape {_shape(lengths)}")
    _check_count(op, "num_outputs", num_outputs)
    m = lengths.numel()
    _check(m % num_outputs == 0, op, lambda: f"len(lengths) = {m} must be divisible by num_outputs = {num_outputs}")
    sizes = _dynamic_sizes(num_outputs)
    if not use_scaling_lengths:
        torch._check(sum(sizes) == input.shape[a])
    return _pieces(input, a, sizes, False)
