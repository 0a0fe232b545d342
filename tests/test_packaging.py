"""The installed distribution: its metadata (the torch pin, the extras, the console command),
where the package was imported from, missing optional packages named by their extra, and the
build stopping at once under pip's build isolation.

scripts/test.sh runs the suite in .venv-wheel, where the built wheel is installed, with
TORCH_CAFFE2OPS_TEST_INSTALLED=1: then the package must come from that environment's
site-packages, not from the checkout.
"""
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time

import pytest
import torch

import torch_caffe2ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    DIST = importlib.metadata.distribution("torch_caffe2ops")
except importlib.metadata.PackageNotFoundError:  # e.g. scripts/gpu_check.sh: a build folder on the path
    pytest.skip(f"torch_caffe2ops is not installed in this environment (imported from "
                f"{os.path.dirname(torch_caffe2ops.__file__)})", allow_module_level=True)
EXTRAS = {"caffe2", "lmdb", "examples", "docs", "test"}
COMMAND = "caffe2-to-torch"
INSTALLED = os.environ.get("TORCH_CAFFE2OPS_TEST_INSTALLED") == "1"


def _public(version):
    return version.split("+")[0]


def _command():
    """The console command installed beside this interpreter, if any."""
    return shutil.which(COMMAND, path=os.path.dirname(sys.executable))


def _run(args, blocked=(), timeout=300, **kwargs):
    """Runs args in a fresh interpreter in which importing any of `blocked` (and its submodules)
    fails as if the package were not installed (a meta-path hook in sitecustomize.py)."""
    env = dict(os.environ)
    if blocked:
        hook_dir = os.path.join(kwargs.pop("tmp_path"), "block")
        os.makedirs(hook_dir, exist_ok=True)
        with open(os.path.join(hook_dir, "sitecustomize.py"), "w") as f:
            f.write(textwrap.dedent(f"""\
                import sys
                BLOCKED = {tuple(blocked)!r}
                class _NotInstalled:
                    def find_spec(self, name, path=None, target=None):
                        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                        return None
                sys.meta_path.insert(0, _NotInstalled())
                """))
        env["PYTHONPATH"] = os.pathsep.join([hook_dir] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, **kwargs)


