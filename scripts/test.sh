#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite in one pytest process.
# Where nvcc is installed (CUDA_HOME, default /usr/local/cuda) it then also builds the CUDA
# variant in .venv-cuda and checks it imports with a CUDA kernel for every op
# (scripts/build_cuda.sh; SKIP_CUDA_BUILD=1 skips that step). CUDA tests run only on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m pytest tests -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
nvcc="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
if [ "${SKIP_CUDA_BUILD:-0}" != "1" ] && [ -x "$nvcc" ]; then
  echo "== CUDA variant: building with $nvcc (log: build/cuda-build.log)"
  mkdir -p build
  if ! bash scripts/build_cuda.sh > build/cuda-build.log 2>&1; then
    tail -n 60 build/cuda-build.log
    echo "CUDA build check FAILED"
    exit 1
  fi
  tail -n 2 build/cuda-build.log
else
  echo "== CUDA variant: skipped (no nvcc at $nvcc, or SKIP_CUDA_BUILD=1)"
fi
