"""Caffe2 predictor files: a minidb or lmdb DB written by
``caffe2.python.predictor.predictor_exporter.save_to_db``, opened as a ``torch.fx.GraphModule``.

Such a DB holds (caffe2/proto/predictor_consts.proto, predictor_exporter.py):

- under the key ``"!!META_NET_DEF"``: a ``std::string`` blob whose content is a serialized
  ``MetaNetDef``;
- the parameters, one Tensor blob each (large ones in chunks).

The MetaNetDef maps names (``NetsMap``/``BlobsMap`` keys, suffixed ``_<name>`` when the
exporter was given a predictor name) to

- ``PREDICT_NET_TYPE``: the predict net (``external_input`` = inputs + parameters);
- ``GLOBAL_INIT_NET_TYPE``: a ``Load`` operator that reads the parameters from the DB the
  predictor was opened on (through the ``"!!PREDICTOR_DBREADER"`` blob);
- ``PREDICT_INIT_NET_TYPE``: ``ConstantFill`` placeholders for the inputs and outputs (their
  shapes) and the exporter's ``extra_init_net``;
- ``PARAMETERS_BLOB_TYPE``, ``INPUTS_BLOB_TYPE``, ``OUTPUTS_BLOB_TYPE``: blob name lists.

:func:`load_predictor` takes the parameters the ``Load`` operators name straight from the DB
(honouring ``load_all``, ``source_blob_names``, ``strip_prefix``/``add_prefix`` and
``allow_incomplete``), runs the other operators of the global init net and the predict init
net as the init net, and builds the predict net with ``forward`` taking the MetaNetDef's inputs
in their recorded order and returning its outputs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
import torch.fx
from google.protobuf import message

from .blobs import DBBlobs, read_db
from .errors import NetImportError
from .proto import MetaNetDef, NetDef

# caffe2/proto/predictor_consts.proto (PredictorConsts defaults)
META_NET_DEF = "!!META_NET_DEF"
PREDICTOR_DBREADER = "!!PREDICTOR_DBREADER"
PARAMETERS_BLOB_TYPE = "PARAMETERS_BLOB_TYPE"
INPUTS_BLOB_TYPE = "INPUTS_BLOB_TYPE"
OUTPUTS_BLOB_TYPE = "OUTPUTS_BLOB_TYPE"
GLOBAL_INIT_NET_TYPE = "GLOBAL_INIT_NET_TYPE"
PREDICT_INIT_NET_TYPE = "PREDICT_INIT_NET_TYPE"
PREDICT_NET_TYPE = "PREDICT_NET_TYPE"

# Fill operators of a predictor file's nets with a static shape larger than this are refused
# before anything runs: the init nets are evaluated at load time, and a corrupted shape must
# not become an allocation of any size. Real placeholders are a batch of inputs.
MAX_FILL_ELEMENTS = 1 << 27
_FILL_TYPES = ("ConstantFill", "GaussianFill", "UniformFill", "XavierFill", "MSRAFill", "UniformIntFill")


@dataclass
class PredictorFile:
    """What a predictor file holds, ready for :func:`~torch_caffe2ops.caffe2.load_net`."""

    path: str
    db_type: str
    meta: Any  # the MetaNetDef
    predict_net: Any
    # The global init net without its Load operators, followed by the predict init net.
    init_net: Any
    # The blobs the Load operators take from the DB.
    params: dict[str, torch.Tensor]
    parameters: list[str]
    inputs: list[str]
    outputs: list[str]
    blobs: DBBlobs = field(repr=False)


def _suffixed(key: str, net_name: Optional[str]) -> str:
    return f"{key}_{net_name}" if net_name else key


def _map_get(entries: Any, key: str) -> Any:
    for entry in entries:
        if entry.key == key:
            return entry.value
    return None


def read_meta_net_def(blobs: DBBlobs) -> Any:
    """The MetaNetDef stored under ``"!!META_NET_DEF"``."""
    path = blobs.path
    if META_NET_DEF not in blobs.contents:
        if META_NET_DEF in blobs.keys:
            raise NetImportError(f"{path}: blob {META_NET_DEF!r} is not a std::string blob")
        names = sorted(blobs.keys)
        shown = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
        raise NetImportError(
            f"{path}: no {META_NET_DEF!r} record: a Caffe2 DB, but not a predictor file "
            f"(blobs: {shown or 'none'}); load_blobs reads its tensors"
        )
    meta = MetaNetDef()
    data = blobs.contents[META_NET_DEF]
    try:
        meta.ParseFromString(data)
    except (message.DecodeError, RuntimeError, ValueError, RecursionError) as e:
        raise NetImportError(f"{path}: blob {META_NET_DEF!r}: not a MetaNetDef ({len(data)} bytes; corrupted): {e}") from None
    bad = _bad_text_field(meta)
    if bad:
        raise NetImportError(f"{path}: blob {META_NET_DEF!r}: MetaNetDef field {bad} is not UTF-8 text (corrupted)")
    return meta


def _bad_text_field(msg: Any, trail: str = "") -> Optional[str]:
    """The first ``string`` field holding bytes that are not UTF-8 (the protobuf runtime hands
    such a proto2 field back as ``bytes``), as a path such as ``nets[2].value.op[0].type``."""
    for fd, value in msg.ListFields():
        name = f"{trail}.{fd.name}" if trail else fd.name
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        items = list(value) if repeated else [value]
        for i, item in enumerate(items):
            where = f"{name}[{i}]" if repeated else name
            if fd.type == fd.TYPE_STRING and not isinstance(item, str):
                return where
            if fd.type == fd.TYPE_MESSAGE:
                bad = _bad_text_field(item, where)
                if bad:
                    return bad
    return None


def _check_fills(net: Any, role: str, path: str) -> None:
    for index, op in enumerate(net.op):
        if op.type not in _FILL_TYPES:
            continue
        for arg in op.arg:
            if arg.name == "shape" and arg.ints:
                numel = 1
                for d in arg.ints:
                    numel *= max(int(d), 1)
                if numel > MAX_FILL_ELEMENTS:
                    raise NetImportError(
                        f"{path}: {op.type} ({role} operator #{index}, outputs {list(op.output)}) asks for shape "
                        f"{list(arg.ints)}: more than {MAX_FILL_ELEMENTS} elements, refused (corrupted?)"
                    )


def _load_op_blobs(op: Any, index: int, blobs: DBBlobs, path: str) -> dict[str, torch.Tensor]:
    """The blobs one Load operator of the global init net takes from this DB."""
    where = f"{path}: Load (global init net operator #{index}, outputs {list(op.output)[:5]})"
    args = {a.name: a for a in op.arg}

    def flag(name: str) -> bool:
        return name in args and bool(args[name].i)

    def text(name: str) -> str:
        return args[name].s.decode("utf-8", errors="replace") if name in args else ""

    strip, add = text("strip_prefix"), text("add_prefix")
    sources = [s.decode("utf-8", errors="replace") for s in args["source_blob_names"].strings] if "source_blob_names" in args else []
    if sources and len(sources) != len(op.output):
        raise NetImportError(f"{where}: {len(sources)} source_blob_names for {len(op.output)} outputs")

    def renamed(name: str) -> str:  # load_save_op_util.cc: buildBlobNameFromDbKey
        if strip:
            pos = name.find(strip)
            if pos >= 0:
                name = name[pos + len(strip):]
        return add + name

    available = {renamed(n): t for n, t in blobs.tensors.items()}
    result: dict[str, torch.Tensor] = {}
    if flag("load_all"):
        result.update(available)
        missing = [b for b in op.output if b not in available]
    else:
        wanted = sources or list(op.output)
        missing = []
        for out_name, src in zip(op.output, wanted):
            if src in available:
                result[out_name] = available[src]
            else:
                missing.append(src)
    if missing and not flag("allow_incomplete"):
        shown = sorted(missing)[:10]
        other = [m for m in shown if renamed(m) in blobs.contents or m in blobs.contents or m in blobs.string_tensors]
        detail = f" ({other} are not tensor blobs)" if other else ""
        raise NetImportError(f"{where}: blob(s) {shown} are not in the file{detail}")
    return result


def read_predictor(
    path: "os.PathLike[str] | str", *, db_type: Optional[str] = None, net_name: Optional[str] = None
) -> PredictorFile:
    """Read a predictor file without building the module (see :func:`load_predictor`)."""
    path = os.fspath(path)
    blobs = read_db(path, db_type=db_type)
    meta = read_meta_net_def(blobs)

    def net(kind: str, required: bool) -> Any:
        key = _suffixed(kind, net_name)
        value = _map_get(meta.nets, key)
        if value is None and required:
            names = [n.key for n in meta.nets]
            plans = [p.key for p in meta.plans]
            hint = f"; it holds plans {plans} (PlanDef predictors are not supported)" if plans else ""
            raise NetImportError(f"{path}: the MetaNetDef has no net {key!r} (nets: {names}){hint}")
        return value

    def blob_list(kind: str) -> Optional[list[str]]:
        value = _map_get(meta.blobs, _suffixed(kind, net_name))
        return None if value is None else list(value)

    predict = net(PREDICT_NET_TYPE, True)
    global_init = net(GLOBAL_INIT_NET_TYPE, False)
    predict_init = net(PREDICT_INIT_NET_TYPE, False)
    inputs = blob_list(INPUTS_BLOB_TYPE)
    outputs = blob_list(OUTPUTS_BLOB_TYPE)
    parameters = blob_list(PARAMETERS_BLOB_TYPE) or []
    if inputs is None:
        raise NetImportError(f"{path}: the MetaNetDef has no {_suffixed(INPUTS_BLOB_TYPE, net_name)!r} blob list")
    if outputs is None:
        outputs = list(predict.external_output)

    params: dict[str, torch.Tensor] = {}
    init = NetDef(name="predictor_init")
    for role, source in (("global init net", global_init), ("predict init net", predict_init)):
        if source is None:
            continue
        _check_fills(source, role, path)
        for index, op in enumerate(source.op):
            if op.type == "Load" and role == "global init net":
                params.update(_load_op_blobs(op, index, blobs, path))
            else:
                init.op.add().CopyFrom(op)
    _check_fills(predict, "predict net", path)
    loaded = set(params)
    for index, op in enumerate(init.op):
        read = [b for b in op.input if b in loaded]
        if read:
            raise NetImportError(
                f"{path}: {op.type} (init operator #{index}) reads {read}, which a Load operator fills: "
                "operators over loaded parameters in an init net are not supported"
            )
    missing = [p for p in parameters if p not in params]
    if missing:
        raise NetImportError(f"{path}: parameter blob(s) {missing[:10]} listed in the MetaNetDef are not loaded by its global init net")
    return PredictorFile(path, blobs.db_type, meta, predict, init, params, parameters, inputs, outputs, blobs)


def load_predictor(
    path: "os.PathLike[str] | str",
    *,
    db_type: Optional[str] = None,
    device: Union[str, torch.device] = "cpu",
    net_name: Optional[str] = None,
    **load_net_kwargs: Any,
) -> torch.fx.GraphModule:
    """Load a Caffe2 predictor file (``predictor_exporter.save_to_db``) as a ``torch.fx.GraphModule``.

    ``path``: a minidb file, or an lmdb directory / data file (``db_type`` ``"minidb"`` or
    ``"lmdb"``; detected when ``None``; lmdb needs ``pip install "torch_caffe2ops[lmdb]"``).
    ``net_name``: the predictor name given to the exporter (its MetaNetDef keys end in
    ``_<net_name>``), for files holding several predictors.

    ``forward`` takes the MetaNetDef's inputs (``INPUTS_BLOB_TYPE``) positionally, in the order
    recorded there, and returns its outputs (one tensor, or a tuple). The parameters come from
    the file (what the global init net's ``Load`` operators read); the predict init net's
    placeholders become ``caffe2_input_hints``. Other keyword arguments (``strict``, ``inputs``,
    ``outputs``) go to :func:`~torch_caffe2ops.caffe2.load_net`. The module also carries
    ``caffe2_predictor_file`` and ``caffe2_model_info`` (the MetaNetDef's ModelInfo as a dict).

    A broken or hostile file is a :class:`NetImportError` naming the file and the blob or key.
    """
    from .loader import load_net

    pf = read_predictor(path, db_type=db_type, net_name=net_name)
    load_net_kwargs.setdefault("inputs", pf.inputs)
    load_net_kwargs.setdefault("outputs", pf.outputs)
    try:
        gm = load_net(pf.predict_net, pf.init_net, device=device, init_blobs=pf.params, **load_net_kwargs)
    except NetImportError as e:
        raise type(e)(f"{pf.path}: {e}") from None
    gm.caffe2_predictor_file = pf.path
    info = pf.meta.modelInfo
    gm.caffe2_model_info = {f.name: v for f, v in info.ListFields()} if pf.meta.HasField("modelInfo") else {}
    return gm
