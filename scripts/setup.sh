#!/usr/bin/env bash
# Make (or refresh) the project's virtual environment with everything the product and its tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ANCIA_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
