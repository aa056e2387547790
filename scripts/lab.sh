#!/usr/bin/env bash
# Run the product: JupyterLab on the quickstart notebook, with the embedded default model fetched and loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${ANCIA_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
ancia models pull smollm2-135m-instruct
export ANCIA_ENABLE_MODEL_EAGER_LOAD=1
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
cd examples
exec jupyter lab "${extra[@]}" quickstart.ipynb "$@"
