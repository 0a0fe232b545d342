#!/usr/bin/env bash
# Creates .venv (if missing) with the pinned torch and the build tools, then installs this
# checkout into it with `pip install --no-build-isolation -e ".[test,docs]"` (editable: Python
# changes need no reinstall; the extras' packages come with it). Both steps are read from
# requirements-dev.txt. Re-running it only recompiles what changed: setup.py keeps the editable
# build's objects under build/editable for ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
echo "== installing requirements-dev.txt into .venv"
# Step 1: the pinned torch and the build tools (every line but the `-e` one), torch first of all:
# setup.py imports it.
mkdir -p build
grep -vE '^[[:space:]]*-e[[:space:]]' requirements-dev.txt > build/requirements-pre.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r build/requirements-pre.txt
# Step 2 (below): the `-e` line, e.g. `-e .[test,docs]` (read into an array: no globbing).
read -r -a project < <(grep -E '^[[:space:]]*-e[[:space:]]' requirements-dev.txt)
# Release flags (-O3, no debug info); MAX_JOBS bounds the parallel compile. The compiler's
# command lines go to build/build.log; the terminal gets one line per compiled file (ninja's
# [n/N] counter and the source), and on failure the end of the log.
# One line per ninja step: "[n/N] csrc/<file>" (or "linking"); read line by line so each shows
# as soon as ninja prints it.
show_progress() {
  local line word src
  local -a words
  while IFS= read -r line; do
    line="${line#"${line%%[![:space:]]*}"}"  # pip -v indents the build's output
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
# Earlier versions of this script put the checkout on the path with a hand-written .pth; the
# editable install replaces it.
rm -f "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torch_caffe2ops-checkout.pth"
echo "== building torch_caffe2ops (a first build takes several minutes; full log: build/build.log)"
set +e
# -v: pip passes the build's output through (ninja's [n/N] lines). The extras' packages are
# installed with it; torch==<pinned> is already satisfied by step 1, so nothing else is fetched.
MAX_JOBS=${MAX_JOBS:-$(nproc)} PYTHONUNBUFFERED=1 .venv/bin/python -m pip install -v --no-build-isolation \
  --disable-pip-version-check "${project[@]}" 2>&1 | tee build/build.log | show_progress
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "error|Error" build/build.log | head -n 40
  tail -n 20 build/build.log
  echo "build FAILED (full log: build/build.log)"
  exit 1
fi
# Imported from outside the checkout: the editable install, not the current folder, finds it.
venv_python=$PWD/.venv/bin/python
(cd / && "$venv_python" -c 'import torch_caffe2ops as m; print("torch_caffe2ops", m.__version__, "built against torch", m.TORCH_VERSION)')
