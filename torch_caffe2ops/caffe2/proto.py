"""Caffe2's NetDef messages and the readers that turn files, bytes or text into them.

The message classes are built at import time from a descriptor written out below (the same
schema as ``caffe2.proto`` next to this file). Building them in Python, instead of shipping
protoc output, keeps the package independent of the protobuf runtime's generated-code version.
The descriptor lives in a private pool so that it cannot clash with another ``caffe2``
package a user may have registered (for example an old ``caffe2_pb2``).
"""
from __future__ import annotations

import os
from typing import Any, Union

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message, text_format
except ImportError as e:  # pragma: no cover - protobuf is optional for the rest of the package
    raise ImportError(
        "torch_caffe2ops.caffe2 reads Caffe2 protobufs and needs the protobuf package: pip install protobuf"
    ) from e

_F = descriptor_pb2.FieldDescriptorProto

_OPT, _REP, _REQ = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED, _F.LABEL_REQUIRED
_TYPES = {
    "int64": _F.TYPE_INT64,
    "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# Caffe2's TensorProto.DataType numbers (wire facts; Cast's `to` and fills' `dtype` use them).
DATA_TYPES = {
    "UNDEFINED": 0, "FLOAT": 1, "INT32": 2, "BYTE": 3, "STRING": 4, "BOOL": 5, "UINT8": 6,
    "INT8": 7, "UINT16": 8, "INT16": 9, "INT64": 10, "FLOAT16": 12, "DOUBLE": 13,
    "ZERO_COLLISION_HASH": 14, "REBATCHING_BUFFER": 15,
}

# (name, number, label, type, default) — type is a scalar name or ".caffe2.Message"/enum path.
_MESSAGES: dict[str, list[tuple]] = {
    "TensorProto": [
        ("dims", 1, _REP, "int64", None),
        ("data_type", 2, _OPT, ".caffe2.TensorProto.DataType", "FLOAT"),
        ("data_format", 15, _OPT, "uint32", "0"),
        ("float_data", 3, _REP, "float", None),
        ("int32_data", 4, _REP, "int32", None),
        ("byte_data", 5, _OPT, "bytes", None),
        ("string_data", 6, _REP, "bytes", None),
        ("double_data", 9, _REP, "double", None),
        ("int64_data", 10, _REP, "int64", None),
        ("raw_data", 13, _OPT, "bytes", None),
        ("name", 7, _OPT, "string", None),
        ("device_detail", 8, _OPT, ".caffe2.DeviceOption", None),
        ("segment", 11, _OPT, ".caffe2.TensorProto.Segment", None),
    ],
    "Argument": [
        ("name", 1, _OPT, "string", None),
        ("f", 2, _OPT, "float", None),
        ("i", 3, _OPT, "int64", None),
        ("s", 4, _OPT, "bytes", None),
        ("t", 10, _OPT, ".caffe2.TensorProto", None),
        ("n", 8, _OPT, ".caffe2.NetDef", None),
        ("floats", 5, _REP, "float", None),
        ("ints", 6, _REP, "int64", None),
        ("strings", 7, _REP, "bytes", None),
        ("tensors", 11, _REP, ".caffe2.TensorProto", None),
        ("nets", 9, _REP, ".caffe2.NetDef", None),
    ],
    "DeviceOption": [
        ("device_type", 1, _OPT, "int32", "0"),
        ("device_id", 2, _OPT, "int32", None),
        ("random_seed", 3, _OPT, "uint32", None),
        ("node_name", 4, _OPT, "string", None),
        ("numa_node_id", 5, _OPT, "int32", None),
        ("extra_info", 6, _REP, "string", None),
    ],
    "OperatorDef": [
        ("input", 1, _REP, "string", None),
        ("output", 2, _REP, "string", None),
        ("name", 3, _OPT, "string", None),
        ("type", 4, _OPT, "string", None),
        ("arg", 5, _REP, ".caffe2.Argument", None),
        ("device_option", 6, _OPT, ".caffe2.DeviceOption", None),
        ("engine", 7, _OPT, "string", None),
        ("control_input", 8, _REP, "string", None),
        ("is_gradient_op", 9, _OPT, "bool", "false"),
        ("debug_info", 10, _OPT, "string", None),
        ("domain", 11, _OPT, "string", None),
        ("op_version", 12, _OPT, "int64", None),
    ],
    "NetDef": [
        ("name", 1, _OPT, "string", None),
        ("op", 2, _REP, ".caffe2.OperatorDef", None),
        ("type", 3, _OPT, "string", None),
        ("num_workers", 4, _OPT, "int32", None),
        ("device_option", 5, _OPT, ".caffe2.DeviceOption", None),
        ("arg", 6, _REP, ".caffe2.Argument", None),
        ("external_input", 7, _REP, "string", None),
        ("external_output", 8, _REP, "string", None),
    ],
}
_PACKED = {("TensorProto", n) for n in ("float_data", "int32_data", "double_data", "int64_data")}


def _add_fields(msg: descriptor_pb2.DescriptorProto, owner: str, fields: list[tuple]) -> None:
    for name, number, label, typ, default in fields:
        f = msg.field.add(name=name, number=number, label=label)
        if typ in _TYPES:
            f.type = _TYPES[typ]
        else:
            f.type_name = typ
            f.type = _F.TYPE_ENUM if typ.endswith("DataType") else _F.TYPE_MESSAGE
        if default is not None:
            f.default_value = default
        if (owner, name) in _PACKED:
            f.options.packed = True


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="torch_caffe2ops/caffe2/caffe2.proto", package="caffe2", syntax="proto2"
    )
    for owner, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=owner)
        _add_fields(msg, owner, fields)
        if owner == "TensorProto":
            enum = msg.enum_type.add(name="DataType")
            for key, number in DATA_TYPES.items():
                enum.value.add(name=key, number=number)
            seg = msg.nested_type.add(name="Segment")
            _add_fields(seg, "Segment", [("begin", 1, _REQ, "int64", None), ("end", 2, _REQ, "int64", None)])
    return fdp


