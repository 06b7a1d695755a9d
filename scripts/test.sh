#!/usr/bin/env bash
# Install what the tests need, then lint (ruff), type-check (mypy) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not integration and not e2e"` for the fast set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
