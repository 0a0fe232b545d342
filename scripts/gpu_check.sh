#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and no network (the CUDA torch must be installable from the
# local wheel cache or already in .venv-cuda): build the CUDA variant, run the whole test suite
# on it (CUDA tests included), run every benchmark with --device cuda, and write everything
# to ${OUT:-build/gpu-check}/gpu_check.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-check}
mkdir -p "$out"
report="$out/gpu_check.txt"
{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  echo "== build"
  bash scripts/build_cuda.sh 2>&1 | tail -n 3
  # Run from the CUDA build's copy of the sources, so `import torch_caffe2ops` finds that build.
  cp -rpu tests benchmarks examples build/cuda-src/
  cd build/cuda-src
  echo "== tests (CUDA and CPU)"
  ../../.venv-cuda/bin/python -m pytest tests -q -p no:cacheprovider --ignore=tests/test_cpp.py -rs 2>&1 | tail -n 40
  echo "== benchmarks --device cuda"
  for b in batch concat_split dropout sparse_normalize margin_rank; do
    (cd benchmarks && ../../../.venv-cuda/bin/python bench_$b.py --device cuda 2>&1 | grep -v Warning)
  done
} 2>&1 | tee "$report"
echo "written: $report"
