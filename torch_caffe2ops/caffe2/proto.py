"""Caffe2's protobuf messages (NetDef, TensorProto, BlobProto, MetaNetDef, ...) and the readers
that turn files, bytes or text into NetDefs.

The message classes are built at import time from ``caffe2.proto`` next to this file, the one
statement of the schema: a small reader turns it into a descriptor. Building them in Python,
instead of shipping protoc output, keeps the package independent of the protobuf runtime's
generated-code version. The descriptor lives in a private pool so that it cannot clash with
another ``caffe2`` package a user may have registered (for example an old ``caffe2_pb2``).
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional, Union

from ._deps import require_protobuf

require_protobuf()
from google.protobuf import descriptor_pb2, descriptor_pool, message, text_format  # noqa: E402

from .errors import NetImportError  # noqa: E402

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32, "uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_LABELS = {"optional": _F.LABEL_OPTIONAL, "repeated": _F.LABEL_REPEATED, "required": _F.LABEL_REQUIRED}
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caffe2.proto")
_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|-?\d+|[{}=;\[\],]')


def _tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    return _TOKEN.findall(text)


class _SchemaReader:
    """Reads the proto2 subset caffe2.proto uses (package, messages, nested messages and enums,
    scalar/message/enum fields with labels, ``default`` and ``packed`` options) into a
    FileDescriptorProto. Type names are resolved afterwards, scope by scope, as protoc does."""

    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.pos = 0

    def take(self, expected: Optional[str] = None) -> str:
        tok = self.toks[self.pos]
        if expected is not None and tok != expected:
            raise ValueError(f"caffe2.proto: expected {expected!r}, found {tok!r} (token {self.pos})")
        self.pos += 1
        return tok

    def file(self) -> descriptor_pb2.FileDescriptorProto:
        fdp = descriptor_pb2.FileDescriptorProto(name="torch_caffe2ops/caffe2/caffe2.proto", syntax="proto2")
        while self.pos < len(self.toks):
            tok = self.take()
            if tok == "syntax":
                self.take("=")
                self.take()
                self.take(";")
            elif tok == "package":
                fdp.package = self.take()
                self.take(";")
            elif tok == "message":
                self.message(fdp.message_type.add())
            elif tok == "enum":
                self.enum(fdp.enum_type.add())
            else:
                raise ValueError(f"caffe2.proto: unexpected {tok!r} at file level")
        return fdp

    def enum(self, enum: Any) -> None:
        enum.name = self.take()
        self.take("{")
        while self.toks[self.pos] != "}":
            name = self.take()
            self.take("=")
            enum.value.add(name=name, number=int(self.take()))
            self.take(";")
        self.take("}")

    def message(self, msg: Any) -> None:
        msg.name = self.take()
        self.take("{")
        while self.toks[self.pos] != "}":
            tok = self.take()
            if tok == "message":
                self.message(msg.nested_type.add())
            elif tok == "enum":
                self.enum(msg.enum_type.add())
            elif tok in _LABELS:
                self.field(msg.field.add(label=_LABELS[tok]))
            else:
                raise ValueError(f"caffe2.proto: unexpected {tok!r} in message {msg.name}")
        self.take("}")

    def field(self, f: Any) -> None:
        typ = self.take()
        f.name = self.take()
        self.take("=")
        f.number = int(self.take())
        if typ in _SCALARS:
            f.type = _SCALARS[typ]
        else:
            f.type_name = typ  # resolved later
        if self.toks[self.pos] == "[":
            self.take("[")
            while True:
                key = self.take()
                self.take("=")
                value = self.take()
                if key == "default":
                    f.default_value = value.strip('"')
                elif key == "packed":
                    f.options.packed = value == "true"
                if self.take() == "]":
                    break
        self.take(";")


def _resolve(fdp: descriptor_pb2.FileDescriptorProto) -> None:
    """Turn each field's relative type name into a full one (and mark enums), innermost scope first."""
    kinds: dict[str, int] = {}

    def collect(scope: str, messages: Any, enums: Any) -> None:
        for e in enums:
            kinds[f"{scope}.{e.name}"] = _F.TYPE_ENUM
        for m in messages:
            kinds[f"{scope}.{m.name}"] = _F.TYPE_MESSAGE
            collect(f"{scope}.{m.name}", m.nested_type, m.enum_type)

    root = f".{fdp.package}"
    collect(root, fdp.message_type, fdp.enum_type)

    def fix(scope: str, messages: Any) -> None:
        for m in messages:
            inner = f"{scope}.{m.name}"
            for f in m.field:
                if not f.type_name:
                    continue
                parts = inner.split(".")
                while parts:
                    candidate = ".".join(parts + [f.type_name])
                    if candidate in kinds:
                        f.type_name, f.type = candidate, kinds[candidate]
                        break
                    parts.pop()
                else:
                    raise ValueError(f"caffe2.proto: unknown type {f.type_name!r} in {inner}")
            fix(inner, m.nested_type)

    fix(root, fdp.message_type)


