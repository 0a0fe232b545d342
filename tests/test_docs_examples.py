"""Every worked example in the documentation (the ```pycon blocks of docs/**/*.md) runs as a
doctest and prints what the page says; every operator has one in the operator reference; no
page or docstring points at files outside the repository."""
import glob
import inspect
import os
import re
import sys

import pytest
import torch

import torch_caffe2ops  # noqa: F401
from torch_caffe2ops import nn, ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs", "tools"))
import examples  # noqa: E402

PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
PAGES_WITH_EXAMPLES = [p for p in PAGES if list(examples.blocks(open(p).read()))]


@pytest.fixture(autouse=True)
def cpu_and_default_dtype():
    # the examples are written for the CPU build with float32 defaults
    previous = torch.get_default_dtype()
    with torch.device("cpu"):
        yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: os.path.relpath(p, ROOT))
def test_page_examples(page):
    failed, attempted, report = examples.run_page(page)
    assert attempted > 0
    assert failed == 0, report


def test_every_op_has_a_checked_example():
    text = "".join(src for p in glob.glob(os.path.join(ROOT, "docs", "operators", "*.md"))
                   for _, src in examples.blocks(open(p).read()))
    wrappers = [n for n, f in vars(ops).items()
                if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == ops.__name__]
    missing = [n for n in wrappers if not re.search(rf"(>>>|\.\.\.) .*\bops\.{n}\(", text)]
    assert not missing, f"no example in docs/operators for: {missing}"


def test_no_reference_outside_the_repository():
    bad = re.compile(r"\.\./shared|OPERATORS\.md|\bspec(ification)?\b\s*(\d|§|section|Appendix)|§", re.I)
    texts = {p: open(p).read() for p in PAGES}
    texts["README.md"] = open(os.path.join(ROOT, "README.md")).read()
    for mod in (ops, nn):
        texts[mod.__name__] = inspect.getsource(mod)
    offenders = {name: m.group(0) for name, t in texts.items() for m in [bad.search(t)] if m}
    assert not offenders, offenders
