"""The converters, one module per domain of Caffe2 operators.

Every module of this package is imported when the package is (:func:`load_all`), and registers
its converters with :func:`~torch_caffe2ops.caffe2.register_converter` as it is imported: a new
domain is a new file here, with no list to keep.
"""
from __future__ import annotations

import importlib
import pkgutil


def load_all() -> list[str]:
    """Import every converter module of this package (once); returns their names."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names


MODULES = load_all()
