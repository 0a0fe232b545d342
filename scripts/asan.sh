#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run.
#
# Builds the CPU extension with -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g1
# (setup.py's SANITIZE switch) into build/asan/{temp,lib} with its own venv (.venv-asan), never
# touching the editable install's build (torch_caffe2ops/_C*.so, build/editable), then runs the family
# tests, the fuzz suite and the concurrency test against it with libasan + libstdc++ preloaded.
# Any ASAN/UBSAN report fails the run (the fuzz worker dies -> a "crash" failure naming the case;
# a report in the pytest process -> non-zero exit), and the logs are scanned for reports too.
#
# Environment: MAX_JOBS (build parallelism, default 2), ASAN_VENV (default .venv-asan),
#   ASAN_PYTEST_ARGS (extra pytest args), FUZZ_CALLS / FUZZ_SEED (passed to the fuzz suite),
#   ASAN_SKIP_BUILD=1 (reuse build/asan/lib as is).
# Logs: build/asan/build.log, build/asan/test.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${ASAN_VENV:-.venv-asan}"
OUT="$ROOT/build/asan"
LIB="$OUT/lib"
mkdir -p "$OUT"
t0=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  echo "== asan: creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# What the build and the tests need: torch pinned and the build tools as in requirements-dev.txt
# (its lines but the `-e` one), and the test extra's packages from pyproject.toml (a no-op when
# already installed).
mapfile -t pkgs < <(grep -vE '^[[:space:]]*(#|-e[[:space:]]|$)' requirements-dev.txt | sed 's/[[:space:]]*#.*//')
mapfile -t test_pkgs < <("$VENV/bin/python" scripts/extra_requirements.py test)
"$VENV/bin/python" -m pip install -q "${pkgs[@]}" "${test_pkgs[@]}" 2>&1 | { grep -v "^WARNING: Location" || true; }

if [ "${ASAN_SKIP_BUILD:-0}" != "1" ]; then
  echo "== asan: building into $LIB (log: build/asan/build.log)"
  # `build` = build_py (the Python files) + build_ext (the .so and _build_info.py) into build/asan/lib.
  if ! SANITIZE=address,undefined FORCE_ONLY_CPU=1 MAX_JOBS="${MAX_JOBS:-2}" \
      "$VENV/bin/python" setup.py build --build-base "$OUT" --build-lib "$LIB" --build-temp "$OUT/temp" \
      > "$OUT/build.log" 2>&1; then
    grep -E "error|Error" "$OUT/build.log" | head -n 40 || true
    tail -n 30 "$OUT/build.log"
    echo "ASAN: build FAILED"
    exit 1
  fi
fi
t1=$(date +%s)
echo "== asan: build took $((t1 - t0))s"

LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBSTDCXX="$(gcc -print-file-name=libstdc++.so)"
# libstdc++ next to libasan, or C++ exceptions trip ASAN at __cxa_throw. Leak checking is off
# (CPython "leaks" by design). allocator_may_return_null + max_allocation_size_mb stand in for
# the fuzz worker's RLIMIT_AS (ASAN reserves terabytes of address space, so no RLIMIT_AS here):
# an attempted huge allocation becomes a C++ bad_alloc / ATen error instead of an ASAN abort.
export LD_PRELOAD="$LIBASAN $LIBSTDCXX"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=4096:detect_odr_violation=0:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export FUZZ_CALLS="${FUZZ_CALLS:-2000}"
# Run from build/asan/lib so `import torch_caffe2ops` finds the sanitized build first.
cd "$LIB"
"$ROOT/$VENV/bin/python" - "$LIB" <<'EOF'
import sys, torch_caffe2ops._C as c
assert c.__file__.startswith(sys.argv[1]), f"imported {c.__file__}, not the ASAN build in {sys.argv[1]}"
print("== asan: using", c.__file__)
EOF

echo "== asan: family tests + fuzz + concurrency (every sample from 8 threads) (log: build/asan/test.log)"
set +e
# Not under ASAN: torch.compile tests (inductor would run g++ with libasan preloaded) and the
# `slow` ones (TorchScript in fresh processes, the C++ CMake build).
"$ROOT/$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" -k "not compile" \
  "$ROOT/tests/test_batch.py" "$ROOT/tests/test_concat_split.py" "$ROOT/tests/test_dropout.py" \
  "$ROOT/tests/test_margin_rank.py" "$ROOT/tests/test_sparse_normalize.py" \
  "$ROOT/tests/test_fuzz.py" "$ROOT/tests/test_concurrency.py" \
  "$ROOT/tests/test_samples.py::test_threads_match_serial" ${ASAN_PYTEST_ARGS:-} \
  > "$OUT/test.log" 2>&1
rc=$?
set -e
t2=$(date +%s)
cd "$ROOT"
reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$OUT/test.log" || true)
tail -n 60 "$OUT/test.log"
if [ "$reports" != "0" ]; then
  echo "== asan: sanitizer reports:"
  grep -nE -A30 "ERROR: AddressSanitizer|runtime error:" "$OUT/test.log" | head -n 120
fi
summary=$(grep -E "^[0-9]+ (passed|failed)|passed|failed" "$OUT/test.log" | tail -n 1)
if [ "$rc" = "0" ] && [ "$reports" = "0" ]; then
  echo "ASAN: PASSED (no ASAN/UBSAN report; $summary; build $((t1 - t0))s, tests $((t2 - t1))s)"
  exit 0
fi
echo "ASAN: FAILED (pytest exit $rc, $reports sanitizer report(s); $summary; build $((t1 - t0))s, tests $((t2 - t1))s)"
exit 1
