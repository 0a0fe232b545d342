"""Checks the distributions scripts/build_wheel.sh made, without installing them.

    python scripts/check_dist.py dist/torch_caffe2ops-<version>-cp310-abi3-linux_x86_64.whl
    python scripts/check_dist.py dist/torch_caffe2ops-<version>.tar.gz

Run it with the interpreter whose torch the wheel was built against (its torch/lib and the
NVIDIA packages beside it are where the extension's libraries must come from).

A wheel: the version carries the local label of this torch and device, Requires-Dist pins this
torch (torch==X.Y.Z), the extras and the `caffe2-to-torch` command are declared, every file of
the package in the checkout is inside (modules and data such as caffe2.proto), and the extension's ELF dynamic section (the `auditwheel show` question)
names no library outside the manylinux system set but torch's own (torch/lib) and, for a CUDA
wheel, the CUDA / cuDNN libraries of the NVIDIA packages torch installs; its run path, if any,
is relative ($ORIGIN), not a folder of the build machine.

An sdist: it holds every file of the checkout that the build reads (git ls-files of csrc/,
cmake/, build_backend/, torch_caffe2ops/, setup.py, pyproject.toml, README.md, MANIFEST.in), no
built file (*.so, _build_info.py), and unpinned metadata (version without a local label).

Prints one line per distribution with its size; exits non-zero naming every problem.
"""
import email.parser
import glob
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The manylinux policies' system libraries that an extension may need (auditwheel's whitelist,
# the part a C++ extension uses) and the dynamic loader.
SYSTEM = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libdl.so.2", "librt.so.1",
          "libpthread.so.0", "ld-linux-x86-64.so.2"}
EXTRAS = {"caffe2", "lmdb", "examples", "docs", "test"}
COMMAND = "caffe2-to-torch = torch_caffe2ops.caffe2.cli:main"


def _size(path):
    return f"{os.path.getsize(path) / 1e6:.2f} MB"


def _dynamic_section(so_path):
    """NEEDED and RPATH/RUNPATH entries, via readelf (binutils, beside the compiler)."""
    out = subprocess.run(["readelf", "-d", so_path], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    paths = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library (?:rpath|runpath): \[(.+?)\]", out)
    return needed, [p for entry in paths for p in entry.split(":") if p]


def _torch_provided():
    """Library file name -> which package ships it: torch/lib, and the nvidia/* packages."""
    import torch

    provided = {os.path.basename(p): "torch/lib" for p in glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "*.so*"))}
    site = os.path.dirname(os.path.dirname(torch.__file__))
    for p in glob.glob(os.path.join(site, "nvidia", "*", "lib", "*.so*")) + glob.glob(os.path.join(site, "nvidia", "*", "*", "lib", "*.so*")):
        provided.setdefault(os.path.basename(p), os.path.relpath(os.path.dirname(p), site))
    return provided


