"""Caffe2 DB records (serialized ``BlobProto``) as torch tensors.

What Caffe2's serializers write (caffe2/core/blob_serialization.cc and friends), and how each
is read here:

- ``type "Tensor"`` (``TensorSerializer``): a ``TensorProto`` with ``dims``, ``data_type`` and the
  values in the field of that type: FLOAT ``float_data`` (or, with ``data_format`` 1 =
  FMT_BFLOAT16, bfloat16 bits in ``raw_data``), DOUBLE ``double_data``, INT32 ``int32_data``,
  INT64 ``int64_data``, STRING ``string_data``; BOOL, UINT8, INT8, UINT16, INT16 and FLOAT16
  (its 16 bits) in ``int32_data``, or little-endian in ``byte_data`` when Caffe2 ran with
  ``caffe2_serialize_using_bytes_as_holder`` / ``caffe2_serialize_fp16_as_bytes``; the legacy
  BYTE type in ``byte_data``. A ``raw_data`` field (little-endian values) is accepted when the
  typed field is empty. A tensor larger than the chunk size is written as several records
  keyed ``name#%0``, ``name#%1``, ... (``kChunkIdSeparator = "#%"``), each holding the elements
  ``[segment.begin, segment.end)`` of the flattened tensor; every tensor record carries the
  suffix, as Caffe2's ``Save`` writes them. The chunks are reassembled; gaps, overlaps and
  duplicates are errors, as in Caffe2's ``Load``.
- ``type "std::string"`` (``StringSerializer``) and every other non-tensor type: the bytes of
  ``content`` (chunked ``content_num_chunks`` / ``content_chunk_id`` records are joined in id
  order). They are not tensors: :func:`read_db` returns them in ``contents`` (with their type in
  ``content_types``), :func:`load_blobs` leaves them out. The predictor's MetaNetDef is one.
- STRING tensors have no torch equivalent: :func:`read_db` returns them in ``string_tensors``
  (shape and the flat list of ``bytes``).
- ``type "Int8TensorCPU"`` (int8_serialization.cc): a ``QTensorProto`` whose ``data`` holds the
  integers (UINT8 or INT32 ``data_type``), ``scale`` and ``bias`` (the zero point). The integer
  tensor is returned as is (``uint8``/``int32``); ``scale`` and the zero point are in
  ``read_db(...).int8_params``.
- ``type "QTensor"`` (qtensor_serialization.h): low-precision values stored as bit planes (one
  plane per bit, 8-element aligned, most significant bit of each byte first); they are
  dequantized to float32 as ``scale * (x + bias)`` (qtensor.h). Signed QTensors (an extra sign
  plane) are rejected: their magnitude encoding is not documented by Caffe2.

Every inconsistency (a value count that disagrees with the shape, negative or overflowing
dims, a segment outside the tensor, an unparsable record) is a :class:`NetImportError` naming
the file, the blob and the DB key. Counts are checked against the values actually present
before anything is allocated, so a hostile ``dims`` cannot ask for more memory than the file
holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from google.protobuf import message

from .db import read_records
from .errors import NetImportError
from .proto import DATA_TYPES, BlobProto

CHUNK_SEPARATOR = "#%"  # caffe2/core/blob_serialization.h: kChunkIdSeparator
TENSOR_TYPE = "Tensor"  # kTensorBlobType
STRING_TYPE = "std::string"
QTENSOR_TYPE = "QTensor"  # kQTensorBlobQType
INT8_TENSOR_TYPE = "Int8TensorCPU"

# Nothing real comes near this; a product beyond it can only be a corrupted shape.
_MAX_NUMEL = 1 << 62

_DT = DATA_TYPES
_FMT_PROTOBUF, _FMT_BFLOAT16 = 0, 1
# data_type -> (torch dtype, itemsize on the wire in byte_data / raw_data)
_DTYPES: dict[int, torch.dtype] = {
    _DT["FLOAT"]: torch.float32,
    _DT["DOUBLE"]: torch.float64,
    _DT["INT32"]: torch.int32,
    _DT["INT64"]: torch.int64,
    _DT["BOOL"]: torch.bool,
    _DT["UINT8"]: torch.uint8,
    _DT["INT8"]: torch.int8,
    _DT["UINT16"]: torch.uint16,
    _DT["INT16"]: torch.int16,
    _DT["FLOAT16"]: torch.float16,
    _DT["BYTE"]: torch.uint8,
}
_TYPED_FIELD = {
    _DT["FLOAT"]: "float_data",
    _DT["DOUBLE"]: "double_data",
    _DT["INT32"]: "int32_data",
    _DT["INT64"]: "int64_data",
}
# Types Caffe2 writes in int32_data, or in byte_data with the bytes-as-holder flags.
_BYTES_OR_INT32 = {_DT[n] for n in ("BOOL", "UINT8", "INT8", "UINT16", "INT16", "FLOAT16")}
_TYPE_NAMES = {v: k for k, v in _DT.items()}


@dataclass
class StringTensor:
    """A Caffe2 STRING tensor: its shape and its values, flattened, as ``bytes``."""

    shape: tuple[int, ...]
    values: list[bytes]


@dataclass
class Int8Params:
    """The quantization of an ``Int8TensorCPU`` blob: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


