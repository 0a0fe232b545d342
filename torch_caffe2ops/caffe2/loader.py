"""``load_net``: a Caffe2 predict net (+ init net) as a ``torch.fx.GraphModule``."""
from __future__ import annotations

import collections
import linecache
import re
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import torch
import torch.fx

from . import converters  # noqa: F401  (imports every converter module, which registers itself)
from .context import ConversionContext, sanitize
from .errors import NetImportError, TrainingNetError, UnknownArgumentError, UnsupportedOperatorError
from .proto import NetSource, read_net
from .registry import OpCall, decode_args, describe_op, get_converter

# Operator types that only exist in training nets (optimizers, iteration counters, learning
# rates, parameter-update scatters). Gradient types are recognised by name instead.
TRAINING_OP_TYPES = frozenset({
    "Iter", "AtomicIter", "LearningRate", "SGD", "MomentumSGD", "MomentumSGDUpdate", "SparseMomentumSGDUpdate",
    "Adagrad", "SparseAdagrad", "RowWiseSparseAdagrad", "Adam", "SparseAdam", "RowWiseSparseAdam", "Ftrl",
    "SparseFtrl", "Adadelta", "SparseAdadelta", "RmsProp", "Lamb", "SparseLamb", "Wngrad", "SparseWngrad",
    "YellowFin", "Storm", "SparseStorm", "ScatterWeightedSum", "WeightedSum", "EnsureDense",
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


def unread_arguments(net: Any, role: str) -> list[str]:
    """One line per operator that carries arguments its Caffe2 operator does not read."""
    lines = []
    for index, op in enumerate(net.op):
        converter = get_converter(op.type)
        if converter is None:
            continue
        where = describe_op(op.type, role, index, op.name, list(op.output))
        unread = decode_args(converter, op, where).unread
        if unread:
            listing = ", ".join(f"{name!r} = {text}" for name, text in unread.items())
            lines.append(f"{where}: {listing}")
    return lines


def check_strict(net: Any, role: str) -> None:
    """``strict=True``: every argument Caffe2's operators would not read is an error, all of
    them listed at once."""
    lines = unread_arguments(net, role)
    if lines:
        raise UnknownArgumentError(
            f"{len(lines)} operator(s) of the {role} carry arguments that Caffe2's operator does not read "
            "(strict=True; without it they are ignored, as Caffe2 did):\n  " + "\n  ".join(lines)
        )


class _Converter:
    """Walks one net's operators in order, binding each output blob to an fx node."""

    def __init__(
        self,
        ctx: ConversionContext,
        role: str,
        lookup: Callable[[str], Optional[torch.fx.Node]],
    ):
        self.ctx = ctx
        self.role = role
        self.env: dict[str, torch.fx.Node] = {}
        self._lookup = lookup
        # (operator type, argument) -> how many operators carried it; Caffe2 did not read them.
        self.ignored: collections.Counter = collections.Counter()

    def value(self, blob: str, where: str) -> torch.fx.Node:
        node = self.env.get(blob)
        if node is None:
            try:
                node = self._lookup(blob)
            except NetImportError as e:
                raise NetImportError(f"{where}: {e}") from None
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
        where = describe_op(op.type, self.role, index, op.name, list(op.output))
        lo, hi = converter.inputs
        if len(op.input) < lo or (hi is not None and len(op.input) > hi):
            raise NetImportError(f"{where}: {len(op.input)} inputs, expected {_count(lo, hi)}")
        lo, hi = converter.outputs
        if len(op.output) < lo or (hi is not None and len(op.output) > hi):
            raise NetImportError(f"{where}: {len(op.output)} outputs, expected {_count(lo, hi)}")
        decoded = decode_args(converter, op, where)
        for name in decoded.unread:
            self.ignored[(op.type, name)] += 1
        inputs = [self.value(b, where) for b in op.input]
        call = OpCall(
            op.type, index, op, inputs, list(op.input), list(op.output), decoded.values, decoded.given, self.role
        )
        self.ctx.name_hint = sanitize(op.output[0]) if op.output else sanitize(op.type)
        self.ctx.output_hints = list(op.output)
        last = next(iter(reversed(self.ctx.graph.nodes)), None)
        try:
            result = converter.fn(self.ctx, call)
        except NetImportError:
            raise
        except Exception as e:  # a converter bug or a value Caffe2 would reject
            raise NetImportError(f"{where}: {type(e).__name__}: {e}") from e
        # Every node this operator emitted remembers it, so that a run-time error can name it.
        node = last.next if last is not None else next(iter(self.ctx.graph.nodes), None)
        while node is not None and node.op != "root":
            node.meta["caffe2_op"] = where
            node = node.next
        nodes = [result] if isinstance(result, torch.fx.Node) else list(result)
        if len(nodes) < len(op.output) or any(n is None for n in nodes[: len(op.output)]):
            raise NetImportError(f"{where}: the converter produced {len(nodes)} of {len(op.output)} outputs")
        for blob, node in zip(op.output, nodes):
            self.env[blob] = node


def _count(lo: int, hi: Optional[int]) -> str:
    return str(lo) if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")


def trainable_init_blobs(predict: Any, init_blobs: dict[str, torch.Tensor]) -> set[str]:
    """Floating init blobs that some operator reads at a differentiable input position (or that
    the net returns as is). The others are loaded as buffers."""
    # Only the reads before an operator overwrites the name see the init blob.
    trainable: set[str] = set(predict.external_output)
    for blob, reads in _first_reads(predict).items():
        if any(c is None or not c.is_constant_input(position) for c, position in reads):
            trainable.add(blob)
    return {
        b for b in trainable
        if b in init_blobs and isinstance(init_blobs[b], torch.Tensor) and init_blobs[b].is_floating_point()
    }


_ASSIGNED = re.compile(r"^\s*(\w+)\s*=")


class Caffe2Module(torch.fx.GraphModule):
    """The module :func:`load_net` returns: a ``GraphModule`` whose run-time errors name the
    Caffe2 operator they come from (``FC (predict net operator #4, outputs ['fc1']): ...``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as e:
            where = _failing_operator(self, e)
            if where is None or str(e).startswith(where):
                raise
            try:
                annotated = type(e)(f"{where}: {e}")
            except Exception:  # an exception type that needs other arguments
                annotated = RuntimeError(f"{where}: {type(e).__name__}: {e}")
            raise annotated.with_traceback(e.__traceback__) from e


def _failing_operator(gm: torch.fx.GraphModule, error: BaseException) -> Optional[str]:
    """The Caffe2 operator whose generated line raised ``error``: the innermost frame of the
    generated forward assigns the node's name, and the node records its operator."""
    line = None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        if "eval_with_key" in frame.f_code.co_filename:
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    if not line:
        return None
    m = _ASSIGNED.match(line)
    if not m:
        return None
    for node in gm.graph.nodes:
        if node.name == m.group(1):
            return node.meta.get("caffe2_op")
    return None


def _fresh_producers() -> tuple[set, tuple]:
    """Functions and module types whose result is a new tensor that no autograd node keeps
    (convolutions, batch norm, linear layers, sums)."""
    from . import functional as fn
    from .functional_norm import SpatialBN

    functions = {
        torch.conv1d, torch.conv2d, torch.conv3d, torch.conv_transpose1d, torch.conv_transpose2d,
        torch.conv_transpose3d, torch.batch_norm, torch.add, fn.fc, fn.sum_inputs, fn.sum_into,
    }
    return functions, (SpatialBN,)


def in_place(graph: torch.fx.Graph, modules: dict[str, torch.nn.Module]) -> int:
    """Rewrite ``relu(t)`` as ``relu_(t)`` and ``Sum([t, ...])`` as an accumulation into ``t``
    where ``t`` is read by nothing else and is a fresh result of a convolution, batch norm,
    linear layer or sum: what Caffe2's in-place Relu and Sum did (``Relu(x) -> x``), and what
    torchvision's ReLU(inplace=True) and ``out += identity`` do. A fresh activation of a vision
    net is tens of megabytes, and allocating (and first touching) a new one per operator costs a
    fifth of a ResNet-50's time on the CPU. Returns the number of rewritten nodes."""
    from . import functional as fn

    functions, module_types = _fresh_producers()

    def fresh(src: Any) -> bool:
        if not isinstance(src, torch.fx.Node) or len(src.users) != 1:
            return False
        return (src.op == "call_function" and src.target in functions) or (
            src.op == "call_module" and isinstance(modules.get(src.target), module_types)
        )

    count = 0
    for node in graph.nodes:
        if node.op != "call_function" or len(node.args) != 1:
            continue
        if node.target is torch.relu and fresh(node.args[0]):
            node.target = torch.relu_
            count += 1
        elif node.target is fn.sum_inputs and len(node.args[0]) > 1 and fresh(node.args[0][0]):
            node.target = fn.sum_into
            count += 1
    return count


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
    gm = Caffe2Module(root, graph, class_name=class_name)
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
    # A string blob (GivenTensorStringFill) stays a list of bytes: metadata, not a tensor.
    return {n: v.detach() if isinstance(v, torch.Tensor) else v for n, v in zip(names, values)}


@dataclass
class InputPlan:
    """Which predict-net blobs the module's ``forward`` takes, and why the others are not."""

    inputs: list[str]
    # Inputs that the init net also fills (a placeholder or an example input): the init
    # net's value, kept only as a shape and dtype hint.
    hints: dict[str, torch.Tensor] = field(default_factory=dict)
    # External inputs that no operator reads and the net does not return.
    unused: list[str] = field(default_factory=list)


def _first_reads(predict: Any) -> dict[str, list[tuple[Any, int]]]:
    """blob -> (converter, input position) of every read that happens before the predict net
    writes the blob (those read the external or init-net value)."""
    reads: dict[str, list[tuple[Any, int]]] = collections.defaultdict(list)
    written: set[str] = set()
    for op in predict.op:
        converter = get_converter(op.type)
        for position, blob in enumerate(op.input):
            if blob not in written:
                reads[blob].append((converter, position))
        written.update(op.output)
    return reads


def _is_placeholder(blob: str, value: torch.Tensor, reads: list, returned: set) -> bool:
    """An init-net blob that only stands in for an input: floating (a placeholder image or an
    example input; integer blobs are constant indices, lengths or shapes) and read only where
    the operators take data, never where they take parameters."""
    if blob in returned or not value.is_floating_point():
        return False
    return all(c is not None and c.is_data_input(pos) for c, pos in reads)


def plan_inputs(predict: Any, init_blobs: dict[str, torch.Tensor], inputs: Optional[list[str]] = None) -> InputPlan:
    """The forward's inputs, as Caffe2's Predictor fed them.

    The Predictor bound the caller's tensors to the predict net's ``external_input`` blobs in
    order, overriding whatever the init net had put there. So, in ``external_input`` order:

    - a blob the init net does not fill is an input;
    - a blob the init net fills is a parameter if some operator reads it where parameters go
      (a weight, a bias, an embedding table: any input position its converter does not mark
      as data) or if it is not floating point (constant indices, lengths, shapes), and
      otherwise an input whose init-net value (a placeholder such as ``ConstantFill -> data``,
      or an exported example input) is only a shape hint;
    - a blob no operator reads, and that the net does not return, is left out;
    - a blob that operators read but nothing provides (not listed, not filled) is an input too,
      after the listed ones.

    ``inputs`` names them explicitly instead.
    """
    external = list(predict.external_input)
    if len(set(external)) != len(external):
        dup = sorted({b for b in external if external.count(b) > 1})
        raise NetImportError(f"predict net: external_input lists blob(s) {dup} more than once")
    reads = _first_reads(predict)
    returned = set(predict.external_output)
    if inputs is not None:
        inputs = list(inputs)
        if len(set(inputs)) != len(inputs):
            raise NetImportError(f"load_net: inputs={inputs} names a blob twice")
        for blob in inputs:
            if blob not in reads and blob not in returned:
                raise NetImportError(
                    f"load_net: inputs names {blob!r}, which no operator of the predict net reads "
                    f"before writing it (external_input: {external})"
                )
        hints = {b: init_blobs[b] for b in inputs if b in init_blobs}
        unused = [b for b in external if b not in inputs and b not in init_blobs and b not in reads]
        return InputPlan(inputs, hints, unused)
    plan = InputPlan([])
    for blob in external:
        if blob not in reads and blob not in returned:
            plan.unused.append(blob)
        elif blob not in init_blobs:
            plan.inputs.append(blob)
        elif _is_placeholder(blob, init_blobs[blob], reads.get(blob, []), returned):
            plan.inputs.append(blob)
            plan.hints[blob] = init_blobs[blob]
    # A blob read before any operator writes it, that neither external_input nor the init net
    # provides: Caffe2 refused such a net, but what it can only mean is an input the writer
    # forgot to declare (Glow's test nets have some), so it is one, after the declared ones.
    for blob in reads:
        if blob not in init_blobs and blob not in external:
            plan.inputs.append(blob)
    return plan


def load_net(
    predict_net: NetSource,
    init_net: Optional[NetSource] = None,
    *,
    device: Union[str, torch.device] = "cpu",
    inputs: Optional[list[str]] = None,
    outputs: Optional[list[str]] = None,
    strict: bool = False,
    init_blobs: Optional[dict[str, torch.Tensor]] = None,
    dequantize: bool = False,
) -> torch.fx.GraphModule:
    """Load a Caffe2 NetDef as a ``torch.fx.GraphModule``.

    ``predict_net`` / ``init_net``: a path (binary, or text for ``.pbtxt``/``.prototxt``/
    ``.txt``), ``bytes`` (binary or text), text as ``str``, or a parsed NetDef message. The init
    net runs once: its floating blobs become trainable parameters, the others buffers (as are
    floating blobs read only by operators Caffe2 never differentiates, such as bucket borders).

    The module's ``forward`` takes the predict net's ``external_input`` blobs that are real
    inputs, positionally in that order (see :func:`plan_inputs`: a blob the init net fills only
    as a placeholder is an input, an external input nothing reads is left out), and returns the
    ``external_output`` blobs (one tensor, or a tuple when there are several). ``inputs`` and
    ``outputs`` name the blobs explicitly instead. ``init_blobs`` adds blobs as if an init net
    had produced them (weights read from a predictor file or made by hand); the init net's own
    blobs win on a name clash, as its operators would overwrite them.

    ``dequantize=True`` turns row-wise quantized embedding tables of the init net (the fused
    8/4/2-bit SparseLengths* operators) into trainable float parameters holding their
    dequantized values, so that the model can be fine-tuned;
    :func:`~torch_caffe2ops.caffe2.quantize_tables` quantizes them back.

    Arguments an operator carries that Caffe2's operator does not read are ignored, as Caffe2
    did, and listed in the module's ``caffe2_ignored_arguments``; ``strict=True`` makes them an
    :class:`UnknownArgumentError` that lists all of them.

    Raises :class:`TrainingNetError` for gradient/training operators,
    :class:`UnsupportedOperatorError` (listing every missing type) before building anything.
    The module carries ``caffe2_inputs``, ``caffe2_outputs``, ``caffe2_input_hints`` (name ->
    the init net's placeholder value), ``caffe2_unused_inputs`` and ``caffe2_ignored_arguments``
    (``"Type.argument"`` -> count).
    """
    predict = read_net(predict_net)
    init = read_net(init_net) if init_net is not None else None
    device = torch.device(device)
    nets = ([("init net", init)] if init is not None else []) + [("predict net", predict)]
    check_net(nets)
    if strict:
        for role, net in nets:
            check_strict(net, role)

    blobs = dict(init_blobs or {})
    if init is not None:
        blobs.update(run_init_net(init))
    plan = plan_inputs(predict, blobs, inputs)
    blobs = {b: t for b, t in blobs.items() if b not in plan.inputs}
    graph = torch.fx.Graph()
    ctx = ConversionContext(graph, device)
    params: dict[str, torch.Tensor] = {}
    trainable_blobs = trainable_init_blobs(predict, blobs)
    trainable: set[str] = set()
    ctx.options.update(dequantize=dequantize, init_params=params, trainable=trainable)

    def init_blob(blob: str) -> Optional[torch.fx.Node]:
        if blob not in blobs:
            return None
        if not isinstance(blobs[blob], torch.Tensor):
            raise NetImportError(
                f"init-net blob {blob!r} holds strings ({type(blobs[blob]).__name__}), which no tensor operator reads"
            )
        attr = ctx.fresh_attr(blob)
        params[attr] = blobs[blob].to(device)
        if blob in trainable_blobs:
            trainable.add(attr)
        return graph.get_attr(attr)

    conv = _Converter(ctx, "predict net", init_blob)
    for blob in plan.inputs:
        conv.env[blob] = graph.placeholder(sanitize(blob))
    conv.run(predict)

    if outputs is None:
        outputs = list(predict.external_output)
    if not outputs:
        if not predict.op:
            raise NetImportError("predict net: no operators and no external_output")
        # Hand-written nets often omit external_output; the last operator's outputs are the result.
        outputs = list(predict.op[-1].output)
    values = [conv.value(b, "predict net output") for b in outputs]
    graph.output(values[0] if len(values) == 1 else tuple(values))
    in_place(graph, ctx.modules)
    class_name = sanitize(predict.name) if predict.name else "Caffe2Net"
    gm = _module(ctx, graph, class_name, params, frozenset(trainable))
    gm.caffe2_inputs = list(plan.inputs)
    gm.caffe2_outputs = list(outputs)
    gm.caffe2_input_hints = dict(plan.hints)
    gm.caffe2_unused_inputs = list(plan.unused)
    gm.caffe2_ignored_arguments = {f"{t}.{a}": n for (t, a), n in sorted(conv.ignored.items())}
    return gm
