#!/usr/bin/env bash
# Installs the CPU wheel that scripts/build_wheel.sh left in dist/ (DIST_DIR) into its own
# virtual environment, .venv-wheel (WHEEL_VENV), as a user would: `pip install "<wheel>[test]"`
# into an environment created with nothing in it, so the wheel's metadata brings the pinned torch
# (torch==X.Y.Z, from the same index as .venv's) and the test extra its packages. No editable
# install, no PYTHONPATH. Then, from a folder where the checkout is not importable, it checks
# that torch_caffe2ops comes from that environment's site-packages, that the `caffe2-to-torch`
# command and `python -m torch_caffe2ops.caffe2` run, and that the installer refuses the wheel
# beside another torch (pip --dry-run with the CUDA variant's torch pin).
# scripts/test.sh then runs the test suite in that environment.
#   WHEEL_VENV_FRESH=1 recreates the environment (CI starts from a clean clone, so it is new there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
out=${DIST_DIR:-dist}
venv=${WHEEL_VENV:-.venv-wheel}
wheels=("$out"/torch_caffe2ops-*cpu-*.whl)
if [ ! -f "${wheels[0]}" ] || [ "${#wheels[@]}" -ne 1 ]; then
  echo "expected one CPU wheel in $out (bash scripts/build_wheel.sh), found: ${wheels[*]}"
  exit 1
fi
wheel=$(cd "$(dirname "${wheels[0]}")" && pwd)/$(basename "${wheels[0]}")
if [ "${WHEEL_VENV_FRESH:-0}" = "1" ]; then rm -rf "$venv"; fi
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
py=$(cd "$venv/bin" && pwd)/python
quiet_pip() { "$py" -m pip --disable-pip-version-check "$@" 2>&1 | { grep -vE "^WARNING: Location|^$" || true; }; }
echo "== installing $(basename "$wheel")[test] into $venv"
# The wheel with its requirements (torch pinned by its metadata) and the test extra; then the
# wheel itself again, in case an earlier build of the same version is installed there.
quiet_pip install -q "$wheel[test]"
quiet_pip install -q --force-reinstall --no-deps "$wheel"
quiet_pip check

pinned=$(grep -E '^torch==' requirements-dev.txt | cut -d= -f3)
mkdir -p build/wheel-test
cd build/wheel-test  # nothing importable here; the checkout's root is not on the path
"$py" - "$ROOT" "$pinned" <<'EOF'
import importlib.metadata, os, sys, sysconfig
import torch, torch_caffe2ops
root, pinned = os.path.realpath(sys.argv[1]), sys.argv[2]
path = os.path.realpath(torch_caffe2ops._C.__file__)
site = os.path.realpath(sysconfig.get_paths()["platlib"])
assert path.startswith(site + os.sep) and not path.startswith(os.path.join(root, "torch_caffe2ops") + os.sep), \
    f"torch_caffe2ops imported from {path}, not from {site}"
assert torch.__version__.split("+")[0] == pinned, f"torch {torch.__version__}, expected the pinned {pinned}"
dist = importlib.metadata.distribution("torch_caffe2ops")
pin = [r for r in dist.requires if ";" not in r]
print(f"   torch_caffe2ops {dist.version} from {os.path.dirname(path)}; Requires-Dist {', '.join(pin)}; "
      f"extras {', '.join(dist.metadata.get_all('Provides-Extra'))}; torch {torch.__version__}")
EOF
"$(dirname "$py")/caffe2-to-torch" --help > /dev/null
"$py" -m torch_caffe2ops.caffe2 --help > /dev/null
echo "   caffe2-to-torch and python -m torch_caffe2ops.caffe2 run"
cd "$ROOT"

# Another torch release: the CUDA variant's pin (requirements-cuda.txt). The resolver must find
# the wheel's torch==X.Y.Z and that one conflicting, before any download.
other=$(grep -E '^torch==' requirements-cuda.txt | head -n 1)
if [ -n "$other" ] && [ "$other" != "torch==$pinned" ]; then
  if "$py" -m pip install --dry-run --disable-pip-version-check "$wheel" "$other" > build/wheel-refusal.log 2>&1; then
    cat build/wheel-refusal.log
    echo "pip would install $(basename "$wheel") beside $other"
    exit 1
  fi
  if ! grep -q "depends on torch==$pinned" build/wheel-refusal.log; then
    tail -n 20 build/wheel-refusal.log
    echo "pip refused $(basename "$wheel") beside $other, but not for the torch pin"
    exit 1
  fi
  echo "   pip refuses it beside $other: $(grep -m1 "depends on torch==$pinned" build/wheel-refusal.log | sed 's/^ *//')"
fi
