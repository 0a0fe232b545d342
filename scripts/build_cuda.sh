#!/usr/bin/env bash
# Builds the CUDA variant (FORCE_CUDA=1) out of tree, into build/cuda/lib (Python package and
# library) with its objects in build/cuda/temp, so the CPU build in the checkout is untouched;
# then imports it and checks that every op has a CUDA and a Meta kernel. No GPU is needed.
#   By default into its own virtual environment, .venv-cuda, with requirements-cuda.txt (the
#   local CUDA 13.0 build of torch). CUDA_PYTHON=python3 uses that interpreter's CUDA torch
#   instead (a GPU machine without network, whose image already has one).
#   CUDA_HOME (default /usr/local/cuda), TORCH_CUDA_ARCH_LIST (default: cmake/cuda_build.txt), MAX_JOBS.
# Use the build with: cd build/cuda/lib && <python> -m pytest <checkout>/tests (from that folder,
# so `import torch_caffe2ops` finds it before the checkout's own package), or PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export FORCE_CUDA=1
if [ -n "${CUDA_PYTHON:-}" ]; then
  py=$(command -v "$CUDA_PYTHON")
else
  PYTHON=${PYTHON:-python3}
  if [ ! -x .venv-cuda/bin/python ]; then
    "$PYTHON" -m venv .venv-cuda
  fi
  # the CUDA torch and the build tools, then the test extra's packages (pyproject.toml) for
  # check_cuda_build.py and scripts/gpu_check.sh's test run
  .venv-cuda/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-cuda.txt
  mapfile -t test_pkgs < <(.venv-cuda/bin/python scripts/extra_requirements.py test)
  .venv-cuda/bin/python -m pip install --quiet --disable-pip-version-check "${test_pkgs[@]}"
  py=$PWD/.venv-cuda/bin/python
fi
out=build/cuda
MAX_JOBS=${MAX_JOBS:-$(nproc)} "$py" setup.py --quiet build --build-base "$out" --build-lib "$out/lib" \
  --build-temp "$out/temp"
here=$PWD
cd /tmp && PYTHONPATH="$here/$out/lib${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here"/scripts/check_cuda_build.py
