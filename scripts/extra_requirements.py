"""Prints the packages of optional-dependency groups (extras) of pyproject.toml, one per line.

    python scripts/extra_requirements.py test            # pytest, ..., protobuf, lmdb, tqdm, ...

A group that names other groups (`torch_caffe2ops[caffe2,examples]`) is expanded, so the output
lists packages only. For environments that get the extras' packages without installing this
checkout from source (.venv-asan, .venv-cuda: each builds the extension its own way): the lists
stay in one place, pyproject.toml.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(path):
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            from pip._vendor import tomli as tomllib  # every venv has pip
    with open(path, "rb") as f:
        return tomllib.load(f)


def expand(groups, extras, name, seen=None):
    seen = set() if seen is None else seen
    out = []
    for group in groups:
        if group in seen:
            continue
        seen.add(group)
        if group not in extras:
            sys.exit(f"no extra {group!r} in pyproject.toml (have: {', '.join(sorted(extras))})")
        for req in extras[group]:
            m = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", req.replace(" ", ""))
            if m:
                out += expand(m.group(1).split(","), extras, name, seen)
            elif req not in out:
                out.append(req)
    return out


def main(groups):
    project = _load(os.path.join(ROOT, "pyproject.toml"))["project"]
    for req in expand(groups, project["optional-dependencies"], project["name"]):
        print(req)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
