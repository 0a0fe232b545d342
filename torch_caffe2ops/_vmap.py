"""Batching rules for ``torch.func.vmap`` over every ``caffe2ops`` op.

Without a rule, vmap runs PyTorch's per-sample fallback and warns the user to report a missing
rule to PyTorch. Each op gets one of three rules here:

* elementwise ops (dropout's gradient, margin ranking) fold the vmapped dimension into the
  tensor: the op sees one larger input, and the result is the same elementwise values;
* dropout honours vmap's ``randomness``: ``"error"`` raises, ``"same"`` draws one mask for the
  per-sample shape and applies it to every sample, ``"different"`` draws one mask for the whole
  batch (independent per sample);
* every other op runs once per sample inside the rule and stacks the results. That is exactly
  the per-sample semantics (shapes, errors, Caffe2's rules) at the cost of a Python loop.
"""
from typing import Any, List, Optional, Tuple

import torch

_C2 = torch.ops.caffe2ops


def _move(x: Any, dim: Optional[int], batch: int) -> Any:
    """x with its vmapped dimension first, or expanded to the batch if it has none."""
    if not isinstance(x, torch.Tensor):
        return x
    if dim is None:
        return x.unsqueeze(0).expand(batch, *x.shape)
    return x.movedim(dim, 0)


def _sample(x: Any, dim: Any, b: int) -> Any:
    if isinstance(x, (list, tuple)):
        dims = dim if isinstance(dim, (list, tuple)) else [dim] * len(x)
        return type(x)(_sample(v, d, b) for v, d in zip(x, dims))
    if isinstance(x, torch.Tensor) and dim is not None:
        return x.select(dim, b)
    return x


def _stack(results: List[Any]) -> Tuple[Any, Any]:
    first = results[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(results), 0
    if isinstance(first, (list, tuple)):
        parts = [_stack([r[i] for r in results]) for i in range(len(first))]
        outs = type(first)(p[0] for p in parts) if isinstance(first, tuple) else [p[0] for p in parts]
        dims = tuple(p[1] for p in parts) if isinstance(first, tuple) else [p[1] for p in parts]
        return outs, dims
    return first, None


def _per_sample(name: str):
    op = getattr(_C2, name)

    def rule(info, in_dims, *args):
        results = [op(*_sample(list(args), list(in_dims), b)) for b in range(info.batch_size)]
        if not results:
            raise RuntimeError(f"caffe2ops::{name}: vmap over a batch of size 0 is not supported")
        try:
            return _stack(results)
        except (RuntimeError, IndexError) as e:  # e.g. split sizes that differ per sample
            raise RuntimeError(f"caffe2ops::{name}: vmap: the samples' outputs differ in shape or number, "
                               f"so they cannot be batched ({e})") from e

    return rule


def _folded(name: str, n_tensors: int):
    """Elementwise ops whose first n_tensors arguments only need matching numel."""
    op = getattr(_C2, name)

    def rule(info, in_dims, *args):
        B = info.batch_size
        moved = [_move(a, d, B) for a, d in zip(args[:n_tensors], in_dims[:n_tensors])]
        out = op(*moved, *args[n_tensors:])
        return out, (tuple(0 for _ in out) if isinstance(out, tuple) else 0)

    return rule


def _randomness_error(name: str) -> RuntimeError:
    return RuntimeError(
        f"caffe2ops::{name}: vmap: called a random operation while randomness='error'; "
        "pass randomness='same' or 'different' to torch.func.vmap")


def _dropout_rule(name: str):
    op = getattr(_C2, name)

    def rule(info, in_dims, X, ratio=0.5, is_test=False, generator=None):
        B = info.batch_size
        x = _move(X, in_dims[0], B)
        if is_test or ratio == 0:  # nothing random happens (as F.dropout with p = 0)
            Y, mask = op(x.contiguous(), ratio, is_test, generator)
            return (Y, mask), (0, 0)
        if info.randomness == "error":
            raise _randomness_error(name)
        if info.randomness == "different":
            Y, mask = op(x.contiguous(), ratio, False, generator)
            return (Y, mask), (0, 0)
        # "same": one mask for the per-sample shape, applied to every sample with exactly the
        # forward's arithmetic (X * mask * scale is what dropout_gradient computes).
        _, mask = op(torch.ones(x.shape[1:], dtype=x.dtype, device=x.device), ratio, False, generator)
        mask_b = mask.unsqueeze(0).expand_as(x)
        Y = _C2.dropout_gradient(x.contiguous(), mask_b.contiguous(), ratio, False)
        return (Y, mask_b), (0, 0)

    return rule


_FOLDED = {
    "margin_ranking_criterion": 3,
    "margin_ranking_criterion_gradient": 4,
}


def _dropout_gradient_rule(info, in_dims, dY, mask=None, ratio=0.5, is_test=False):
    B = info.batch_size
    dy = _move(dY, in_dims[0], B)
    m = _move(mask, in_dims[1], B) if mask is not None else None
    return _C2.dropout_gradient(dy.contiguous(), None if m is None else m.contiguous(), ratio, is_test), 0


def _cudnn_dropout_rule(info, in_dims, X, ratio=0.5, is_test=False, generator=None):
    # The reserve space is an opaque per-call buffer, so each sample is its own call: masks
    # differ per sample, which only randomness="different" (or test mode) allows.
    if not is_test and info.randomness != "different":
        if info.randomness == "error":
            raise _randomness_error("cudnn_dropout")
        raise RuntimeError("caffe2ops::cudnn_dropout: vmap with randomness='same' is not supported "
                           "(the reserve space is per call); use dropout, or randomness='different'")
    return _per_sample("cudnn_dropout")(info, in_dims, X, ratio, is_test, generator)


def _in_place(name: str):
    """sparse_normalize_: each sample's rows of a batched param are normalised in place."""
    op = getattr(_C2, name)

    def rule(info, in_dims, param, *args):
        if in_dims[0] is None:
            raise RuntimeError(f"caffe2ops::{name}: vmap: param must be batched (an in-place update of "
                               "one unbatched param by several samples has no per-sample meaning)")
        for b in range(info.batch_size):
            op(*_sample([param, *args], list(in_dims), b))
        return param, in_dims[0]

    return rule


def op_names() -> List[str]:
    """Every registered caffe2ops op, by its short name."""
    prefix = "caffe2ops::"
    return sorted({n[len(prefix):].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                   if n.startswith(prefix)})


def _register() -> None:
    for name in op_names():
        if name == "dropout":
            rule = _dropout_rule(name)
        elif name == "cudnn_dropout":
            rule = _cudnn_dropout_rule
        elif name == "dropout_gradient":
            rule = _dropout_gradient_rule
        elif name in _FOLDED:
            rule = _folded(name, _FOLDED[name])
        elif name.endswith("_"):
            rule = _in_place(name)
        else:
            rule = _per_sample(name)
        torch.library.register_vmap(f"caffe2ops::{name}", rule)


_register()