@dataclass
class DBBlobs:
    """Everything a Caffe2 DB holds, by blob name (DB keys without their chunk suffix)."""

    path: str
    db_type: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    # Non-tensor blobs: the content bytes, and their BlobProto type ("std::string", ...).
    contents: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)
    string_tensors: dict[str, StringTensor] = field(default_factory=dict)
    int8_params: dict[str, Int8Params] = field(default_factory=dict)
    # blob name -> the DB keys it was read from, in DB order
    keys: dict[str, list[str]] = field(default_factory=dict)


def blob_name_of_key(key: str) -> str:
    """The blob a DB key belongs to: the key up to the first ``#%`` (as Caffe2's Load)."""
    pos = key.find(CHUNK_SEPARATOR)
    return key if pos < 0 else key[:pos]


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", errors="backslashreplace")


def _numel(dims: Any, where: str) -> int:
    dims = list(dims)
    if any(d < 0 for d in dims):
        raise NetImportError(f"{where}: negative dims {dims}")
    numel, bound = 1, 1
    for d in dims:
        numel *= d
        bound *= max(d, 1)
        if bound > _MAX_NUMEL:
            raise NetImportError(f"{where}: dims {dims} overflow (more than 2**62 elements)")
    return numel


def _count_error(where: str, field_name: str, have: int, need: int, unit: str = "values") -> NetImportError:
    return NetImportError(
        f"{where}: {field_name} holds {have} {unit}, but the shape/segment needs {need} (corrupted or truncated)"
    )


def _from_bytes(data: bytes, dtype: torch.dtype, n: int, where: str, field_name: str) -> torch.Tensor:
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(data) != n * itemsize:
        raise _count_error(where, field_name, len(data), n * itemsize, "bytes")
    if n == 0:
        return torch.empty(0, dtype=dtype)
    if dtype == torch.bool:
        return torch.frombuffer(bytearray(data), dtype=torch.uint8) != 0
    return torch.frombuffer(bytearray(data), dtype=dtype)


def _from_int32(values: Any, dtype: torch.dtype) -> torch.Tensor:
    """Caffe2's static_cast from the int32_data values (float16: the half's 16 bits)."""
    t = torch.tensor(list(values), dtype=torch.int64)
    if dtype == torch.bool:
        return t != 0
    if dtype == torch.uint8:
        return (t & 0xFF).to(torch.uint8)
    if dtype == torch.int8:
        return (((t & 0xFF) ^ 0x80) - 0x80).to(torch.int8)
    if dtype == torch.uint16:
        return (t & 0xFFFF).to(torch.int32).to(torch.uint16)
    bits = (((t & 0xFFFF) ^ 0x8000) - 0x8000).to(torch.int16)
    return bits.view(torch.float16) if dtype == torch.float16 else bits


