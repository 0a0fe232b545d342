"""``load_net``: a Caffe2 predict net (+ init net) as a ``torch.fx.GraphModule``."""
from __future__ import annotations

import collections
from typing import Any, Callable, Optional, Union

import torch
import torch.fx

from . import converters_caffe2ops, converters_core, converters_fill  # noqa: F401  (register converters)
from .context import ConversionContext, sanitize
from .errors import NetImportError, TrainingNetError, UnsupportedOperatorError
from .proto import NetSource, read_net
from .registry import OpCall, decode_args, get_converter

# Operator types that only exist in training nets (optimizers, iteration counters, learning
# rates, parameter-update scatters). Gradient types are recognised by name instead.
TRAINING_OP_TYPES = frozenset({
    "Iter", "AtomicIter", "LearningRate", "SGD", "MomentumSGD", "MomentumSGDUpdate", "SparseMomentumSGDUpdate",
    "Adagrad", "SparseAdagrad", "RowWiseSparseAdagrad", "Adam", "SparseAdam", "RowWiseSparseAdam", "Ftrl",
    "SparseFtrl", "Adadelta", "SparseAdadelta", "RmsProp", "Lamb", "SparseLamb", "Wngrad", "SparseWngrad",
    "YellowFin", "Storm", "SparseStorm", "ScatterWeightedSum", "ScatterAssign", "WeightedSum", "EnsureDense",
    "LabelCrossEntropy", "SoftmaxWithLoss", "SigmoidCrossEntropyWithLogits", "AveragedLoss", "MakeTwoClass",
})
REGISTRY_HINT = (
    "torch_caffe2ops.caffe2.supported_op_types() lists the supported types; add one with "
    "@torch_caffe2ops.caffe2.register_converter(\"Type\") (module torch_caffe2ops/caffe2/registry.py)"
)


def _is_training_op(op: Any) -> bool:
    if get_converter(op.type) is not None and not op.is_gradient_op:
        return False  # e.g. StopGradient, a forward op despite its name
    return op.is_gradient_op or op.type.endswith(("Gradient", "Grad")) or op.type in TRAINING_OP_TYPES


def check_net(nets: list[tuple[str, Any]]) -> None:
    """Raise before building anything: training ops first, then every unsupported type."""
    training = collections.Counter(
        (role, op.type) for role, net in nets for op in net.op if _is_training_op(op)
    )
    if training:
        listing = ", ".join(f"{t} x{n} ({role})" for (role, t), n in sorted(training.items()))
        raise TrainingNetError(
            f"this is a training net: it contains gradient or training-only operators ({listing}). "
            "Import the inference net instead: export the predict net (for example with "
            "caffe2.python.predictor_exporter or the model's `net` after `is_test=True` "
            "construction) and its init net with the parameters."
        )
    missing = collections.Counter(
        (op.type, role) for role, net in nets for op in net.op if get_converter(op.type) is None
    )
    if missing:
        types = collections.Counter()
        for (t, _), n in missing.items():
            types[t] += n
        lines = []
        for t, n in sorted(types.items()):
            roles = sorted({role for (tt, role) in missing if tt == t})
            lines.append(f"  {t}: {n} ({', '.join(roles)})")
        raise UnsupportedOperatorError(
            f"{len(types)} operator type(s) in this net have no converter:\n" + "\n".join(lines) + f"\n{REGISTRY_HINT}"
        )


class _Converter:
    """Walks one net's operators in order, binding each output blob to an fx node."""

    def __init__(self, ctx: ConversionContext, role: str, lookup: Callable[[str], Optional[torch.fx.Node]]):
        self.ctx = ctx
        self.role = role
        self.env: dict[str, torch.fx.Node] = {}
        self._lookup = lookup

    def value(self, blob: str, where: str) -> torch.fx.Node:
        node = self.env.get(blob)
        if node is None:
            node = self._lookup(blob)
            if node is None:
                raise NetImportError(
                    f"{where}: input blob {blob!r} is neither an external input, an init-net blob, "
                    "nor produced by an earlier operator"
                )
            self.env[blob] = node
        return node

    def run(self, net: Any) -> None:
        for index, op in enumerate(net.op):
            self.convert(index, op)

    def convert(self, index: int, op: Any) -> None:
        converter = get_converter(op.type)
        assert converter is not None  # check_net ran first
        where = f"{self.role} operator #{index}" + (f" {op.name!r}" if op.name else "")
        lo, hi = converter.inputs
        if len(op.input) < lo or (hi is not None and len(op.input) > hi):
            raise NetImportError(f"{op.type} ({where}): {len(op.input)} inputs, expected {_count(lo, hi)}")
        lo, hi = converter.outputs
        if len(op.output) < lo or (hi is not None and len(op.output) > hi):
            raise NetImportError(f"{op.type} ({where}): {len(op.output)} outputs, expected {_count(lo, hi)}")
        args, given = decode_args(converter, op, where)
        inputs = [self.value(b, f"{op.type} ({where})") for b in op.input]
        call = OpCall(op.type, index, op, inputs, list(op.input), list(op.output), args, given)
        self.ctx.name_hint = sanitize(op.output[0]) if op.output else sanitize(op.type)
        self.ctx.output_hints = list(op.output)
        try:
            result = converter.fn(self.ctx, call)
        except NetImportError:
            raise
        except Exception as e:  # a converter bug or a value Caffe2 would reject
            raise NetImportError(f"{op.type} ({where}): {type(e).__name__}: {e}") from e
        nodes = [result] if isinstance(result, torch.fx.Node) else list(result)
        if len(nodes) < len(op.output) or any(n is None for n in nodes[: len(op.output)]):
            raise NetImportError(f"{op.type} ({where}): the converter produced {len(nodes)} of {len(op.output)} outputs")
        for blob, node in zip(op.output, nodes):
            self.env[blob] = node


