#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite in one pytest process.
# Before it: where nvcc is installed (CUDA_HOME, default /usr/local/cuda) the CUDA variant is
# built in .venv-cuda and checked to import with a CUDA kernel for every op
# (scripts/build_cuda.sh; SKIP_CUDA_BUILD=1 skips that step); the docs are built
# (scripts/docs.sh); and the CPU extension is built with AddressSanitizer and UBSan and runs
# the family tests, the fuzz suite and the concurrency test (scripts/asan.sh; SKIP_ASAN=1 skips
# it). CUDA tests run only on a GPU.
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
echo "== tests"
exec .venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
