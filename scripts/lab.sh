#!/usr/bin/env bash
# Run the product: JupyterLab on the quickstart notebook, with the embedded default model fetched and loaded.
# The notebooks open from a working folder outside the clone ($ANCIA_WORKDIR, default ~/ancia-notebooks),
# copied from examples/ once: what you run and edit there (outputs, autosaves, checkpoints) stays out of git,
# and a copy you have edited is never overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${ANCIA_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
ancia models pull smollm2-135m-instruct
export ANCIA_ENABLE_MODEL_EAGER_LOAD=1
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
workdir="${ANCIA_WORKDIR:-$HOME/ancia-notebooks}"
mkdir -p "$workdir"
for notebook in examples/*.ipynb; do
  if [ ! -e "$workdir/$(basename "$notebook")" ]; then cp "$notebook" "$workdir/"; fi
done
echo "Notebooks open from $workdir (copies of examples/, kept between runs; set ANCIA_WORKDIR to move them)."
cd "$workdir"
exec jupyter lab "${extra[@]}" quickstart.ipynb "$@"
