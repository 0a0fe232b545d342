#!/usr/bin/env bash
# Builds the CUDA variant (FORCE_CUDA=1) into its own virtual environment, .venv-cuda, with the
# local CUDA 13.0 build of torch, from a copy of the sources (so the CPU build in the checkout
# is untouched), then imports it and checks that every op has a CUDA kernel. No GPU is needed.
#   CUDA_HOME (default /usr/local/cuda), TORCH_CUDA_ARCH_LIST (default "8.0;9.0"), MAX_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
export FORCE_CUDA=1
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-cuda/bin/python ]; then
  "$PYTHON" -m venv .venv-cuda
fi
.venv-cuda/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.14.1" numpy pytest expecttest ninja setuptools wheel
src=build/cuda-src
mkdir -p "$src"
# Keep the copy's timestamps so ninja rebuilds only what changed since the last CUDA build.
cp -rpu setup.py pyproject.toml csrc torch_caffe2ops "$src"/
rm -f "$src"/torch_caffe2ops/_C*.so "$src"/torch_caffe2ops/_build_info.py
(cd "$src" && MAX_JOBS=${MAX_JOBS:-$(nproc)} ../../.venv-cuda/bin/python setup.py --quiet build_ext --inplace)
site=$(.venv-cuda/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
(cd "$src" && pwd) > "$site/torch_caffe2ops-cuda-build.pth"
cd /tmp && "$OLDPWD"/.venv-cuda/bin/python "$OLDPWD"/scripts/check_cuda_build.py
