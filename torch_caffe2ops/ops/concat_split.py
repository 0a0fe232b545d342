"""The concat / split family (csrc/concat_split/).

Axis rules shared by concat, split and split_by_lengths: give at most one of `axis` and
`order`. Without `axis` the axis comes from `order` ("NCHW"/"nchw" -> 1, "NHWC"/"nhwc" -> 3),
and `order` defaults to "NCHW", so the default axis is 1 (not 0 as in torch.cat).
See docs/operators/concat_split.md.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _func
from ._call import C2 as _C2, calls as _calls


def concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """Concatenates (or, with ``add_axis``, stacks) tensors and reports the piece sizes.

    **Returns a tuple** ``(output, split_info)``; unpack it.

    Without ``add_axis`` all inputs must match in every dimension except ``axis``; the output
    has the sum of their sizes there and ``split_info[i] = inputs[i].shape[axis]``. With
    ``add_axis`` all inputs must have identical shapes; a new dimension of size ``n`` is
    inserted at ``axis`` (which may then equal the input rank) and ``split_info`` is all ones.

    Args:
        inputs: ``n >= 1`` tensors of the same dtype and rank (any dtype).
        axis: the dimension, negative counts from the end. Default: from ``order``, i.e. 1.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        add_axis: stack instead of concatenating; needs an explicit ``axis``. Default ``False``.

    Returns:
        Tuple ``(output, split_info)``; ``split_info`` is an int32 tensor ``[n]`` on the CPU.

    Raises:
        RuntimeError: both ``axis`` and ``order`` given; ``add_axis`` without ``axis``; an
            unknown order; the axis out of range (``Axis not in input ndim range``, e.g. 1-D
            inputs with the default axis 1: pass ``axis=0``); inputs of different dtypes,
            ranks or sizes.

    Differentiable in every input (backward: :func:`concat_gradient`).
    Caffe2: ``Concat`` (arguments ``axis``, ``order`` = ``"NCHW"``, ``add_axis`` = 0; outputs
    ``concat_result, split_info``).
    """
    if not torch.jit.is_scripting():
        return _calls.concat(inputs, axis, order, add_axis)
    return torch.ops.caffe2ops.concat(inputs, axis, order, add_axis)


def depth_concat(
    inputs: List[Tensor], axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False
) -> Tuple[Tensor, Tensor]:
    """Identical to :func:`concat` (Caffe2 kept ``DepthConcat`` as a backward-compatible alias).

    Args:
        inputs: as in :func:`concat`.
        axis: as in :func:`concat`.
        order: as in :func:`concat`.
        add_axis: as in :func:`concat`.

    Returns:
        Tuple ``(output, split_info)``.

    Raises:
        RuntimeError: as :func:`concat`.

    Caffe2: ``DepthConcat``.
    """
    if not torch.jit.is_scripting():
        return _calls.depth_concat(inputs, axis, order, add_axis)
    return torch.ops.caffe2ops.depth_concat(inputs, axis, order, add_axis)


def concat_gradient(
    grad_output: Tensor, split_info: Tensor, axis: Optional[int] = None, order: Optional[str] = None,
    add_axis: bool = False,
) -> List[Tensor]:
    """Gradient of :func:`concat`: ``grad_output`` cut back into pieces of the sizes in
    ``split_info`` (with ``add_axis``, unstacked along ``axis``).

    Args:
        grad_output: gradient of the concatenation.
        split_info: the ``split_info`` output of the forward (int tensor on the CPU).
        axis: as in the forward.
        order: as in the forward.
        add_axis: as in the forward. Default ``False``.

    Returns:
        List of ``len(split_info)`` tensors, the inputs' gradients.

    Raises:
        RuntimeError: the axis rules of :func:`concat`, or sizes that do not add up.

    Caffe2 used ``Split`` for this; there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        return _calls.concat_gradient(grad_output, split_info, axis, order, add_axis)
    return torch.ops.caffe2ops.concat_gradient(grad_output, split_info, axis, order, add_axis)


