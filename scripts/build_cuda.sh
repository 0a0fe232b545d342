#!/usr/bin/env bash
# Builds the CUDA variant (FORCE_CUDA=1) from a copy of the sources in build/cuda-src (so the
# CPU build in the checkout is untouched), then imports it and checks that every op has a CUDA
# and a Meta kernel. No GPU is needed.
#   By default into its own virtual environment, .venv-cuda, with the local CUDA 13.0 build of
#   torch (torch==2.14.1). CUDA_PYTHON=python3 uses that interpreter's CUDA torch instead (a
#   GPU machine without network, whose image already has one).
#   CUDA_HOME (default /usr/local/cuda), TORCH_CUDA_ARCH_LIST (default "8.0;9.0"), MAX_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
export FORCE_CUDA=1
if [ -n "${CUDA_PYTHON:-}" ]; then
  py=$(command -v "$CUDA_PYTHON")
else
  PYTHON=${PYTHON:-python3}
  if [ ! -x .venv-cuda/bin/python ]; then
    "$PYTHON" -m venv .venv-cuda
  fi
  .venv-cuda/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.14.1" numpy pytest expecttest ninja setuptools wheel
  py=$PWD/.venv-cuda/bin/python
fi
src=build/cuda-src
mkdir -p "$src"
# Keep the copy's timestamps so ninja rebuilds only what changed since the last CUDA build.
cp -rpu setup.py pyproject.toml csrc torch_caffe2ops "$src"/
rm -f "$src"/torch_caffe2ops/_C*.so "$src"/torch_caffe2ops/_build_info.py
(cd "$src" && MAX_JOBS=${MAX_JOBS:-$(nproc)} "$py" setup.py --quiet build_ext --inplace)
if [ -z "${CUDA_PYTHON:-}" ]; then
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  (cd "$src" && pwd) > "$site/torch_caffe2ops-cuda-build.pth"
fi
here=$PWD
cd /tmp && PYTHONPATH="$here/$src${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here"/scripts/check_cuda_build.py
