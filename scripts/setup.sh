#!/usr/bin/env bash
# Make (or refresh) the project's virtual environment with everything the product and its tests need.
# llama.cpp (llama-cpp-python) builds from source: it needs a C/C++ compiler and cmake (installed here with
# apt-get when missing and running as root); the built wheel is cached for the next time.
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
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q -U pip
# llama.cpp built without llamafile's matrix kernels: those run only for batches of two tokens or more, so a
# batch would round differently from a token read alone, and prompt lookup's checked drafts could then write
# something other than plain decoding. The wheel is kept in a cache of its own (pip's cache does not tell
# builds with other flags apart) and installed before the package, which then finds it in place.
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/ancia-jupyter/wheels/llamafile-off"
if ! "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(b'LLAMAFILE = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then
  wheel=$(ls -t "$WHEELS"/llama_cpp_python-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    CMAKE_ARGS="-DGGML_LLAMAFILE=OFF ${CMAKE_ARGS:-}" "${PIP[@]}" wheel -q --no-deps --no-cache-dir -w "$WHEELS" \
      --no-binary llama-cpp-python "llama-cpp-python>=0.3.16"
    wheel=$(ls -t "$WHEELS"/llama_cpp_python-*.whl | head -n 1)
  fi
  "${PIP[@]}" install -q --force-reinstall --no-deps "$wheel"
  "${PIP[@]}" install -q "$wheel"  # its dependencies
fi
"${PIP[@]}" install -q -e ".[dev]"
