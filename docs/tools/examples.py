"""The docs' worked examples: every ```pycon block of a page under docs/ is a doctest, run in one
namespace per page (tests/test_docs_examples.py checks every printed output).

    .venv/bin/python docs/tools/examples.py --fill docs/operators/batch.md

rewrites the expected outputs of a page from a fresh run (review the diff before committing).
"""
import contextlib
import doctest
import io
import re
import sys
import traceback

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
BLOCK = re.compile(r"^```pycon\n(.*?)^```", re.S | re.M)


def blocks(text):
    """(line offset, source) of every pycon block."""
    for m in BLOCK.finditer(text):
        yield text.count("\n", 0, m.start(1)), m.group(1)


def run_page(path, verbose=False):
    """Runs every example of a page as one doctest; returns (failed, attempted, report)."""
    text = open(path).read()
    parser = doctest.DocTestParser()
    globs = {"__name__": "__docs__"}
    runner = doctest.DocTestRunner(optionflags=FLAGS, verbose=verbose)
    out = io.StringIO()
    for line, src in blocks(text):
        test = parser.get_doctest(src, globs, path, path, line)
        test.globs = globs  # DocTest copies its globals; one namespace per page
        runner.run(test, out=out.write, clear_globs=False)
    failed, attempted = runner.summarize(verbose=False)
    return failed, attempted, out.getvalue()


def _statements(src):
    """Splits a pycon block into (source, indent) statements."""
    stmts, cur = [], None
    for line in src.splitlines():
        if line.startswith(">>> "):
            if cur is not None:
                stmts.append(cur)
            cur = [line[4:]]
        elif line.startswith("...") and cur is not None and (line == "..." or line.startswith("... ")):
            cur.append(line[4:])
    if cur is not None:
        stmts.append(cur)
    return stmts


def fill(path):
    text = open(path).read()
    globs = {"__name__": "__docs__"}
    pieces, last = [], 0
    for m in BLOCK.finditer(text):
        new = []
        for stmt in _statements(m.group(1)):
            new.append(">>> " + stmt[0])
            new.extend("... " + s if s else "..." for s in stmt[1:])
            buf = io.StringIO()
            code = "\n".join(stmt) + ("\n" if len(stmt) > 1 else "")
            try:
                with contextlib.redirect_stdout(buf):
                    exec(compile(code, "<doc>", "single"), globs)
                out = buf.getvalue().rstrip("\n").splitlines() if buf.getvalue().strip() else []
                new.extend(line if line.strip() else "<BLANKLINE>" for line in out)
            except Exception as e:  # noqa: BLE001
                msg = str(e).splitlines()[0] if str(e) else ""
                if len(msg) > 110:
                    msg = msg[:100].rstrip() + "..."
                elif len(str(e).splitlines()) > 1:
                    msg += "..."
                new.append("Traceback (most recent call last):")
                new.append("    ...")
                new.append(f"{type(e).__name__}: {msg}")
        pieces.append(text[last:m.start(1)])
        pieces.append("\n".join(new) + "\n")
        last = m.end(1)
    pieces.append(text[last:])
    open(path, "w").write("".join(pieces))


if __name__ == "__main__":
    import torch_caffe2ops  # noqa: F401
    if sys.argv[1] == "--fill":
        for p in sys.argv[2:]:
            fill(p)
            f, a, rep = run_page(p)
            print(p, f"{a - f}/{a} pass")
            if f:
                print(rep)
    else:
        for p in sys.argv[1:]:
            f, a, rep = run_page(p)
            print(p, f"{a - f}/{a} pass")
            if f:
                print(rep)