def _chunk_values(tp: Any, data_type: int, n: int, where: str) -> torch.Tensor:
    """The ``n`` values of one TensorProto (a whole tensor or one segment), flat."""
    dtype = _DTYPES[data_type]
    fmt = tp.data_format if tp.HasField("data_format") else _FMT_PROTOBUF
    if fmt == _FMT_BFLOAT16 and data_type == _DT["FLOAT"]:
        return _from_bytes(tp.raw_data, torch.bfloat16, n, where, "raw_data (bfloat16)").to(torch.float32)
    if fmt != _FMT_PROTOBUF:
        raise NetImportError(f"{where}: unsupported data_format {fmt} for a {_TYPE_NAMES[data_type]} tensor")
    if data_type == _DT["BYTE"]:
        return _from_bytes(tp.byte_data, dtype, n, where, "byte_data")
    if data_type in _BYTES_OR_INT32 and tp.HasField("byte_data"):
        return _from_bytes(tp.byte_data, dtype, n, where, "byte_data")
    name = _TYPED_FIELD.get(data_type, "int32_data")
    values = getattr(tp, name)
    if len(values) == 0 and tp.HasField("raw_data") and n > 0:
        return _from_bytes(tp.raw_data, dtype, n, where, "raw_data")
    if len(values) != n:
        raise _count_error(where, name, len(values), n)
    if n == 0:
        return torch.empty(0, dtype=dtype)
    if name == "int32_data" and data_type != _DT["INT32"]:
        return _from_int32(values, dtype)
    return torch.tensor(list(values), dtype=dtype)


def _segments(chunks: list[tuple[str, Any]], numel: int, where: str) -> list[tuple[int, int, str, Any]]:
    """The chunks as (begin, end, key, TensorProto), sorted, checked to tile [0, numel)."""
    spans = []
    for key, tp in chunks:
        if tp.HasField("segment"):
            begin, end = tp.segment.begin, tp.segment.end
        else:
            begin, end = 0, numel
        if not 0 <= begin <= end <= numel:
            raise NetImportError(
                f"{where}: key {key!r} has segment [{begin}, {end}) outside the tensor's {numel} elements"
            )
        spans.append((begin, end, key, tp))
    spans.sort(key=lambda s: (s[0], s[1]))
    if len(spans) > 1:
        empty = [s[2] for s in spans if s[0] == s[1]]
        if empty:
            raise NetImportError(f"{where}: a chunked tensor with empty chunk(s) {empty}")
    pos = 0
    for begin, end, key, _ in spans:
        if begin > pos:
            raise NetImportError(f"{where}: chunks leave elements [{pos}, {begin}) missing (before key {key!r})")
        if begin < pos:
            raise NetImportError(f"{where}: chunk {key!r} [{begin}, {end}) overlaps elements before {pos}")
        pos = end
    if pos != numel:
        raise NetImportError(f"{where}: chunks cover {pos} of the tensor's {numel} elements (missing chunks)")
    return spans


