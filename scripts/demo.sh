#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh: venv, build with progress, version line) and runs the
# demo (examples/demo.py: every operator family, torch.compile, torch.export, TorchScript and a
# few dozen training steps of examples/ranking/). Under a minute once built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py --no-version "$@"
