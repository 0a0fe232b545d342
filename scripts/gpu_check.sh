#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and no network (the CUDA torch must be installable from the
# local wheel cache or already in .venv-cuda): build the CUDA variant, run the whole test suite
# on it (CUDA tests included), run every benchmark with --device cuda, and write everything
# to ${OUT:-build/gpu-check}/gpu_check.txt (the whole pytest log to pytest.txt beside it).
#   With no .venv-cuda and no network, CUDA_PYTHON=python3 builds against the machine's own CUDA
#   torch (the default when python3 there has one and the local torch==2.14.1 is not at hand).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CUDA_PYTHON:-}" ] && [ ! -x .venv-cuda/bin/python ] && \
   python3 -c 'import torch, sys; sys.exit(torch.version.cuda is None)' 2>/dev/null; then
  export CUDA_PYTHON=python3
fi
py=${CUDA_PYTHON:-$PWD/.venv-cuda/bin/python}
out=${OUT:-build/gpu-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # absolute: the steps below change directory
report="$out/gpu_check.txt"
{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  echo "== build with $py ($("$py" -c 'import torch; print(torch.__version__)' 2>&1))"
  bash scripts/build_cuda.sh 2>&1 | tail -n 3
  # Run from the CUDA build's folder, so `import torch_caffe2ops` finds that build first.
  here=$PWD
  cd build/cuda/lib
  echo "== tests (CUDA and CPU)"
  # The whole log beside the report; the report keeps its end (failures and the summary).
  "$py" -m pytest "$here/tests" -q -p no:cacheprovider --ignore="$here/tests/test_cpp.py" -rs 2>&1 \
    | tee "$out/pytest.txt" | tail -n 60
  echo "== benchmarks --device cuda"
  for b in batch concat_split dropout sparse_normalize margin_rank; do
    PYTHONPATH=$PWD "$py" "$here/benchmarks/bench_$b.py" --device cuda 2>&1 | grep -v Warning
  done
} 2>&1 | tee "$report"
echo "written: $report"