def _tensor_blob(name: str, chunks: list[tuple[str, Any]], where: str, out: DBBlobs) -> None:
    for key, proto in chunks:
        if not proto.HasField("tensor"):
            raise NetImportError(f"{where}: key {key!r} is a 'Tensor' blob without a tensor")
    first = chunks[0][1].tensor
    dims = list(first.dims)
    for key, proto in chunks[1:]:
        tp = proto.tensor
        if list(tp.dims) != dims or tp.data_type != first.data_type:
            raise NetImportError(
                f"{where}: chunk {key!r} has dims {list(tp.dims)} / data_type {tp.data_type}, "
                f"but {chunks[0][0]!r} has {dims} / {first.data_type}"
            )
    if not first.HasField("data_type"):
        # Caffe2: "Cannot deserialize tensor: unrecognized data type" (absent, or a number
        # this schema does not know).
        raise NetImportError(f"{where}: the tensor has no (known) data_type")
    data_type = first.data_type
    numel = _numel(dims, where)
    if data_type == _DT["UNDEFINED"]:
        if numel == 0:  # Caffe2 reads an empty untyped tensor as float [0]
            out.tensors[name] = torch.empty(0, dtype=torch.float32)
            return
        raise NetImportError(f"{where}: a tensor of UNDEFINED data_type (serialized objects) is not supported")
    spans = _segments([(k, p.tensor) for k, p in chunks], numel, where)
    if data_type == _DT["STRING"]:
        values: list[bytes] = []
        for begin, end, key, tp in spans:
            if len(tp.string_data) != end - begin:
                raise _count_error(f"{where} (key {key!r})", "string_data", len(tp.string_data), end - begin)
            values.extend(bytes(v) for v in tp.string_data)
        out.string_tensors[name] = StringTensor(tuple(dims), values)
        return
    if data_type not in _DTYPES:
        raise NetImportError(
            f"{where}: data_type {_TYPE_NAMES.get(data_type, data_type)} has no tensor equivalent in PyTorch"
        )
    parts = [_chunk_values(tp, data_type, end - begin, f"{where} (key {key!r})") for begin, end, key, tp in spans]
    flat = parts[0] if len(parts) == 1 else torch.cat(parts)
    out.tensors[name] = flat.reshape(dims)


def _qtensor_blob(name: str, key: str, proto: Any, where: str, out: DBBlobs) -> None:
    if not proto.HasField("qtensor"):
        raise NetImportError(f"{where}: key {key!r} is a {proto.type!r} blob without a qtensor")
    q = proto.qtensor
    dims = list(q.dims)
    numel = _numel(dims, where)
    if proto.type == INT8_TENSOR_TYPE:
        if q.data_type not in (_DT["UINT8"], _DT["INT32"]):
            raise NetImportError(f"{where}: Int8TensorCPU with data_type {q.data_type} (Caffe2 writes UINT8 or INT32)")
        if len(q.data) != numel:
            raise _count_error(where, "qtensor.data", len(q.data), numel)
        t = torch.tensor(list(q.data), dtype=torch.int64)
        t = (t & 0xFF).to(torch.uint8) if q.data_type == _DT["UINT8"] else t.to(torch.int32)
        out.tensors[name] = t.reshape(dims)
        out.int8_params[name] = Int8Params(float(q.scale), int(q.bias))
        return
    # QTensor: bit planes, least significant plane first, 8-element aligned, MSB-first bytes.
    if q.is_signed:
        raise NetImportError(f"{where}: signed QTensor blobs are not supported")
    if not 1 <= q.precision <= 32:
        raise NetImportError(f"{where}: QTensor precision {q.precision} (expected 1 to 32 bits)")
    row_bytes = (numel + 7) // 8
    if len(q.data) != row_bytes * q.precision:
        raise _count_error(where, "qtensor.data", len(q.data), row_bytes * q.precision, "bytes")
    raw = (torch.tensor(list(q.data), dtype=torch.int64) & 0xFF).reshape(q.precision, row_bytes)
    shifts = torch.arange(7, -1, -1, dtype=torch.int64)
    bits = ((raw.unsqueeze(-1) >> shifts) & 1).reshape(q.precision, row_bytes * 8)[:, :numel]
    x = (bits << torch.arange(q.precision, dtype=torch.int64).unsqueeze(1)).sum(0)
    out.tensors[name] = (q.scale * (x.to(torch.float64) + q.bias)).to(torch.float32).reshape(dims)


