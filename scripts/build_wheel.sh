#!/usr/bin/env bash
# Builds the distributions into dist/ (DIST_DIR) and checks them (scripts/check_dist.py):
#   torch_caffe2ops-<v>+pt<torch><cpu>-cp310-abi3-linux_x86_64.whl    in .venv (the pinned CPU torch)
#   torch_caffe2ops-<v>+pt<torch>cu<cuda>-cp310-abi3-linux_x86_64.whl where nvcc exists (CUDA_HOME,
#       default /usr/local/cuda): FORCE_CUDA=1 in .venv-cuda (scripts/build_cuda.sh), or in
#       CUDA_PYTHON's environment; SKIP_CUDA_BUILD=1 skips it
#   torch_caffe2ops-<v>.tar.gz                                        the sdist (no build, no pin)
# The version's local label names the torch and the device each wheel was built for (see
# setup.py), and each wheel's metadata pins that torch (torch==X.Y.Z).
#
# No compiler run is repeated: the CPU wheel is built with the editable build's flags and
# objects (TORCH_CAFFE2OPS_BUILD_TEMP=build/editable, after scripts/setup.sh), the CUDA wheel
# with those of scripts/build_cuda.sh (build/cuda/temp), so ninja has nothing to do and only the
# link runs. Without those builds it compiles what is missing, into the same folders.
# Logs: build/wheel-cpu.log, build/wheel-cuda.log, build/sdist.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
out=${DIST_DIR:-dist}
mkdir -p "$out" build
out=$(cd "$out" && pwd)
rm -f "$out"/torch_caffe2ops-*

[ -x .venv/bin/python ] || bash scripts/setup.sh

# pip wheel --no-build-isolation --no-deps . with the objects of an earlier build; the build's
# lib/ and bdist/ folders are emptied first, so a wheel holds exactly this tree's files.
build_wheel() {  # <python> <objects folder> <log> [VAR=value ...]
  local py=$1 objects=$2 log=$3
  shift 3
  rm -rf build/lib.* build/bdist.*
  if ! env "$@" TORCH_CAFFE2OPS_BUILD_TEMP="$objects" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$py" -m pip wheel -v --no-build-isolation --no-deps --disable-pip-version-check . -w "$out" \
      > "$log" 2>&1; then
    grep -E "error|Error" "$log" | head -n 40 || true
    tail -n 20 "$log"
    echo "wheel build FAILED (log: $log)"
    return 1
  fi
  rm -rf build/lib.* build/bdist.*
  if grep -q "ninja: no work to do" "$log"; then
    echo "  reused the objects in $objects (link only)"
  else
    echo "  compiled into $objects (no up-to-date objects there)"
  fi
}

t0=$(date +%s)
echo "== CPU wheel (.venv: torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
build_wheel .venv/bin/python build/editable build/wheel-cpu.log FORCE_ONLY_CPU=1
cpu_wheels=("$out"/torch_caffe2ops-*cpu-*.whl)
.venv/bin/python scripts/check_dist.py "${cpu_wheels[@]}"

nvcc="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
if [ "${SKIP_CUDA_BUILD:-0}" != "1" ] && [ -x "$nvcc" ]; then
  if [ -n "${CUDA_PYTHON:-}" ]; then
    cuda_py=$(command -v "$CUDA_PYTHON")
  else
    [ -x .venv-cuda/bin/python ] || bash scripts/build_cuda.sh > build/cuda-build.log 2>&1
    cuda_py=$ROOT/.venv-cuda/bin/python
  fi
  echo "== CUDA wheel ($cuda_py: torch $("$cuda_py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'))"
  build_wheel "$cuda_py" build/cuda/temp build/wheel-cuda.log FORCE_CUDA=1 CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
  cuda_wheels=("$out"/torch_caffe2ops-*cu[0-9]*-*.whl)
  "$cuda_py" scripts/check_dist.py "${cuda_wheels[@]}"
else
  echo "== CUDA wheel: skipped (no nvcc at $nvcc, or SKIP_CUDA_BUILD=1)"
fi

echo "== sdist"
# The in-tree backend's build_sdist hook, as `python -m build --sdist --no-isolation` calls it.
if ! .venv/bin/python - "$out" > build/sdist.log 2>&1 <<'EOF'
import sys
sys.path.insert(0, "build_backend")
import torch_caffe2ops_build_backend as backend
print(backend.build_sdist(sys.argv[1]))
EOF
then
  tail -n 20 build/sdist.log
  echo "sdist FAILED (log: build/sdist.log)"
  exit 1
fi
.venv/bin/python scripts/check_dist.py "$out"/torch_caffe2ops-*.tar.gz
echo "== distributions in $out ($(($(date +%s) - t0))s):"
ls -l "$out"/torch_caffe2ops-* | awk '{printf "  %8.2f MB  %s\n", $5 / 1e6, $NF}'