def _message_classes() -> dict[str, type]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        fdp = _SchemaReader(fh.read()).file()
    _resolve(fdp)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = {}
    for m in fdp.message_type:
        desc = pool.FindMessageTypeByName(f"{fdp.package}.{m.name}")
        try:  # protobuf >= 4.22
            from google.protobuf.message_factory import GetMessageClass

            classes[m.name] = GetMessageClass(desc)
        except ImportError:  # older runtimes only have the factory object
            from google.protobuf import message_factory

            classes[m.name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return classes


_CLASSES = _message_classes()
TensorProto: Any = _CLASSES["TensorProto"]
QTensorProto: Any = _CLASSES["QTensorProto"]
TensorProtos: Any = _CLASSES["TensorProtos"]
Argument: Any = _CLASSES["Argument"]
DeviceOption: Any = _CLASSES["DeviceOption"]
OperatorDef: Any = _CLASSES["OperatorDef"]
NetDef: Any = _CLASSES["NetDef"]
PlanDef: Any = _CLASSES["PlanDef"]
BlobProto: Any = _CLASSES["BlobProto"]
MetaNetDef: Any = _CLASSES["MetaNetDef"]

# Caffe2's TensorProto.DataType numbers by name (Cast's `to` and the fills' `dtype` use them).
DATA_TYPES = {v.name: v.number for v in TensorProto.DESCRIPTOR.enum_types_by_name["DataType"].values}

NetSource = Union["os.PathLike[str]", str, bytes, bytearray, memoryview, message.Message]

TEXT_SUFFIXES = (".pbtxt", ".prototxt", ".txt", ".pbtext", ".textproto")


def _parse_text(text: str, where: str) -> Any:
    net = NetDef()
    try:
        # A newer writer's fields are skipped, as a binary parse keeps them as unknown fields.
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as e:
        raise NetImportError(f"{where}: not a Caffe2 NetDef in protobuf text format: {e}") from None
    return net


def _looks_like_text(data: bytes) -> bool:
    """Text format is printable UTF-8; a binary NetDef starts with a field tag byte and holds
    length prefixes, which are control characters in all but freak cases."""
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut multi-byte character at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\n\r\t\f\v" for c in text)


def _parse_bytes(data: bytes, where: str) -> Any:
    if data and _looks_like_text(data):
        return _parse_text(data.decode("utf-8", errors="replace"), where)
    net = NetDef()
    try:
        net.ParseFromString(data)
    except message.DecodeError as e:
        raise NetImportError(
            f"{where}: a broken binary NetDef ({len(data)} bytes; truncated or corrupted): {e}"
        ) from None
    if data and net.ByteSize() == 0:
        raise NetImportError(f"{where}: {len(data)} bytes that hold no NetDef field")
    return check_strings(net, where)


def check_strings(net: Any, where: str) -> Any:
    """A binary NetDef whose string fields are not UTF-8 parses with ``bytes`` in them on some
    protobuf runtimes; name the first such field instead of failing later on a bytes/str mix."""
    def bad(value: Any) -> bool:
        return not isinstance(value, str)

    fields = [("name", net.name), ("type", net.type)]
    fields += [("external_input", b) for b in net.external_input]
    fields += [("external_output", b) for b in net.external_output]
    for i, op in enumerate(net.op):
        fields += [(f"op #{i} type", op.type), (f"op #{i} name", op.name), (f"op #{i} engine", op.engine)]
        fields += [(f"op #{i} input", b) for b in op.input]
        fields += [(f"op #{i} output", b) for b in op.output]
        fields += [(f"op #{i} argument name", a.name) for a in op.arg]
    for label, value in fields:
        if bad(value):
            raise NetImportError(f"{where}: the NetDef's {label} is not UTF-8 text: {value!r}")
    return net


def _looks_like_path(s: str) -> bool:
    return "\n" not in s and len(s) < 4096 and (os.path.exists(s) or s.endswith((".pb", *TEXT_SUFFIXES)))


def read_file(path: str) -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a :class:`NetImportError`."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise NetImportError(f"{path}: cannot read the file: {e.strerror or e}") from None


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
        data = read_file(path)
        if path.lower().endswith(TEXT_SUFFIXES):
            try:
                return _parse_text(data.decode("utf-8"), path)
            except UnicodeDecodeError:
                raise NetImportError(f"{path}: a text NetDef file that is not UTF-8 text") from None
        return _parse_bytes(data, path)
    if isinstance(source, str):
        return _parse_text(source, "NetDef text")
    raise TypeError(f"cannot read a NetDef from {type(source).__name__}")


def to_text(net: Any) -> str:
    """The protobuf text form of a message (what Caffe2 wrote as ``.pbtxt``)."""
    return text_format.MessageToString(net)
