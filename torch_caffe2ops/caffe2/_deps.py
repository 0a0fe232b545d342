"""Optional dependencies of the importer, checked once with a message that names the extra."""
from __future__ import annotations

import importlib.util


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return True


def require_protobuf() -> None:
    """Raise one ImportError naming the ``caffe2`` extra when protobuf is not installed."""
    if _missing("google.protobuf"):
        raise ImportError(
            "torch_caffe2ops.caffe2 (the Caffe2 model importer) needs the protobuf package: "
            'pip install "torch_caffe2ops[caffe2]" (or: pip install protobuf)'
        )


def require_lmdb() -> None:
    """Raise one ImportError naming the ``lmdb`` extra when the lmdb package is not installed."""
    if _missing("lmdb"):
        raise ImportError(
            "reading an lmdb Caffe2 database needs the lmdb package: "
            'pip install "torch_caffe2ops[lmdb]" (or: pip install lmdb)'
        )
