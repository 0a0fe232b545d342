"""The arguments Caffe2's ConvPoolOpBase (and ConvTransposeUnpoolBase) read, and the plan a
convolution or pooling converter builds from them.

Caffe2 reads the repeated forms first (``kernels``, ``strides``, ``dilations``, ``pads``), then
the single forms: ``kernel``/``stride``/``dilation`` resize the list to 2 entries filled with
the value (``resize`` keeps entries already there), ``pad`` resizes the pads to 4; the ``_h``/
``_w`` pairs (and ``pad_t``/``pad_l``/``pad_b``/``pad_r``) append only when every one of the
set is present. Pads are laid out heads first: ``[head_0 .. head_n-1, tail_0 .. tail_n-1]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..functional_conv import CAFFE_LEGACY_POOLING, NOTSET, SAME, VALID
from ..registry import Arg, OpCall

LEGACY_NAMES = {NOTSET: "NOTSET", VALID: "VALID", SAME: "SAME", CAFFE_LEGACY_POOLING: "CAFFE_LEGACY_POOLING"}

# Shared by Conv*/ConvTranspose/pooling: the padding and layout arguments.
_COMMON: dict[str, Any] = {
    "legacy_pad": NOTSET,
    "kernels": Arg("ints", []),
    "strides": Arg("ints", []),
    "pads": Arg("ints", []),
    "group": 1,
    "order": "NCHW",
    "kernel": Arg("int"),
    "kernel_h": Arg("int"),
    "kernel_w": Arg("int"),
    "stride": Arg("int"),
    "stride_h": Arg("int"),
    "stride_w": Arg("int"),
    "pad": Arg("int"),
    "pad_t": Arg("int"),
    "pad_l": Arg("int"),
    "pad_b": Arg("int"),
    "pad_r": Arg("int"),
}

# ConvPoolOpBase (Conv, Conv1D/2D/3D, ConvRelu, ConvFusion, MaxPool*, AveragePool*, LpPool).
CONV_POOL_ARGS: dict[str, Any] = {
    **_COMMON,
    "global_pooling": False,
    "dilations": Arg("ints", []),
    "dilation": Arg("int"),
    "dilation_h": Arg("int"),
    "dilation_w": Arg("int"),
}

# ConvTransposeUnpoolBase: no dilation or global pooling, but output adjustments.
CONV_TRANSPOSE_ARGS: dict[str, Any] = {
    **_COMMON,
    "adjs": Arg("ints", []),
    "adj": Arg("int"),
    "adj_h": Arg("int"),
    "adj_w": Arg("int"),
}

# Read by the base classes but without effect on the result: a shared im2col buffer, and fp16
# math on the GPU (for float16 tensors only).
CONV_POOL_IGNORED = ("shared_buffer", "float16_compute")
# cuDNN/MKL engine selectors the Conv family reads.
CONV_ENGINE_IGNORED = (
    "exhaustive_search", "ws_nbytes_limit", "deterministic", "cudnn_state", "force_algo", "enable_tensor_core",
)


@dataclass(frozen=True)
class ConvPoolPlan:
    """Normalised ConvPoolOpBase arguments of one operator."""

    kernel: list[int]
    stride: list[int]
    dilation: list[int]
    pad_head: list[int]
    pad_tail: list[int]
    legacy: int
    global_pooling: bool
    group: int
    nhwc: bool
    adj: list[int]

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def symmetric(self) -> bool:
        return self.pad_head == self.pad_tail

    @property
    def static_pads(self) -> bool:
        """Whether the pads are known without the input size (not SAME / CAFFE_LEGACY_POOLING)."""
        return self.legacy in (NOTSET, VALID)

    def pad_list(self) -> list[int]:
        """``F.pad`` amounts (last spatial dim first) for static pads."""
        out: list[int] = []
        for h, t in zip(reversed(self.pad_head), reversed(self.pad_tail)):
            out += [h, t]
        return out


def _resize(values: list[int], size: int, value: int) -> list[int]:
    # std::vector::resize: truncates, or appends copies of value; existing entries stay.
    return values[:size] + [value] * max(0, size - len(values))


def _gather(op: OpCall, repeated: str, single: str, pair: tuple[str, ...], size: int) -> list[int]:
    values = list(op.args[repeated]) if op.has(repeated) else []
    if op.has(single):
        return _resize(values, size, op.args[single])
    if all(op.has(name) for name in pair):
        return values + [op.args[name] for name in pair]
    return values


def _order(op: OpCall) -> bool:
    order = op.args["order"]
    if order not in ("NCHW", "NHWC"):
        raise op.error(f"argument 'order' = {order!r}: Caffe2 knows only 'NCHW' and 'NHWC'")
    return order == "NHWC"


def _legacy(op: OpCall) -> int:
    legacy = op.args["legacy_pad"]
    if legacy not in LEGACY_NAMES:
        raise op.error(f"argument 'legacy_pad' = {legacy}: expected 0 (NOTSET), 1 (VALID), 2 (SAME) "
                       "or 3 (CAFFE_LEGACY_POOLING)")
    if legacy in (VALID, SAME):
        given = [n for n in ("pads", "pad") if op.has(n)]
        if all(op.has(n) for n in ("pad_t", "pad_l", "pad_b", "pad_r")):
            given.append("pad_t/pad_l/pad_b/pad_r")
        if given:
            raise op.error(f"legacy_pad = {legacy} ({LEGACY_NAMES[legacy]}) computes the padding itself; "
                           f"do not also give {', '.join(given)}")
    return legacy


def _check_lengths(op: OpCall, kernel: list[int], **lists: list[int]) -> None:
    for name, values in lists.items():
        want = 2 * len(kernel) if name == "pads" else len(kernel)
        if len(values) != want:
            raise op.error(f"{len(kernel)} kernel size(s) {kernel} but {len(values)} {name} {values}; "
                           f"expected {want}")


def _kernel_stride_pads(op: OpCall, legacy: int) -> tuple[list[int], list[int], list[int]]:
    """Kernel, strides and [heads..., tails...] pads from every spelling; VALID and SAME start
    from zero pads (the plan computes SAME's)."""
    kernel = _gather(op, "kernels", "kernel", ("kernel_h", "kernel_w"), 2) or [0, 0]
    stride = _gather(op, "strides", "stride", ("stride_h", "stride_w"), 2) or [1] * len(kernel)
    pads = _gather(op, "pads", "pad", ("pad_t", "pad_l", "pad_b", "pad_r"), 4)
    if legacy in (VALID, SAME) or not pads:
        pads = [0] * (2 * len(kernel))
    return kernel, stride, pads


def conv_pool_plan(op: OpCall, *, pooling: bool = False) -> ConvPoolPlan:
    """The plan of a ConvPoolOpBase operator, with Caffe2's checks (``pooling``: PoolOp's too)."""
    legacy = _legacy(op)
    nhwc = _order(op)
    global_pooling = bool(op.args["global_pooling"])
    kernel, stride, pads = _kernel_stride_pads(op, legacy)
    dilation = _gather(op, "dilations", "dilation", ("dilation_h", "dilation_w"), 2) or [1] * len(kernel)
    _check_lengths(op, kernel, strides=stride, dilations=dilation, pads=pads)
    n = len(kernel)
    if not 1 <= n <= 3:
        raise op.error(f"{n}-D kernel {kernel}: only 1-D, 2-D and 3-D convolution and pooling are supported")
    head, tail = pads[:n], pads[n:]
    if any(v < 0 for v in kernel) or any(v <= 0 for v in stride) or any(v <= 0 for v in dilation):
        raise op.error(f"kernel {kernel} must be >= 0, strides {stride} and dilations {dilation} > 0")
    if any(v < 0 for v in pads):
        raise op.error(f"pads {pads} must be >= 0")
    if global_pooling:
        if any(pads) or any(d != 1 for d in dilation) or any(s != 1 for s in stride):
            raise op.error("with global_pooling set, pads, dilations and strides must not be set "
                           f"(pads {pads}, dilations {dilation}, strides {stride})")
    elif any(k == 0 for k in kernel):
        raise op.error(f"kernel {kernel}: every kernel size must be set (> 0) unless global_pooling is set")
    if legacy == SAME and any(d != 1 for d in dilation):
        raise op.error(f"legacy_pad = 2 (SAME) does not support dilation (dilations {dilation})")
    group = op.args["group"]
    if group < 1:
        raise op.error(f"group = {group} must be >= 1")
    if pooling:
        if any(d != 1 for d in dilation):
            raise op.error(f"pooling does not support dilation (dilations {dilation})")
        if not global_pooling and any(h >= k or t >= k for h, t, k in zip(head, tail, kernel)):
            raise op.error(f"pads {pads} must each be smaller than the kernel {kernel}")
    return ConvPoolPlan(kernel, stride, dilation, head, tail, legacy, global_pooling, group, nhwc, [0] * n)


def conv_transpose_plan(op: OpCall) -> ConvPoolPlan:
    """The plan of a ConvTransposeUnpoolBase operator (2-D only, as Caffe2's)."""
    legacy = _legacy(op)
    if legacy == CAFFE_LEGACY_POOLING:
        raise op.error("legacy_pad = 3 (CAFFE_LEGACY_POOLING) is not supported by ConvTranspose")
    nhwc = _order(op)
    kernel, stride, pads = _kernel_stride_pads(op, legacy)
    adj = _gather(op, "adjs", "adj", ("adj_h", "adj_w"), 2) or [0] * len(kernel)
    _check_lengths(op, kernel, strides=stride, adjs=adj, pads=pads)
    if len(kernel) != 2:
        raise op.error(f"kernel {kernel}: ConvTranspose supports only 2-D inputs")
    if any(k <= 0 for k in kernel) or any(s <= 0 for s in stride):
        raise op.error(f"kernel {kernel} and strides {stride} must be > 0")
    if any(a < 0 or a > s for a, s in zip(adj, stride)):
        raise op.error(f"adjs {adj} must lie between 0 and the stride {stride}")
    if any(v < 0 for v in pads):
        raise op.error(f"pads {pads} must be >= 0")
    group = op.args["group"]
    if group < 1:
        raise op.error(f"group = {group} must be >= 1")
    return ConvPoolPlan(kernel, stride, [1, 1], pads[:2], pads[2:], NOTSET, False, group, nhwc, adj)
