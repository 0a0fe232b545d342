"""``python -m torch_caffe2ops.caffe2``: inspect a NetDef, or convert it to a torch.export program.

    python -m torch_caffe2ops.caffe2 inspect predict_net.pb [init_net.pb]
    python -m torch_caffe2ops.caffe2 convert predict_net.pb init_net.pb -o model.pt2 \\
        --example-inputs inputs.pt --dynamic-batch
    python -m torch_caffe2ops.caffe2 convert predict_net.pb init_net.pb -o model.pt2 \\
        --example-inputs "float32[8,13]" "int64[40]@0:1000" "int32[8]@5:5"
    python -m torch_caffe2ops.caffe2 inspect model.minidb       # a predictor file (minidb/lmdb)

Example inputs are either one file saved with ``torch.save`` (a tuple/list of tensors in the
forward's order) or one spec per input: ``DTYPE[d0,d1,...]``, optionally ``@LOW:HIGH`` for the
value range (integers are drawn uniformly in [LOW, HIGH]; floats are standard normal without a
range).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from typing import Any, Optional, Sequence

import torch

from .errors import NetImportError
from .loader import _is_training_op, load_net
from .db import detect_db_type
from .predictor import load_predictor, read_predictor
from .proto import read_net
from .registry import get_converter


class UsageError(Exception):
    """A mistake in the command line (reported as one line, exit status 2)."""


def _status(op: Any) -> str:
    if _is_training_op(op):
        return "training/gradient op (not importable)"
    return "supported" if get_converter(op.type) is not None else "NOT SUPPORTED"


def _shape(t: torch.Tensor) -> str:
    return f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}"


def _is_predictor(net_path: str, init_path: Optional[str], flag: bool) -> bool:
    """A predictor file (a minidb/lmdb DB) rather than a NetDef: ``--predictor``, or detected."""
    is_db = flag or detect_db_type(net_path) is not None
    if is_db and init_path:
        raise UsageError("a predictor file holds its parameters: give no init net with it")
    return is_db


def inspect(net_path: str, init_path: Optional[str], strict: bool = False, predictor: bool = False) -> int:
    """A dry run of the conversion: what load_net would build, or the error it would raise."""
    extra: dict[str, Any] = {}
    if _is_predictor(net_path, init_path, predictor):
        pf = read_predictor(net_path)
        net, init = pf.predict_net, pf.init_net
        extra = {"init_blobs": pf.params, "inputs": pf.inputs, "outputs": pf.outputs}
        print(f"predictor file {net_path} ({pf.db_type}): {len(pf.params)} parameter blobs from the file")
    else:
        net = read_net(net_path)
        init = read_net(init_path) if init_path else None
    print(f"net {net.name or '(unnamed)'}: {len(net.op)} operators"
          + (f"; init net: {len(init.op)} operators" if init is not None else "; no init net"))
    print("\noperator types:")
    counts = collections.Counter(op.type for op in net.op)
    if init is not None:
        counts.update(op.type for op in init.op)
    first = {}
    for op in list(init.op if init is not None else []) + list(net.op):
        first.setdefault(op.type, op)
    width = max((len(k) for k in counts), default=4)
    for op_type, n in sorted(counts.items()):
        print(f"  {op_type:<{width}}  x{n:<4} {_status(first[op_type])}")
    try:
        model = load_net(net, init, strict=strict, **extra)
    except NetImportError as e:
        print(f"\nthe conversion fails:\n{e}")
        return 1
    print("\ninputs (forward arguments, in order):")
    for blob in model.caffe2_inputs:
        hint = model.caffe2_input_hints.get(blob)
        where = f"{_shape(hint)} (the init net's placeholder)" if hint is not None else "shape ? (a NetDef does not record it)"
        print(f"  {blob}  {where}")
    if model.caffe2_unused_inputs:
        print("\nexternal inputs no operator reads (left out of forward):")
        for blob in model.caffe2_unused_inputs:
            print(f"  {blob}")
    params = list(model.named_parameters())
    buffers = list(model.named_buffers())
    if params or buffers:
        print(f"\nparameters ({len(params)}) and buffers ({len(buffers)}):")
        for name, t in params:
            print(f"  {name}  {_shape(t)}  parameter")
        for name, t in buffers:
            print(f"  {name}  {_shape(t)}  buffer")
    print("\noutputs:")
    for blob in model.caffe2_outputs:
        print(f"  {blob}")
    if model.caffe2_ignored_arguments:
        print("\narguments Caffe2's operators do not read (ignored, as Caffe2 did; strict=True rejects them):")
        for key, n in model.caffe2_ignored_arguments.items():
            print(f"  {key}  x{n}")
    print("\nthe conversion succeeds")
    return 0


_SPEC = re.compile(r"^(?P<dtype>\w+)\[(?P<dims>[\d,\s]*)\](?:@(?P<low>-?[\d.]+):(?P<high>-?[\d.]+))?$")


def _example_from_spec(spec: str) -> torch.Tensor:
    m = _SPEC.match(spec.strip())
    if not m:
        raise UsageError(f"bad example-input spec {spec!r}: expected DTYPE[d0,d1,...] or DTYPE[...]@LOW:HIGH")
    dtype = getattr(torch, m["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise UsageError(f"unknown dtype {m['dtype']!r} in {spec!r}")
    dims = [int(d) for d in m["dims"].split(",") if d.strip()]
    if dtype.is_floating_point:
        if m["low"] is None:
            return torch.randn(dims, dtype=dtype)
        return torch.empty(dims, dtype=dtype).uniform_(float(m["low"]), float(m["high"]))
    low, high = (int(float(m["low"])), int(float(m["high"]))) if m["low"] is not None else (0, 10)
    return torch.randint(low, high + 1, dims).to(dtype)


def _example_inputs(values: Sequence[str]) -> tuple[torch.Tensor, ...]:
    if len(values) == 1 and values[0].endswith((".pt", ".pth")):
        try:
            loaded = torch.load(values[0], weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise UsageError(f"cannot read the example inputs {values[0]!r}: {e}") from None
        if isinstance(loaded, torch.Tensor):
            return (loaded,)
        if isinstance(loaded, dict):
            return tuple(loaded.values())
        return tuple(loaded)
    return tuple(_example_from_spec(v) for v in values)


def convert(
    net_path: str, init_path: Optional[str], out: str, example_values: Optional[Sequence[str]], dynamic_batch: bool,
    strict: bool = False, predictor: bool = False,
) -> int:
    if _is_predictor(net_path, init_path, predictor):
        model = load_predictor(net_path, strict=strict)
    else:
        model = load_net(net_path, init_path, strict=strict)
    model.eval()
    names = model.caffe2_inputs
    if example_values:
        inputs = _example_inputs(example_values)
    elif all(b in model.caffe2_input_hints for b in names):
        # Every input has a placeholder in the init net: its value is the example.
        inputs = tuple(model.caffe2_input_hints[b] for b in names)
    else:
        missing = [b for b in names if b not in model.caffe2_input_hints]
        raise UsageError(f"--example-inputs is needed: the net's inputs {missing} have no shape in the NetDef")
    if len(inputs) != len(names):
        raise UsageError(
            f"{len(inputs)} example input(s) given, but the net takes {len(names)}: {names}"
        )
    dynamic_shapes = None
    if dynamic_batch and inputs:
        # AUTO lets export work out which leading dims are tied (dense rows and lengths share
        # the batch; sparse id lists have their own sizes) instead of guessing from the example.
        dynamic_shapes = tuple({0: torch.export.Dim.AUTO} if x.dim() else None for x in inputs)
    try:
        program = torch.export.export(model, inputs, dynamic_shapes=dynamic_shapes)
    except Exception as e:  # the model rejects the examples: one line, not export's traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise NetImportError(f"torch.export failed on the example inputs: {type(e).__name__}: {first}") from None
    torch.export.save(program, out)
    print(f"wrote {out}: {len(inputs)} inputs, {len(list(model.parameters()))} parameters")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_caffe2ops.caffe2", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_inspect = sub.add_parser(
        "inspect", help="dry run of the conversion: operator types, inputs, parameters, outputs, ignored arguments"
    )
    p_inspect.add_argument("net", help="predict net (.pb binary, or .pbtxt/.prototxt/.txt text)")
    p_inspect.add_argument("init", nargs="?", help="init net")
    p_inspect.add_argument("--strict", action="store_true", help="arguments Caffe2 does not read are errors")
    p_inspect.add_argument("--predictor", action="store_true", help="NET is a predictor file (minidb/lmdb; else detected)")
    p_convert = sub.add_parser("convert", help="write a torch.export program (.pt2)")
    p_convert.add_argument("net")
    p_convert.add_argument("init", nargs="?", help="init net (optional, as for load_net)")
    p_convert.add_argument("-o", "--output", required=True, help="path of the .pt2 file")
    p_convert.add_argument(
        "--example-inputs", nargs="+",
        help="a torch.save'd tuple of tensors, or one DTYPE[dims][@LOW:HIGH] spec per forward argument "
        "(optional when the init net holds a placeholder for every input)",
    )
    p_convert.add_argument(
        "--dynamic-batch", action="store_true",
        help="make dim 0 of every input dynamic (export infers which are tied); use example sizes >= 2",
    )
    p_convert.add_argument("--strict", action="store_true", help="arguments Caffe2 does not read are errors")
    p_convert.add_argument("--predictor", action="store_true", help="NET is a predictor file (minidb/lmdb; else detected)")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            return inspect(args.net, args.init, args.strict, args.predictor)
        return convert(
            args.net, args.init, args.output, args.example_inputs, args.dynamic_batch, args.strict, args.predictor
        )
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (NetImportError, ImportError) as e:  # ImportError: an optional package (lmdb) is missing
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