def _count(lo: int, hi: Optional[int]) -> str:
    return str(lo) if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")


def trainable_init_blobs(predict: Any, init_blobs: dict[str, torch.Tensor]) -> set[str]:
    """Floating init blobs that some operator reads at a differentiable input position (or that
    the net returns as is). The others are loaded as buffers."""
    trainable: set[str] = set(predict.external_output)
    written: set[str] = set()
    for op in predict.op:
        converter = get_converter(op.type)
        for position, blob in enumerate(op.input):
            # Only the value before any operator overwrites the name is the init blob.
            if blob not in written and not (converter and converter.is_constant_input(position)):
                trainable.add(blob)
        written.update(op.output)
    return {b for b in trainable if b in init_blobs and init_blobs[b].is_floating_point()}


def _module(
    ctx: ConversionContext,
    graph: torch.fx.Graph,
    class_name: str,
    params: dict[str, torch.Tensor],
    trainable: frozenset[str] = frozenset(),
) -> torch.fx.GraphModule:
    root = torch.nn.Module()
    used = {n.target for n in graph.nodes if n.op in ("get_attr", "call_module")}
    for name in sorted(used):
        if name in params:
            t = params[name]
            if name in trainable:
                root.register_parameter(name, torch.nn.Parameter(t, requires_grad=True))
            else:
                root.register_buffer(name, t)
        elif name in ctx.constants:
            root.register_buffer(name, ctx.constants[name])
        elif name in ctx.modules:
            root.add_module(name, ctx.modules[name])
    gm = torch.fx.GraphModule(root, graph, class_name=class_name)
    # Dead code (Reshape's unused old_shape, unused Dropout masks, ...) goes only now: purity
    # checks of call_module nodes need the owning module.
    gm.graph.eliminate_dead_code()
    still_used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name in used - still_used:
        if name in params or name in ctx.constants:
            delattr(gm, name)
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()
    return gm


def run_init_net(init: Any) -> dict[str, torch.Tensor]:
    """The blobs an init net produces (evaluated once, without gradients)."""
    graph = torch.fx.Graph()
    ctx = ConversionContext(graph, torch.device("cpu"))
    conv = _Converter(ctx, "init net", lambda blob: None)
    conv.run(init)
    names = list(conv.env)
    graph.output(tuple(conv.env[n] for n in names))
    gm = _module(ctx, graph, "Caffe2InitNet", {})
    with torch.no_grad():
        values = gm()
    return {n: v.detach() for n, v in zip(names, values)}


def load_net(
    predict_net: NetSource, init_net: Optional[NetSource] = None, *, device: Union[str, torch.device] = "cpu"
) -> torch.fx.GraphModule:
    """Load a Caffe2 NetDef as a ``torch.fx.GraphModule``.

    ``predict_net`` / ``init_net``: a path (binary, or text for ``.pbtxt``/``.prototxt``/
    ``.txt``), ``bytes`` (binary or text), text as ``str``, or a parsed NetDef message. The init
    net runs once: its floating blobs become trainable parameters, the others buffers (as are
    floating blobs read only by operators Caffe2 never differentiates, such as bucket borders). The
    module's ``forward`` takes the predict net's ``external_input`` blobs that the init net
    does not produce, positionally in that order, and returns the ``external_output`` blobs
    (one tensor, or a tuple when there are several).

    Raises :class:`TrainingNetError` for gradient/training operators,
    :class:`UnsupportedOperatorError` (listing every missing type) before building anything,
    :class:`UnknownArgumentError` for an argument a converter does not know.
    """
    predict = read_net(predict_net)
    init = read_net(init_net) if init_net is not None else None
    device = torch.device(device)
    nets = ([("init net", init)] if init is not None else []) + [("predict net", predict)]
    check_net(nets)

    blobs = run_init_net(init) if init is not None else {}
    graph = torch.fx.Graph()
    ctx = ConversionContext(graph, device)
    params: dict[str, torch.Tensor] = {}
    trainable_blobs = trainable_init_blobs(predict, blobs)
    trainable: set[str] = set()

    def init_blob(blob: str) -> Optional[torch.fx.Node]:
        if blob not in blobs:
            return None
        attr = ctx.fresh_attr(blob)
        params[attr] = blobs[blob].to(device)
        if blob in trainable_blobs:
            trainable.add(attr)
        return graph.get_attr(attr)

    conv = _Converter(ctx, "predict net", init_blob)
    inputs = [b for b in predict.external_input if b not in blobs]
    if len(set(inputs)) != len(inputs):
        raise NetImportError(f"predict net: external_input lists a blob twice: {inputs}")
    for blob in inputs:
        conv.env[blob] = graph.placeholder(sanitize(blob))
    conv.run(predict)

    outputs = list(predict.external_output)
    if not outputs:
        if not predict.op:
            raise NetImportError("predict net: no operators and no external_output")
        # Hand-written nets often omit external_output; the last operator's outputs are the result.
        outputs = list(predict.op[-1].output)
    values = [conv.value(b, "predict net external_output") for b in outputs]
    graph.output(values[0] if len(values) == 1 else tuple(values))
    class_name = sanitize(predict.name) if predict.name else "Caffe2Net"
    return _module(ctx, graph, class_name, params, frozenset(trainable))