def _tracked(*paths):
    """Files of the checkout under paths: committed, or new and not ignored (git)."""
    files = []
    for extra in ([], ["--others", "--exclude-standard"]):
        files += subprocess.run(["git", "ls-files", *extra, *paths], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    return sorted({f for f in files if os.path.isfile(os.path.join(ROOT, f))})


def check_wheel(path):
    import torch

    problems = []
    public = torch.__version__.split("+")[0]
    with zipfile.ZipFile(path) as whl, tempfile.TemporaryDirectory() as tmp:
        names = whl.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(whl.read(meta_name).decode())
        version = meta["Version"]
        build_info = whl.read("torch_caffe2ops/_build_info.py").decode()
        cuda = re.search(r"CUDA_VERSION = '([\d.]+)'", build_info)
        device = f"cu{cuda.group(1).replace('.', '')}" if cuda else "cpu"
        major, minor, patch = re.match(r"(\d+)\.(\d+)\.(\d+)", torch.__version__).groups()
        label = f"pt{major}{minor}{patch}{device}"
        if not version.endswith("+" + label):
            problems.append(f"version {version} does not end with +{label} (torch {torch.__version__}, {device})")
        if f"__version__ = {version!r}" not in build_info:
            problems.append(f"_build_info.py does not say __version__ = {version!r}")
        requires = meta.get_all("Requires-Dist") or []
        base = [r for r in requires if ";" not in r]
        if base != [f"torch=={public}"]:
            problems.append(f"Requires-Dist without a marker is {base}, not ['torch=={public}']")
        extras = set(meta.get_all("Provides-Extra") or [])
        if extras != EXTRAS:
            problems.append(f"Provides-Extra is {sorted(extras)}, not {sorted(EXTRAS)}")
        entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        if not entry_points or COMMAND not in whl.read(entry_points[0]).decode():
            problems.append(f"no console command `{COMMAND}`")
        # every file of the package in the checkout (modules and data: caffe2.proto, ...)
        missing = [f for f in _tracked("torch_caffe2ops") if f not in names]
        if missing:
            problems.append(f"package files missing from the wheel (a data file needs an entry in "
                            f"pyproject.toml's [tool.setuptools.package-data]): {missing}")
        libs = [n for n in names if re.search(r"\.so(\.|$)", n)]
        if libs != ["torch_caffe2ops/_C.abi3.so"]:
            problems.append(f"shared libraries in the wheel: {libs}, expected torch_caffe2ops/_C.abi3.so alone")
        stray = [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        if stray:
            problems.append(f"compiled Python files in the wheel: {stray[:5]}")
        whl.extract("torch_caffe2ops/_C.abi3.so", tmp)
        needed, run_paths = _dynamic_section(os.path.join(tmp, "torch_caffe2ops", "_C.abi3.so"))
    provided = _torch_provided()
    origin = {}
    for lib in needed:
        if lib in SYSTEM:
            origin[lib] = "system"
        elif lib in provided:
            origin[lib] = provided[lib]
        else:
            problems.append(f"the extension needs {lib}, which is neither a manylinux system library nor shipped with torch")
    for p in run_paths:
        if not p.startswith("$ORIGIN"):
            problems.append(f"run path {p!r} names a folder of the build machine")
    shipped = sorted(lib for lib, where in origin.items() if where != "system")
    print(f"{os.path.basename(path)}: {_size(path)}; Requires-Dist torch=={public}; extras {','.join(sorted(extras))}; "
          f"needs, from torch's packages: {' '.join(shipped)}; from the system: "
          f"{' '.join(sorted(lib for lib, w in origin.items() if w == 'system'))}"
          + (f"; run path {':'.join(run_paths)}" if run_paths else ""))
    return problems


def check_sdist(path):
    problems = []
    with tarfile.open(path) as tar:
        members = tar.getnames()
        top = members[0].split("/")[0]
        names = {m[len(top) + 1:] for m in members if m.startswith(top + "/")}
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode()
    tracked = _tracked("csrc", "cmake", "build_backend", "torch_caffe2ops", "setup.py", "pyproject.toml",
                       "README.md", "MANIFEST.in", "CMakeLists.txt")
    missing = sorted(set(tracked) - names)
    if missing:
        problems.append(f"files the build reads are missing from the sdist: {missing}")
    built = sorted(n for n in names if n.endswith((".so", "_build_info.py", ".pyc")))
    if built:
        problems.append(f"built files in the sdist: {built}")
    version = re.search(r"^Version: (.+)$", pkg_info, re.M).group(1)
    if "+" in version:
        problems.append(f"sdist version {version} has a local label")
    print(f"{os.path.basename(path)}: {_size(path)}; {len(names)} files; version {version}")
    return problems


def main(paths):
    problems = []
    for path in paths:
        found = check_sdist(path) if path.endswith(".tar.gz") else check_wheel(path)
        problems += [f"{os.path.basename(path)}: {p}" for p in found]
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
