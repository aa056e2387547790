#!/usr/bin/env bash
# Make (or refresh) the project's virtual environment with everything the product and its tests need.
# llama.cpp (llama-cpp-python) builds from source: it needs a C/C++ compiler and cmake (installed here with
# apt-get when missing and running as root); pip keeps the built wheel in its cache for the next time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ANCIA_VENV:-.venv}"
if [ "$(uname -s)" = Linux ] && ! { command -v cmake && command -v g++; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null
  else
    echo "llama.cpp builds from source: install cmake and a C/C++ compiler (e.g. apt-get install cmake g++)" >&2
  fi
fi
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
