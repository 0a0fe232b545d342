"""Sphinx configuration for the torch_caffe2ops documentation (built by scripts/docs.sh)."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import torch_caffe2ops  # noqa: E402  (the API pages document the built package)

project = "torch_caffe2ops"
author = "torch_caffe2ops developers"
release = torch_caffe2ops.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "tools", "generated"]

napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# intersphinx would need the network; plain references to torch stay text.
intersphinx_mapping = {}

html_theme = "alabaster"
html_title = f"torch_caffe2ops {release}"
html_theme_options = {"description": "Caffe2's operators as PyTorch operators", "page_width": "1100px"}


def _write_caffe2_types() -> None:
    """The importer's table of supported Caffe2 types, generated from its converter registry so
    that it cannot fall behind (docs/caffe2_types.md includes it)."""
    from torch_caffe2ops.caffe2.registry import converter_table, supported_op_types

    out = os.path.join(ROOT, "docs", "generated")
    os.makedirs(out, exist_ok=True)
    text = f"{len(supported_op_types())} operator types.\n\n{converter_table()}"
    _write_if_changed(os.path.join(out, "caffe2_types.md"), text)

    sys.path.insert(0, os.path.join(ROOT, "docs", "tools"))
    import caffe2_coverage

    from torch_caffe2ops.caffe2 import get_converter

    _write_if_changed(os.path.join(out, "caffe2_coverage.md"), caffe2_coverage.table(get_converter))


def _write_if_changed(path: str, text: str) -> None:
    # an unchanged file keeps its time stamp, so Sphinx does not rebuild the page
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


_write_caffe2_types()