def _message_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    classes = {}
    for name in _MESSAGES:
        desc = pool.FindMessageTypeByName(f"caffe2.{name}")
        try:  # protobuf >= 4.22
            from google.protobuf.message_factory import GetMessageClass

            classes[name] = GetMessageClass(desc)
        except ImportError:  # older runtimes only have the factory object
            from google.protobuf import message_factory

            classes[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return classes


_CLASSES = _message_classes()
TensorProto: Any = _CLASSES["TensorProto"]
Argument: Any = _CLASSES["Argument"]
DeviceOption: Any = _CLASSES["DeviceOption"]
OperatorDef: Any = _CLASSES["OperatorDef"]
NetDef: Any = _CLASSES["NetDef"]

NetSource = Union["os.PathLike[str]", str, bytes, bytearray, memoryview, message.Message]

TEXT_SUFFIXES = (".pbtxt", ".prototxt", ".txt", ".pbtext", ".textproto")


def _parse_text(text: str, where: str) -> Any:
    net = NetDef()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        raise ValueError(f"{where}: not a Caffe2 NetDef in protobuf text format: {e}") from e
    return net


def _parse_bytes(data: bytes, where: str) -> Any:
    net = NetDef()
    try:
        net.ParseFromString(data)
        # Text bytes almost never parse as binary; a binary parse that yields nothing from a
        # non-empty buffer means it was text (or garbage) after all.
        if data and (net.ByteSize() == 0):
            raise message.DecodeError("no known field")
        return net
    except message.DecodeError as binary_error:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not a Caffe2 NetDef (binary parse failed: {binary_error})") from None
        return _parse_text(text, where)


def _looks_like_path(s: str) -> bool:
    return "\n" not in s and len(s) < 4096 and (os.path.exists(s) or s.endswith((".pb", *TEXT_SUFFIXES)))


def read_net(source: NetSource) -> Any:
    """A ``caffe2.NetDef`` message from a path, binary or text bytes, text as ``str``, or a message.

    A message of another NetDef class (for example from an old ``caffe2_pb2`` module) is
    re-read through its wire form, so the result is always this module's ``NetDef``.
    """
    if isinstance(source, message.Message):
        if source.DESCRIPTOR.full_name != "caffe2.NetDef":
            raise TypeError(f"expected a caffe2.NetDef message, got {source.DESCRIPTOR.full_name}")
        if isinstance(source, NetDef):
            return source
        return _parse_bytes(source.SerializeToString(), "NetDef message")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _parse_bytes(bytes(source), "NetDef bytes")
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        path = os.fspath(source)
        with open(path, "rb") as fh:
            data = fh.read()
        if path.lower().endswith(TEXT_SUFFIXES):
            return _parse_text(data.decode("utf-8"), path)
        return _parse_bytes(data, path)
    if isinstance(source, str):
        return _parse_text(source, "NetDef text")
    raise TypeError(f"cannot read a NetDef from {type(source).__name__}")


def to_text(net: Any) -> str:
    """The protobuf text form of a message (what Caffe2 wrote as ``.pbtxt``)."""
    return text_format.MessageToString(net)
