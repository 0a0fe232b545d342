#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite in one pytest process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