def _last_line(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


def test_version_names_the_torch_and_device_it_was_built_for():
    version = DIST.version
    assert version == torch_caffe2ops.__version__
    major, minor, patch = re.match(r"(\d+)\.(\d+)\.(\d+)", torch_caffe2ops.TORCH_VERSION).groups()
    cuda = torch_caffe2ops.CUDA_VERSION
    device = f"cu{cuda.replace('.', '')}" if cuda else "cpu"
    assert version.endswith(f"+pt{major}{minor}{patch}{device}"), version


def test_metadata_pins_the_torch_it_was_built_against():
    requires = DIST.requires or []
    unconditional = [r for r in requires if ";" not in r]
    pin = f"torch=={_public(torch_caffe2ops.TORCH_VERSION)}"
    assert unconditional == [pin], requires
    assert _public(torch.__version__) == _public(torch_caffe2ops.TORCH_VERSION)
    # the installer's view: no other torch release satisfies the requirement
    from packaging.requirements import Requirement

    spec = Requirement(pin).specifier
    major, minor, patch = (int(x) for x in _public(torch.__version__).split(".")[:3])
    assert spec.contains(torch.__version__)  # a local label (+cpu) still matches ==X.Y.Z
    for other in (f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}.0", f"{major}.{minor - 1}.0"):
        assert not spec.contains(other), other


def test_metadata_declares_the_extras_and_the_command():
    assert set(DIST.metadata.get_all("Provides-Extra") or []) == EXTRAS
    requires = DIST.requires or []
    assert any(r.startswith("protobuf") and 'extra == "caffe2"' in r for r in requires), requires
    assert any(r.startswith("lmdb") and 'extra == "lmdb"' in r for r in requires), requires
    for pkg in ("tqdm", "matplotlib"):
        assert any(r.startswith(pkg) and 'extra == "examples"' in r for r in requires), requires
    scripts = {ep.name: ep.value for ep in DIST.entry_points if ep.group == "console_scripts"}
    assert scripts == {COMMAND: "torch_caffe2ops.caffe2.cli:main"}


@pytest.mark.skipif(not INSTALLED, reason="only against an installed wheel (scripts/test.sh: TORCH_CAFFE2OPS_TEST_INSTALLED=1)")
def test_imported_from_the_installed_wheel():
    site = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for module in (torch_caffe2ops, torch_caffe2ops._C):
        path = os.path.realpath(module.__file__)
        checkout_pkg = os.path.join(os.path.realpath(ROOT), "torch_caffe2ops")
        assert not path.startswith(checkout_pkg + os.sep), f"{module.__name__} imported from the checkout: {path}"
        assert any(path.startswith(s + os.sep) for s in site), f"{module.__name__} not from {site}: {path}"
    # a wheel install: no editable finder or path file pointing at the checkout
    direct_url = json.loads(DIST.read_text("direct_url.json") or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), direct_url
    files = {str(f) for f in DIST.files or []}
    assert "torch_caffe2ops/_C.abi3.so" in files and "torch_caffe2ops/caffe2/caffe2.proto" in files
    assert not any("__editable__" in f for f in files), files


# --------------------------------------------------------------------------------------------
# the importer's command line
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_as_module_and_as_console_command(tmp_path):
    module = _run([sys.executable, "-m", "torch_caffe2ops.caffe2", "--help"], cwd=tmp_path)
    assert module.returncode == 0, module.stderr
    assert "inspect" in module.stdout and "convert" in module.stdout
    command = _command()
    if command is None:
        assert not INSTALLED, f"no {COMMAND} beside {sys.executable}"
        pytest.skip(f"{COMMAND} is not installed beside {sys.executable} (not a pip install)")
    res = _run([command, "--help"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "inspect" in res.stdout and "convert" in res.stdout


# --------------------------------------------------------------------------------------------
# optional packages missing: one ImportError that names the extra
# --------------------------------------------------------------------------------------------

CAFFE2_HINT = 'pip install "torch_caffe2ops[caffe2]"'


def _assert_names_extra(res, hint):
    last = _last_line(res.stderr)
    assert res.returncode != 0, res.stdout
    assert last.startswith("ImportError: ") and hint in last, res.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["import", "module", "command"])
def test_importer_without_protobuf_names_the_extra(tmp_path, how):
    if how == "import":
        args = [sys.executable, "-c", "import torch_caffe2ops.caffe2"]
    elif how == "module":
        args = [sys.executable, "-m", "torch_caffe2ops.caffe2", "inspect", "net.pb"]
    else:
        command = _command()
        if command is None:
            assert not INSTALLED
            pytest.skip(f"{COMMAND} is not installed beside {sys.executable}")
        args = [command, "inspect", "net.pb"]
    res = _run(args, blocked=["google.protobuf"], tmp_path=tmp_path, cwd=tmp_path)
    _assert_names_extra(res, CAFFE2_HINT)


@pytest.mark.slow
def test_operators_without_protobuf(tmp_path):
    """Only the importer needs protobuf (and the hook really hides it)."""
    code = ("import torch, torch_caffe2ops\n"
            "torch_caffe2ops.ops.batch_moments(torch.ones(2, 3, 1))\n"
            "try:\n    import google.protobuf\nexcept ModuleNotFoundError:\n    print('no protobuf')\n")
    res = _run([sys.executable, "-c", code], blocked=["google.protobuf"], tmp_path=tmp_path, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "no protobuf", res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("blocked", [["tqdm"], ["matplotlib"]])
def test_ranking_example_without_its_packages_names_the_extra(tmp_path, blocked):
    train = os.path.join(ROOT, "examples", "ranking", "train.py")
    start = time.monotonic()
    res = _run([sys.executable, train, "--steps", "1", "--out", str(tmp_path / "out")], blocked=blocked,
               tmp_path=tmp_path, cwd=tmp_path)
    _assert_names_extra(res, 'pip install "torch_caffe2ops[examples]"')
    assert blocked[0] in _last_line(res.stderr)
    assert not (tmp_path / "out").exists(), "the check runs before training"
    assert time.monotonic() - start < 120


# --------------------------------------------------------------------------------------------
# building from source
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_isolated_build_stops_at_once_naming_no_build_isolation(tmp_path):
    """`pip install .` without --no-build-isolation: the in-tree backend finds no torch in the
    isolated build environment and stops before anything is downloaded (--no-index: nothing
    could be, and nothing is needed for the check)."""
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps",
                          "--disable-pip-version-check", ROOT], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    elapsed = time.monotonic() - start
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "isolated build environment" in out and "pip install --no-build-isolation ." in out, out
    assert elapsed < 60, f"took {elapsed:.0f}s"
