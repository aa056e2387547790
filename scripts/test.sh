#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what it needs (venv, packages, Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
bash scripts/setup.sh
VENV="${ANCIA_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
exec python -m pytest "$@"
