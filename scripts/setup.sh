#!/usr/bin/env bash
# Creates .venv (if missing) with the pinned torch and the dev tools, then builds
# torch_caffe2ops in place and puts the checkout on the venv's path. Re-running it only
# recompiles what changed (ninja keeps its objects under build/).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
echo "== installing requirements-dev.txt into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# Release flags (-O3, no debug info); MAX_JOBS bounds the parallel compile. The compiler's
# command lines go to build/build.log; the terminal gets one line per compiled file (ninja's
# [n/N] counter and the source), and on failure the end of the log.
mkdir -p build
# One line per ninja step: "[n/N] csrc/<file>" (or "linking"); read line by line so each shows
# as soon as ninja prints it.
show_progress() {
  local line word src
  local -a words
  while IFS= read -r line; do
    case "$line" in
      "["[0-9]*/[0-9]*"] "*)
        read -r -a words <<< "$line"
        src="linking"
        for word in "${words[@]}"; do
          case "$word" in *.cpp|*.cu) src="csrc/${word##*/csrc/}" ;; esac
        done
        echo "  ${words[0]} $src" ;;
      "ninja: no work to do."*) echo "  up to date" ;;
    esac
  done
}
echo "== building torch_caffe2ops (a first build takes several minutes; full log: build/build.log)"
set +e
MAX_JOBS=${MAX_JOBS:-$(nproc)} PYTHONUNBUFFERED=1 .venv/bin/python setup.py build_ext --inplace 2>&1 \
  | tee build/build.log | show_progress
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "error|Error" build/build.log | head -n 40
  tail -n 20 build/build.log
  echo "build FAILED (full log: build/build.log)"
  exit 1
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pwd > "$site/torch_caffe2ops-checkout.pth"
.venv/bin/python -c 'import torch_caffe2ops as m; print("torch_caffe2ops", m.__version__, "built against torch", m.TORCH_VERSION)'