def split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Cuts ``input`` into consecutive pieces along an axis.

    The piece sizes come from exactly one source: the ``split_tensor`` input, the ``split``
    list, or an equal split into ``num_outputs`` pieces (``input.shape[axis]`` must then be
    divisible by it). They must add up to ``input.shape[axis]``. With ``add_axis`` the input is
    unstacked instead: ``input.shape[axis]`` pieces, each with that dimension removed.
    ``num_outputs`` (Caffe2's number of output blobs) is inferred from the sizes when -1.

    Args:
        input: tensor of any dtype.
        split_tensor: optional 1-D int32/int64 tensor of sizes, on the CPU.
        split: optional list of sizes (each >= 0). Give at most one of ``split`` and
            ``split_tensor``.
        axis: the dimension; default from ``order``, i.e. 1.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        add_axis: unstack instead of split; needs an explicit ``axis``. Default ``False``.
        num_outputs: number of pieces; required (> 0) for an equal split. Default -1.

    Returns:
        List of fresh tensors (not views of ``input``).

    Raises:
        RuntimeError: the axis rules of :func:`concat`; both size sources given; a negative
            size; sizes that do not add up (``Sum of split dimensions do not match``); an
            equal split without ``num_outputs`` or not divisible; ``num_outputs`` disagreeing
            with the sizes.

    Differentiable in ``input`` (backward: :func:`split_gradient`, missing piece gradients
    count as zeros). Caffe2: ``Split`` (inputs ``input[, split]``; arguments ``axis``,
    ``order``, ``split``, ``add_axis``).
    """
    if not torch.jit.is_scripting():
        return _calls.split(input, split_tensor, [] if split is None else split, axis, order, add_axis, num_outputs)
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def depth_split(
    input: Tensor, split_tensor: Optional[Tensor] = None, split: Optional[List[int]] = None,
    axis: Optional[int] = None, order: Optional[str] = None, add_axis: bool = False, num_outputs: int = -1,
) -> List[Tensor]:
    """Identical to :func:`split` (Caffe2's backward-compatible alias ``DepthSplit``).

    Args:
        input: as in :func:`split`.
        split_tensor: as in :func:`split`.
        split: as in :func:`split`.
        axis: as in :func:`split`.
        order: as in :func:`split`.
        add_axis: as in :func:`split`.
        num_outputs: as in :func:`split`.

    Returns:
        List of tensors.

    Raises:
        RuntimeError: as :func:`split`.

    Caffe2: ``DepthSplit``.
    """
    if not torch.jit.is_scripting():
        return _calls.depth_split(input, split_tensor, [] if split is None else split, axis, order, add_axis, num_outputs)
    sizes: List[int] = [] if split is None else split
    return torch.ops.caffe2ops.depth_split(input, split_tensor, sizes, axis, order, add_axis, num_outputs)


def split_by_lengths(
    input: Tensor, lengths: Tensor, num_outputs: int, axis: Optional[int] = None, order: Optional[str] = None,
    use_scaling_lengths: bool = False,
) -> List[Tensor]:
    """Cuts ``input`` into ``num_outputs`` pieces whose sizes are sums of groups of ``lengths``.

    With ``m = len(lengths)`` and ``g = m // num_outputs``, piece ``i`` has size
    ``mult * sum(lengths[i*g:(i+1)*g])`` along the axis. Without ``use_scaling_lengths``
    ``mult = 1`` and ``sum(lengths)`` must equal ``input.shape[axis]``; with it,
    ``mult = input.shape[axis] / sum(lengths)`` (which must divide exactly).

    Args:
        input: tensor of any dtype.
        lengths: 1-D int32/int64 tensor, entries >= 0, length divisible by ``num_outputs``.
        num_outputs: number of pieces (>= 1).
        axis: the dimension; default from ``order``, i.e. **1**.
        order: ``"NCHW"`` (axis 1) or ``"NHWC"`` (axis 3); only without ``axis``.
        use_scaling_lengths: scale the lengths to the axis size. Default ``False``.

    Returns:
        List of ``num_outputs`` fresh tensors. Their sizes depend on the values of
        ``lengths`` (data-dependent shapes under ``torch.compile``/``torch.export``).

    Raises:
        RuntimeError: the axis rules of :func:`concat`; ``len(lengths)`` not divisible by
            ``num_outputs``; a negative length; the sum not equal to (or, when scaling, not
            dividing) the axis size.

    Differentiable in ``input`` (backward: :func:`split_gradient`). Caffe2: ``SplitByLengths``
    (arguments ``axis``, ``order``, ``use_scaling_lengths``; the number of outputs was the
    number of output blobs).
    """
    if not torch.jit.is_scripting():
        return _calls.split_by_lengths(input, lengths, num_outputs, axis, order, use_scaling_lengths)
    return torch.ops.caffe2ops.split_by_lengths(input, lengths, num_outputs, axis, order, use_scaling_lengths)


def split_gradient(grad_outputs: List[Optional[Tensor]], split_sizes: List[int], axis: int, add_axis: bool = False) -> Tensor:
    """Gradient of :func:`split`, :func:`depth_split` and :func:`split_by_lengths`.

    Concatenates the pieces' gradients along ``axis`` (stacks them with ``add_axis``); a
    missing gradient (``None``) counts as zeros of its piece's size.

    Args:
        grad_outputs: one gradient or ``None`` per piece; at least one must be a tensor.
        split_sizes: the resolved piece sizes.
        axis: the non-negative split dimension of the forward input.
        add_axis: the pieces were unstacked. Default ``False``.

    Returns:
        The input's gradient.

    Raises:
        RuntimeError: no gradient given, or sizes inconsistent with the gradients.

    Caffe2 used ``Concat`` for this (and skipped missing gradients, giving a wrongly shaped
    result); there is no Caffe2 type of this name.
    """
    if not torch.jit.is_scripting():
        return _calls.split_gradient(grad_outputs, split_sizes, axis, add_axis)
    return torch.ops.caffe2ops.split_gradient(grad_outputs, split_sizes, axis, add_axis)


# ---------------------------------------------------------------------------------------
# torch.func: one Function per differentiable op and per non-composite gradient op (the
# formulas of the C++ autograd of this family, over the wrappers above so that nested
# transforms route again). See torch_caffe2ops/_func.py for the fields of a Formula.
# ---------------------------------------------------------------------------------------

_z = _func.zero_if_none


def _split_backward(pieces: Sequence[Tensor], axis: int, add_axis: bool) -> Tensor:
    sizes = [1 if add_axis else int(p.shape[axis]) for p in pieces]
    return split_gradient(list(pieces), sizes, axis, add_axis)


def _concat_formula(depth: bool) -> _func.Formula:
    raw = _C2.depth_concat if depth else _C2.concat
    split_fn = depth_split if depth else split

    def backward(a, g, _):
        axis, order, add_axis, *xs = a
        ax = _func.canonical_axis(axis, order, xs[0].dim() + int(add_axis))
        sizes = [1 if add_axis else int(x.shape[ax]) for x in xs]
        return (None, None, None, *split_fn(g, None, sizes, ax, None, add_axis))

    def jvp(a, t):
        axis, order, add_axis, *xs = a
        tangents = [_z(ti, x) for ti, x in zip(t[3:], xs)]
        return (concat(tangents, axis, order, add_axis)[0], None)

    # Function args: (axis, order, add_axis, *inputs)
    return _func.Formula(lambda axis, order, add_axis, *xs: raw(list(xs), axis, order, add_axis),
                      backward, jvp, nondiff=(1,),
                      pack=lambda inputs, axis, order, add_axis: (axis, order, add_axis, *inputs))


def _split_formula(depth: bool) -> _func.Formula:
    raw = _C2.depth_split if depth else _C2.split
    wrapper = depth_split if depth else split

    def backward(a, *gs):
        X, _, _, axis, order, add_axis, _ = a
        return (_split_backward(gs, _func.canonical_axis(axis, order, X.dim()), add_axis),) + (None,) * 6

    return _func.Formula(lambda *args: tuple(raw(*args)), backward,
                      lambda a, t: tuple(wrapper(t[0], *a[1:])), unpack=list)

_func.register({
    "concat": _concat_formula(False),
    "depth_concat": _concat_formula(True),
    "split": _split_formula(False),
    "depth_split": _split_formula(True),
    "split_by_lengths": _func.Formula(
        lambda *args: tuple(_C2.split_by_lengths(*args)),
        lambda a, *gs: (_split_backward(gs, _func.canonical_axis(a[3], a[4], a[0].dim()), False),) + (None,) * 5,
        lambda a, t: tuple(split_by_lengths(t[0], *a[1:])), unpack=list),
})

# The composite gradient op: the C++ composition, over the routed wrapper.
_func.register_composites({
    "concat_gradient": lambda grad_output, split_info, axis, order, add_axis: split(
        grad_output, split_info, [], axis, order, add_axis, -1),
})
