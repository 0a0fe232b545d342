"""Readers for Caffe2's key-value databases: ``minidb`` (a single file) and ``lmdb``.

A Caffe2 DB is an ordered sequence of (key, value) records; the values written by Caffe2's
``Save`` operator are serialized ``BlobProto`` messages (see :mod:`.blobs`).

minidb (caffe2/core/db.cc, ``MiniDBTransaction::Put``): records back to back, each

    int32 key length | int32 value length | key bytes | value bytes

with native (little-endian on every platform Caffe2 ran on) 32-bit ints; both lengths are
positive. The reader checks every length against the bytes left in the file before reading, so
a truncated or corrupted file is a :class:`NetImportError`, never an oversized allocation.

lmdb (caffe2/db/lmdb.cc): an LMDB environment, usually a directory holding ``data.mdb``; keys
come back in byte order. Reading one needs the optional ``lmdb`` package
(``pip install "torch_caffe2ops[lmdb]"``).
"""
from __future__ import annotations

import os
import struct
from typing import Iterator, Optional

from ._deps import require_lmdb
from .errors import NetImportError

MINIDB = "minidb"
LMDB = "lmdb"
DB_TYPES = (MINIDB, LMDB)
# Caffe2 registered each DB under two names (REGISTER_CAFFE2_DB(MiniDB, ...), (minidb, ...)).
_ALIASES = {"minidb": MINIDB, "lmdb": LMDB}

_HEADER = struct.Struct("<ii")
# An LMDB data file starts with a meta page: a 16-byte page header, then MDB_meta whose first
# field is the magic number 0xBEEFC0DE.
_LMDB_MAGIC = 0xBEEFC0DE
_LMDB_MAGIC_AT = 16


def _normalize_db_type(db_type: str, path: str) -> str:
    key = db_type.lower()
    if key not in _ALIASES:
        raise NetImportError(f"{path}: unknown Caffe2 db_type {db_type!r} (supported: {', '.join(DB_TYPES)})")
    return _ALIASES[key]


def _is_lmdb_file(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_LMDB_MAGIC_AT + 4)
    except OSError:
        return False
    return len(head) == _LMDB_MAGIC_AT + 4 and struct.unpack_from("<I", head, _LMDB_MAGIC_AT)[0] == _LMDB_MAGIC


def _minidb_layout_ok(path: str) -> bool:
    """Whether the file is a well-formed sequence of minidb records (only the lengths are read)."""
    try:
        size = os.path.getsize(path)
        if size < _HEADER.size:
            return False
        with open(path, "rb") as fh:
            pos = 0
            while pos < size:
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return False
                k, v = _HEADER.unpack(header)
                if k <= 0 or v <= 0 or pos + _HEADER.size + k + v > size:
                    return False
                pos += _HEADER.size + k + v
                fh.seek(pos)
        return True
    except OSError:
        return False


def detect_db_type(path: "os.PathLike[str] | str") -> Optional[str]:
    """``"lmdb"`` for an LMDB directory (holding ``data.mdb``) or data file, ``"minidb"`` for a
    file laid out as minidb records, ``None`` otherwise. Never raises."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return LMDB if os.path.isfile(os.path.join(path, "data.mdb")) else None
    if not os.path.isfile(path):
        return None
    if _is_lmdb_file(path):
        return LMDB
    return MINIDB if _minidb_layout_ok(path) else None


def resolve_db_type(path: str, db_type: Optional[str]) -> str:
    """The DB type to read ``path`` with: ``db_type`` if given, else detected (minidb is the
    fallback for a file, so that its reader reports what is wrong with it)."""
    if db_type is not None:
        return _normalize_db_type(db_type, path)
    if not os.path.exists(path):
        raise NetImportError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "data.mdb")):
            return LMDB
        raise NetImportError(f"{path}: a directory without data.mdb is not a Caffe2 DB (lmdb)")
    return LMDB if _is_lmdb_file(path) else MINIDB


def iter_minidb(path: str) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) records of a minidb file, in file order."""
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise NetImportError(f"{path}: cannot read the file: {e.strerror or e}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        index = 0
        while pos < size:
            where = f"{path}: minidb record #{index} at byte {pos}"
            header = fh.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise NetImportError(
                    f"{where}: the file ends inside the record header ({len(header)} of {_HEADER.size} bytes; "
                    "truncated or not a minidb file)"
                )
            key_len, value_len = _HEADER.unpack(header)
            if key_len <= 0 or value_len <= 0:
                raise NetImportError(
                    f"{where}: key length {key_len} / value length {value_len} (both must be positive; "
                    "corrupted or not a minidb file)"
                )
            left = size - pos - _HEADER.size
            if key_len + value_len > left:
                raise NetImportError(
                    f"{where}: key length {key_len} + value length {value_len} exceed the {left} bytes left "
                    "in the file (truncated or corrupted)"
                )
            key = fh.read(key_len)
            value = fh.read(value_len)
            if len(key) != key_len or len(value) != value_len:  # the file shrank while reading
                raise NetImportError(f"{where}: short read (the file changed while being read)")
            yield key, value
            pos += _HEADER.size + key_len + value_len
            index += 1


def iter_lmdb(path: str) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) records of an LMDB environment (directory or single data file), in key
    order. Opened read-only and without a lock file."""
    require_lmdb()
    import lmdb

    subdir = os.path.isdir(path)
    try:
        env = lmdb.open(path, subdir=subdir, readonly=True, lock=False, readahead=False, max_dbs=0)
    except lmdb.Error as e:
        raise NetImportError(f"{path}: cannot open as an lmdb database: {e}") from None
    try:
        with env.begin(buffers=False) as txn:
            for key, value in txn.cursor():
                yield bytes(key), bytes(value)
    except lmdb.Error as e:
        raise NetImportError(f"{path}: a broken lmdb database: {e}") from None
    finally:
        env.close()


def read_records(path: "os.PathLike[str] | str", db_type: Optional[str] = None) -> tuple[str, list[tuple[bytes, bytes]]]:
    """``(db_type, records)``: every (key, value) record of the DB at ``path``."""
    path = os.fspath(path)
    kind = resolve_db_type(path, db_type)
    records = list(iter_lmdb(path) if kind == LMDB else iter_minidb(path))
    return kind, records
