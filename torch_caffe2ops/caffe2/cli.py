"""``python -m torch_caffe2ops.caffe2``: inspect a NetDef, or convert it to a torch.export program.

    python -m torch_caffe2ops.caffe2 inspect predict_net.pb [init_net.pb]
    python -m torch_caffe2ops.caffe2 convert predict_net.pb init_net.pb -o model.pt2 \\
        --example-inputs inputs.pt --dynamic-batch
    python -m torch_caffe2ops.caffe2 convert predict_net.pb init_net.pb -o model.pt2 \\
        --example-inputs "float32[8,13]" "int64[40]@0:1000" "int32[8]@5:5"

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

from .loader import _is_training_op, load_net
from .proto import read_net
from .registry import get_converter

_FILL_DTYPES = {
    "GivenTensorFill": "float32", "GivenTensorDoubleFill": "float64", "GivenTensorIntFill": "int32",
    "GivenTensorInt64Fill": "int64", "GivenTensorBoolFill": "bool", "XavierFill": "float32",
    "MSRAFill": "float32", "GaussianFill": "float32", "UniformFill": "float32", "ConstantFill": "float32",
}


def _arg(op: Any, name: str) -> Optional[Any]:
    for a in op.arg:
        if a.name == name:
            return a
    return None


def _init_blob_info(init: Any) -> dict[str, tuple[str, str]]:
    """Blob -> (dtype, shape) read from the fill arguments, without running the init net."""
    info = {}
    for op in init.op:
        shape = _arg(op, "shape")
        dims = str(list(shape.ints)) if shape is not None and not op.input else "?"
        dtype = _FILL_DTYPES.get(op.type, "?")
        if op.type == "ConstantFill" and _arg(op, "dtype") is not None:
            from .dtypes import torch_dtype

            try:
                dtype = str(torch_dtype(int(_arg(op, "dtype").i))).replace("torch.", "")
            except ValueError:
                dtype = "?"
        for blob in op.output:
            info[blob] = (dtype, dims)
    return info


def _status(op: Any) -> str:
    if _is_training_op(op):
        return "training/gradient op (not importable)"
    return "supported" if get_converter(op.type) is not None else "NOT SUPPORTED"


def inspect(net_path: str, init_path: Optional[str]) -> int:
    net = read_net(net_path)
    init = read_net(init_path) if init_path else None
    params = _init_blob_info(init) if init is not None else {}
    print(f"net {net.name or '(unnamed)'}: {len(net.op)} operators")
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
    print("\ninputs (forward arguments, in order):")
    for blob in net.external_input:
        if blob not in params:
            print(f"  {blob}  shape ? (not recorded in a NetDef)")
    if params:
        print("\nparameters and buffers from the init net:")
        for blob, (dtype, dims) in params.items():
            print(f"  {blob}  {dtype} {dims}")
    print("\noutputs:")
    for blob in net.external_output:
        print(f"  {blob}")
    unsupported = sorted(t for t, op in first.items() if _status(op) != "supported")
    if unsupported:
        print(f"\n{len(unsupported)} type(s) cannot be imported yet: {', '.join(unsupported)}")
    return 0


_SPEC = re.compile(r"^(?P<dtype>\w+)\[(?P<dims>[\d,\s]*)\](?:@(?P<low>-?[\d.]+):(?P<high>-?[\d.]+))?$")


def _example_from_spec(spec: str) -> torch.Tensor:
    m = _SPEC.match(spec.strip())
    if not m:
        raise SystemExit(f"bad example-input spec {spec!r}: expected DTYPE[d0,d1,...] or DTYPE[...]@LOW:HIGH")
    dtype = getattr(torch, m["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise SystemExit(f"unknown dtype {m['dtype']!r} in {spec!r}")
    dims = [int(d) for d in m["dims"].split(",") if d.strip()]
    if dtype.is_floating_point:
        if m["low"] is None:
            return torch.randn(dims, dtype=dtype)
        return torch.empty(dims, dtype=dtype).uniform_(float(m["low"]), float(m["high"]))
    low, high = (int(float(m["low"])), int(float(m["high"]))) if m["low"] is not None else (0, 10)
    return torch.randint(low, high + 1, dims).to(dtype)


def _example_inputs(values: Sequence[str]) -> tuple[torch.Tensor, ...]:
    if len(values) == 1 and values[0].endswith((".pt", ".pth")):
        loaded = torch.load(values[0], weights_only=True)
        if isinstance(loaded, torch.Tensor):
            return (loaded,)
        if isinstance(loaded, dict):
            return tuple(loaded.values())
        return tuple(loaded)
    return tuple(_example_from_spec(v) for v in values)


def convert(net_path: str, init_path: str, out: str, example_values: Sequence[str], dynamic_batch: bool) -> int:
    model = load_net(net_path, init_path)
    model.eval()
    inputs = _example_inputs(example_values)
    dynamic_shapes = None
    if dynamic_batch and inputs:
        # AUTO lets export work out which leading dims are tied (dense rows and lengths share
        # the batch; sparse id lists have their own sizes) instead of guessing from the example.
        dynamic_shapes = tuple({0: torch.export.Dim.AUTO} if x.dim() else None for x in inputs)
    program = torch.export.export(model, inputs, dynamic_shapes=dynamic_shapes)
    torch.export.save(program, out)
    print(f"wrote {out}: {len(inputs)} inputs, {len(list(model.parameters()))} parameters")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_caffe2ops.caffe2", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_inspect = sub.add_parser("inspect", help="operator types with support status, inputs, parameters, outputs")
    p_inspect.add_argument("net", help="predict net (.pb binary, or .pbtxt/.prototxt/.txt text)")
    p_inspect.add_argument("init", nargs="?", help="init net")
    p_convert = sub.add_parser("convert", help="write a torch.export program (.pt2)")
    p_convert.add_argument("net")
    p_convert.add_argument("init")
    p_convert.add_argument("-o", "--output", required=True, help="path of the .pt2 file")
    p_convert.add_argument(
        "--example-inputs", nargs="+", required=True,
        help="a torch.save'd tuple of tensors, or one DTYPE[dims][@LOW:HIGH] spec per forward argument",
    )
    p_convert.add_argument(
        "--dynamic-batch", action="store_true",
        help="make dim 0 of every input dynamic (export infers which are tied); use example sizes >= 2",
    )
    args = parser.parse_args(argv)
    if args.command == "inspect":
        return inspect(args.net, args.init)
    return convert(args.net, args.init, args.output, args.example_inputs, args.dynamic_batch)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
