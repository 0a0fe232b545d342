#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the demo (examples/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py
