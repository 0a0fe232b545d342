"""Writes Caffe2 DBs and predictor files from the wire format, for the tests (no Caffe2 needed).

Follows Caffe2's own writers:

- minidb records (caffe2/core/db.cc, MiniDBTransaction::Put): int32 key length, int32 value
  length, key, value; lmdb through the ``lmdb`` package (caffe2/db/lmdb.cc: mdb_put per key).
- tensor blobs as TensorSerializer writes them (caffe2/core/blob_serialization.cc): BlobProto
  type "Tensor", the TensorProto with dims, data_type, a segment, the values in the field of
  their type; key ``name#%<chunk index>`` (kChunkIdSeparator), one record per chunk of
  ``chunk_size`` elements.
- ``std::string`` blobs (StringSerializer): type "std::string", ``content``; key = the name.
- predictor files as caffe2.python.predictor.predictor_exporter.save_to_db: the MetaNetDef
  (get_meta_net_def: predict init net with ConstantFill placeholders for inputs and outputs,
  global init net = Load from "!!PREDICTOR_DBREADER" of the parameters, predict net with
  external_input = inputs + parameters, the three blob lists) under "!!META_NET_DEF", written
  first, then the parameters in order.
"""
from __future__ import annotations

import os
import struct
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from torch_caffe2ops.caffe2.proto import DATA_TYPES, BlobProto, MetaNetDef, NetDef

META_NET_DEF = "!!META_NET_DEF"
PREDICTOR_DBREADER = "!!PREDICTOR_DBREADER"

Record = tuple[bytes, bytes]

_FIELDS = {
    np.dtype(np.float32): ("FLOAT", "float_data"),
    np.dtype(np.float64): ("DOUBLE", "double_data"),
    np.dtype(np.int32): ("INT32", "int32_data"),
    np.dtype(np.int64): ("INT64", "int64_data"),
    np.dtype(np.bool_): ("BOOL", "int32_data"),
    np.dtype(np.uint8): ("UINT8", "int32_data"),
    np.dtype(np.int8): ("INT8", "int32_data"),
    np.dtype(np.uint16): ("UINT16", "int32_data"),
    np.dtype(np.int16): ("INT16", "int32_data"),
    np.dtype(np.float16): ("FLOAT16", "int32_data"),
}


def tensor_records(
    name: str, value: Any, chunk_size: Optional[int] = None, *, as_bytes: bool = False
) -> list[Record]:
    """The DB records of one tensor blob. ``as_bytes``: the small types in ``byte_data``
    (Caffe2's ``caffe2_serialize_using_bytes_as_holder``)."""
    value = np.asarray(value)
    data_type, field_name = _FIELDS[value.dtype]
    flat = value.reshape(-1)
    numel = flat.size
    size = chunk_size or numel + 1
    records = []
    begin = 0
    while begin < max(numel, 1):
        end = min(begin + size, numel)
        blob = BlobProto(name=name, type="Tensor")
        tp = blob.tensor
        tp.name = name
        tp.dims.extend(value.shape)
        tp.data_type = DATA_TYPES[data_type]
        tp.segment.begin = begin
        tp.segment.end = end
        part = flat[begin:end]
        if field_name == "int32_data" and as_bytes and data_type != "INT32":
            tp.byte_data = part.astype(part.dtype.newbyteorder("<")).tobytes()
        elif value.dtype == np.float16:
            getattr(tp, field_name).extend(int(v) for v in part.view(np.uint16))
        elif field_name == "int32_data":
            tp.int32_data.extend(int(v) for v in part.tolist())
        else:
            getattr(tp, field_name).extend(part.tolist())
        records.append((f"{name}#%{begin // size}".encode(), blob.SerializeToString()))
        begin += size
    return records


def string_record(name: str, content: bytes) -> Record:
    blob = BlobProto(name=name, type="std::string", content=content)
    return name.encode(), blob.SerializeToString()


def _add_op(net: Any, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **args: Any) -> Any:
    op = net.op.add(type=op_type, input=list(inputs), output=list(outputs))
    for key, value in args.items():
        a = op.arg.add(name=key)
        if isinstance(value, (bool, int)):
            a.i = int(value)
        elif isinstance(value, float):
            a.f = value
        elif isinstance(value, str):
            a.s = value.encode()
        elif all(isinstance(v, int) for v in value):
            a.ints.extend(value)
        else:
            a.strings.extend(v.encode() for v in value)
    return op


