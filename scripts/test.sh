#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite in one pytest process,
# against the built wheel installed into its own environment (not against the checkout).
# Before it: where nvcc is installed (CUDA_HOME, default /usr/local/cuda) the CUDA variant is
# built in .venv-cuda and checked to import with a CUDA kernel for every op
# (scripts/build_cuda.sh; SKIP_CUDA_BUILD=1 skips that step); the docs are built
# (scripts/docs.sh); the CPU extension is built with AddressSanitizer and UBSan and runs
# the family tests, the fuzz suite and the concurrency test (scripts/asan.sh; SKIP_ASAN=1 skips
# it); the wheels and the sdist are built from those builds' objects and checked
# (scripts/build_wheel.sh: link only, no second compile); and the CPU wheel is installed with
# its test extra into .venv-wheel (scripts/install_wheel.sh). The tests then run in .venv-wheel
# from build/wheel-test, where the checkout is not importable (tests/test_packaging.py checks
# that torch_caffe2ops came from site-packages). Test paths given as arguments are taken
# relative to the checkout. CUDA tests run only on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nvcc="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
if [ "${SKIP_CUDA_BUILD:-0}" != "1" ] && [ -x "$nvcc" ]; then
  echo "== CUDA variant: building with $nvcc (log: build/cuda-build.log)"
  if ! bash scripts/build_cuda.sh > build/cuda-build.log 2>&1; then
    grep -E "error|Error" build/cuda-build.log | head -n 40
    tail -n 30 build/cuda-build.log
    echo "CUDA build check FAILED"
    exit 1
  fi
  tail -n 2 build/cuda-build.log
else
  echo "== CUDA variant: skipped (no nvcc at $nvcc, or SKIP_CUDA_BUILD=1)"
fi
echo "== docs (Sphinx, warnings as errors)"
bash scripts/docs.sh
echo "== AddressSanitizer + UBSan: family tests, fuzz suite, concurrency (own build and venv)"
if [ "${SKIP_ASAN:-0}" != "1" ]; then bash scripts/asan.sh; else echo "skipped (SKIP_ASAN=1)"; fi
echo "== wheels and sdist (link only: the objects of the builds above)"
bash scripts/build_wheel.sh
echo "== the CPU wheel, installed into .venv-wheel"
bash scripts/install_wheel.sh
echo "== tests (against the installed wheel, in .venv-wheel)"
ROOT=$PWD
args=()
prev=
for arg in "$@"; do  # checkout-relative test paths (tests/test_x.py::name) still work from elsewhere
  if [[ "$arg" != -* && "$prev" != -[kmpoW] && -e "$ROOT/${arg%%::*}" ]]; then
    args+=("$ROOT/$arg")
  else
    args+=("$arg")
  fi
  prev=$arg
done
has_path=0
for arg in "${args[@]+"${args[@]}"}"; do [[ "$arg" == "$ROOT"/* ]] && has_path=1; done
[ "$has_path" = 1 ] || args+=("$ROOT/tests")
mkdir -p build/wheel-test
cd build/wheel-test
TORCH_CAFFE2OPS_TEST_INSTALLED=1 exec "$ROOT/.venv-wheel/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"
