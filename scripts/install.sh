#!/usr/bin/env bash
# Install the project into ./.venv (Python 3.11) and fetch + verify the shipped model weights. With EXTRAS "dev" (the
# test tools) it also fetches + verifies every evaluation dataset, which the tests use; the product needs none.
# Usage: bash scripts/install.sh [EXTRAS]   e.g. "dev" for the test tools. Safe to re-run: it only adds what is missing.
# The cache (weights, datasets, indexes) is ASSISTANT_CACHE_DIR, by default ~/.cache/small-first-assistant;
# ASSISTANT_DATASETS_DIR names a folder of local dataset copies for offline installs (docs/eval/PROTOCOL.md).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
# The CPU build of torch first: otherwise sentence-transformers pulls a multi-GB CUDA build.
"${pip[@]}" install --quiet "torch==2.13.0"
# llama.cpp's native build includes Intel AMX, which some virtual machines list but fault on: build for the
# vector extensions the CPU lists instead (scripts/llama_cmake_args.sh). CMAKE_ARGS from the environment wins.
export CMAKE_ARGS="${CMAKE_ARGS:-$(bash scripts/llama_cmake_args.sh)}"
# llama-cpp-python builds from source once (about 7 minutes); pip's wheel cache makes later installs fast.
"${pip[@]}" install --quiet -e ".${extras:+[$extras]}"
.venv/bin/assistant models fetch
# A wheel cached by an earlier build (other flags, another CPU) can crash here: drop it from the cache, rebuild once.
smoke=(.venv/bin/assistant generate "Say OK." --model small --max-tokens 2)
if ! "${smoke[@]}" >/dev/null 2>&1; then
  echo "llama-cpp-python failed a 2-token generation; rebuilding it for this CPU (about 7 minutes)" >&2
  "${pip[@]}" cache remove llama_cpp_python >/dev/null 2>&1 || true
  "${pip[@]}" install --quiet --force-reinstall --no-deps \
    "llama-cpp-python==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
  "${smoke[@]}" >/dev/null || { echo "error: llama-cpp-python still fails on this CPU (CMAKE_ARGS=$CMAKE_ARGS)" >&2; exit 1; }
fi
if [[ ",$extras," == *",dev,"* ]]; then
  .venv/bin/assistant eval datasets --fetch
fi