def meta_net_def(
    predict_net: Any,
    parameters: Sequence[str],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: dict[str, Sequence[int]],
    name: str = "",
) -> Any:
    """predictor_exporter.get_meta_net_def for a NetDef (with predictor_py_utils's helpers)."""
    suffix = f"_{name}" if name else ""
    meta = MetaNetDef()
    init = NetDef(name="predict-init")
    for blob in list(inputs) + list(outputs):
        _add_op(init, "ConstantFill", [], [blob], shape=list(shapes[blob]), value=0.0)
    init.external_input.extend(list(inputs) + list(outputs))
    meta.nets.add(key="PREDICT_INIT_NET_TYPE" + suffix, value=init)
    global_init = NetDef(name="global-init")
    _add_op(global_init, "Load", [PREDICTOR_DBREADER], list(parameters))
    global_init.external_input.append(PREDICTOR_DBREADER)
    global_init.external_output.extend(parameters)
    meta.nets.add(key="GLOBAL_INIT_NET_TYPE" + suffix, value=global_init)
    predict = NetDef(name=predict_net.name or "predict")
    predict.op.extend(predict_net.op)
    predict.external_input.extend(list(inputs) + list(parameters))
    predict.external_output.extend(outputs)
    meta.nets.add(key="PREDICT_NET_TYPE" + suffix, value=predict)
    for kind, blobs in (("PARAMETERS_BLOB_TYPE", parameters), ("INPUTS_BLOB_TYPE", inputs), ("OUTPUTS_BLOB_TYPE", outputs)):
        meta.blobs.add(key=kind + suffix, value=list(blobs))
    return meta


def predictor_records(
    meta: Any, params: dict[str, Any], chunk_sizes: Optional[dict[str, int]] = None
) -> list[Record]:
    """save_to_db's records: the MetaNetDef first, then the parameters in order."""
    chunk_sizes = chunk_sizes or {}
    records = [string_record(META_NET_DEF, meta.SerializeToString())]
    for name, value in params.items():
        records.extend(tensor_records(name, value, chunk_sizes.get(name)))
    return records


def minidb_bytes(records: Iterable[Record]) -> bytes:
    out = bytearray()
    for key, value in records:
        out += struct.pack("<ii", len(key), len(value)) + key + value
    return bytes(out)


def write_minidb(path: "os.PathLike[str] | str", records: Iterable[Record]) -> None:
    with open(path, "wb") as fh:
        fh.write(minidb_bytes(records))


def write_lmdb(path: "os.PathLike[str] | str", records: Iterable[Record], *, subdir: bool = True) -> None:
    import lmdb

    env = lmdb.open(os.fspath(path), map_size=1 << 26, subdir=subdir)
    try:
        with env.begin(write=True) as txn:
            for key, value in records:
                txn.put(key, value)
    finally:
        env.close()


# --------------------------------------------------------------------------------------------
# the ranking net of the tests
# --------------------------------------------------------------------------------------------

RANKING_INPUTS = ["dense", "ids", "lengths"]
RANKING_OUTPUTS = ["prob"]
EMB_ROWS, EMB_DIM, DENSE_DIM, HIDDEN = 50, 3, 4, 3
BATCH = 2


def ranking_net() -> Any:
    """FC(dense) and SparseLengthsSum(emb, ids, lengths), concatenated, FC, Sigmoid."""
    net = NetDef(name="ranker")
    _add_op(net, "FC", ["dense", "fc_w", "fc_b"], ["fc"])
    _add_op(net, "SparseLengthsSum", ["emb", "ids", "lengths"], ["pooled"])
    _add_op(net, "Concat", ["fc", "pooled"], ["cat", "cat_split_info"], axis=1)
    _add_op(net, "FC", ["cat", "top_w", "top_b"], ["logit"])
    _add_op(net, "Sigmoid", ["logit"], ["prob"])
    return net


def ranking_params(seed: int = 0) -> dict[str, np.ndarray]:
    rs = np.random.RandomState(seed)
    return {
        "fc_w": rs.randn(HIDDEN, DENSE_DIM).astype(np.float32),
        "fc_b": rs.randn(HIDDEN).astype(np.float32),
        "emb": rs.randn(EMB_ROWS, EMB_DIM).astype(np.float32),  # chunked
        "top_w": rs.randn(1, HIDDEN + EMB_DIM).astype(np.float32),
        "top_b": rs.randn(1).astype(np.float32),
    }


RANKING_SHAPES = {"dense": [BATCH, DENSE_DIM], "ids": [5], "lengths": [BATCH], "prob": [BATCH, 1]}
EMB_CHUNK = 40  # 150 elements -> 4 chunks


def ranking_records(seed: int = 0, name: str = "") -> list[Record]:
    params = ranking_params(seed)
    meta = meta_net_def(ranking_net(), list(params), RANKING_INPUTS, RANKING_OUTPUTS, RANKING_SHAPES, name)
    return predictor_records(meta, params, {"emb": EMB_CHUNK})


def ranking_init_net(seed: int = 0) -> Any:
    """The same parameters as a plain init net (GivenTensorFill), for load_net."""
    init = NetDef(name="init")
    for name, value in ranking_params(seed).items():
        op = _add_op(init, "GivenTensorFill", [], [name], shape=list(value.shape))
        op.arg.add(name="values").floats.extend(value.reshape(-1).tolist())
    return init


def ranking_predict_net() -> Any:
    net = ranking_net()
    net.external_input.extend(RANKING_INPUTS + list(ranking_params()))
    net.external_output.extend(RANKING_OUTPUTS)
    return net
