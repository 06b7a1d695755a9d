#!/usr/bin/env bash
# Install the project into ./.venv (Python 3.11), fetch + verify the shipped model weights and the datasets, and
# build the default knowledge base (SQuAD v1.1 dev paragraphs, about 2 minutes of embedding the first time).
# Usage: bash scripts/install.sh [EXTRAS]   e.g. "dev" for the test tools. Safe to re-run: it only adds what is missing.
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
# llama-cpp-python builds from source once (about 7 minutes); pip's wheel cache makes later installs fast.
"${pip[@]}" install --quiet -e ".${extras:+[$extras]}"
.venv/bin/assistant models fetch
.venv/bin/assistant index build
