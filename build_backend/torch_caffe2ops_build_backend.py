"""In-tree PEP 517 build backend: setuptools' own, after one check.

The extension is compiled against the torch that is installed where it is built, and it refuses
to import under any other torch (its metadata pins ``torch==<that version>``). Under pip's
default build isolation the build would run in a throwaway environment that has no torch (pip
would have to download one, of whatever version and CUDA flavour the index offers first, and the
result would not match the torch that runs it). So this backend declares no static build
requirements (pyproject.toml: ``requires = []``) and, before anything is installed, checks that
torch is importable; if it is not, the build stops at once with a message saying to build
without isolation. An sdist needs no torch: its hooks only ask for setuptools.

Build a wheel or install from source with:
    pip install --no-build-isolation .           (or: pip wheel --no-build-isolation --no-deps .)
    python -m build --no-isolation
"""
import contextlib
import importlib.util
import os
import shutil
import sys

SETUPTOOLS = "setuptools>=77"

MESSAGE = """
torch_caffe2ops: torch is not importable in {where}.

The extension must be compiled against the torch it will run with, so it is built without
build isolation, in an environment that already has that torch:

    pip install torch==<version you use>          # first, if it is not installed yet
    pip install --no-build-isolation .            # or: pip install --no-build-isolation -v .
    pip wheel --no-build-isolation --no-deps .    # a wheel pinned to that torch
    python -m build --no-isolation                # the same with `build`

(`pip install .` without --no-build-isolation builds in an isolated environment without torch;
this check stops it before anything is downloaded.) See README.md, section "Install".
"""


def _require_torch():
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        # pip's isolated environments live in pip-build-env-*, build's in build-env-*
        isolated = any("build-env-" in p for p in sys.path)
        where = ("the isolated build environment that pip (or build) made for this build: it "
                 "does not see the torch you installed" if isolated else f"the build environment ({sys.executable})")
        sys.stderr.write(MESSAGE.format(where=where))
        sys.stderr.flush()
        raise SystemExit(1)


def _setuptools():
    try:
        from setuptools import build_meta
    except ImportError:
        sys.stderr.write(f"torch_caffe2ops: the build needs {SETUPTOOLS} in the build environment "
                         f"({sys.executable}); pip install '{SETUPTOOLS}' wheel\n")
        raise SystemExit(1)
    return build_meta


# sdist: no torch needed; setup.py then writes the base version and an unpinned torch.
def get_requires_for_build_sdist(config_settings=None):
    return [SETUPTOOLS]


@contextlib.contextmanager
def _no_egg_info_left():
    """setuptools writes torch_caffe2ops.egg-info into the source tree while it builds a wheel or
    an sdist. Left in a checkout, that one build's metadata would shadow the installed
    distribution's for anything run from the checkout's root, so it goes again (unless it was
    there before)."""
    egg_info = os.path.abspath("torch_caffe2ops.egg-info")
    existed = os.path.exists(egg_info)
    try:
        yield
    finally:
        if not existed:
            shutil.rmtree(egg_info, ignore_errors=True)


def build_sdist(sdist_directory, config_settings=None):
    os.environ["TORCH_CAFFE2OPS_SDIST"] = "1"
    with _no_egg_info_left():
        return _setuptools().build_sdist(sdist_directory, config_settings)


# wheel and editable: torch first.
def get_requires_for_build_wheel(config_settings=None):
    _require_torch()
    return _setuptools().get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _require_torch()
    return _setuptools().prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _require_torch()
    with _no_egg_info_left():
        return _setuptools().build_wheel(wheel_directory, config_settings, metadata_directory)


def get_requires_for_build_editable(config_settings=None):
    _require_torch()
    return _setuptools().get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    _require_torch()
    return _setuptools().prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _require_torch()
    return _setuptools().build_editable(wheel_directory, config_settings, metadata_directory)
