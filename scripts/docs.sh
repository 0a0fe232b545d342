#!/usr/bin/env bash
# Builds the documentation site (docs/) into build/docs/html with Sphinx, warnings as errors.
# Needs the extension built (bash scripts/setup.sh): the API pages are generated from the
# docstrings of the imported package. Open build/docs/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
if ! "$py" -c "import sphinx, myst_parser" 2>/dev/null; then
  # the docs extra's packages (pyproject.toml); scripts/setup.sh installs them into .venv
  mapfile -t docs_pkgs < <("$py" scripts/extra_requirements.py docs)
  "$py" -m pip install --quiet --disable-pip-version-check "${docs_pkgs[@]}"
fi
"$py" -m sphinx -W --keep-going -q -b html docs build/docs/html "$@"
echo "docs: $(pwd)/build/docs/html/index.html"