def _content_blob(name: str, chunks: list[tuple[str, Any]], where: str, out: DBBlobs) -> None:
    first = chunks[0][1]
    if any(p.HasField("content_num_chunks") for _, p in chunks):
        total = first.content_num_chunks
        if total <= 0:
            raise NetImportError(f"{where}: content_num_chunks {total}")
        pieces: dict[int, bytes] = {}
        for key, p in chunks:
            if p.content_num_chunks != total:
                raise NetImportError(f"{where}: key {key!r} disagrees on content_num_chunks")
            cid = p.content_chunk_id
            if not 0 <= cid < total:
                raise NetImportError(f"{where}: key {key!r} has content_chunk_id {cid} outside [0, {total})")
            if cid in pieces:
                raise NetImportError(f"{where}: content chunk {cid} occurs twice")
            pieces[cid] = bytes(p.content)
        if len(pieces) != total:
            missing = sorted(set(range(total)) - set(pieces))
            raise NetImportError(f"{where}: content chunks {missing[:10]} of {total} are missing")
        content = b"".join(pieces[i] for i in range(total))
    else:
        if len(chunks) > 1:
            raise NetImportError(f"{where}: the blob occurs {len(chunks)} times (keys {[k for k, _ in chunks]})")
        content = bytes(first.content)
    out.contents[name] = content
    out.content_types[name] = first.type


def blobs_from_records(records: list[tuple[bytes, bytes]], path: str, db_type: str) -> DBBlobs:
    """Decode a DB's records (see the module docstring)."""
    out = DBBlobs(path, db_type)
    groups: dict[str, list[tuple[str, Any]]] = {}
    seen: set[bytes] = set()
    for raw_key, value in records:
        key = _key_text(raw_key)
        if raw_key in seen:
            raise NetImportError(f"{path}: key {key!r} occurs twice in the DB")
        seen.add(raw_key)
        proto = BlobProto()
        try:
            proto.ParseFromString(value)
        except (message.DecodeError, RuntimeError, ValueError, RecursionError) as e:
            raise NetImportError(
                f"{path}: blob {blob_name_of_key(key)!r} (key {key!r}): the value is not a BlobProto "
                f"({len(value)} bytes; corrupted): {e}"
            ) from None
        if not isinstance(proto.type, str):  # invalid UTF-8 comes back as bytes
            raise NetImportError(
                f"{path}: blob {blob_name_of_key(key)!r} (key {key!r}): the blob type is not UTF-8 text (corrupted)"
            )
        groups.setdefault(blob_name_of_key(key), []).append((key, proto))
    for name, chunks in groups.items():
        where = f"{path}: blob {name!r}"
        types = {p.type for _, p in chunks}
        if len(types) > 1:
            raise NetImportError(f"{where}: its records have different types {sorted(types)}")
        out.keys[name] = [k for k, _ in chunks]
        blob_type = chunks[0][1].type
        if blob_type == TENSOR_TYPE:
            _tensor_blob(name, chunks, where, out)
        elif blob_type in (QTENSOR_TYPE, INT8_TENSOR_TYPE):
            if len(chunks) > 1:
                raise NetImportError(f"{where}: the blob occurs {len(chunks)} times (keys {[k for k, _ in chunks]})")
            _qtensor_blob(name, chunks[0][0], chunks[0][1], where, out)
        else:
            _content_blob(name, chunks, where, out)
    return out


def read_db(path: "os.PathLike[str] | str", *, db_type: Optional[str] = None) -> DBBlobs:
    """Every blob of the Caffe2 DB at ``path`` (``db_type`` ``"minidb"`` or ``"lmdb"``; detected
    when ``None``): tensors, non-tensor contents, STRING tensors and int8 quantization."""
    path = os.fspath(path)
    kind, records = read_records(path, db_type)
    return blobs_from_records(records, path, kind)


def load_blobs(path: "os.PathLike[str] | str", *, db_type: Optional[str] = None) -> dict[str, torch.Tensor]:
    """The tensor blobs of the Caffe2 DB at ``path``, by blob name.

    ``db_type``: ``"minidb"`` or ``"lmdb"``; ``None`` detects it (an lmdb is a directory holding
    ``data.mdb`` or an LMDB data file; anything else is read as minidb). Chunked tensors come
    back whole; ``QTensor`` blobs dequantized to float32; ``Int8TensorCPU`` blobs as their
    integer tensor. Non-tensor blobs (``std::string`` such as a predictor's MetaNetDef, STRING
    tensors) are left out: :func:`read_db` returns them too. Raises :class:`NetImportError` for
    a broken file, naming the blob and key.
    """
    return read_db(path, db_type=db_type).tensors
