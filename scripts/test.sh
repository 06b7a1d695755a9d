#!/usr/bin/env bash
# Install what the tests need, then lint (ruff), type-check (mypy) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not integration and not e2e"` for the fast set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
# The llama-server engine's tests run the real server: built once from the pinned source into a build cache beside
# pip's wheel cache (about 10 minutes the first time on 2 cores; nothing afterwards).
bash scripts/build_llama_server.sh
# The browser tests drive Debian's chromium, the storage tests start Debian's PostgreSQL 15 (tests/postgres.py), the
# reference deployment's test runs haproxy (deploy/run.sh); install what is missing (needs root or sudo).
missing=()
{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || missing+=(chromium chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql-15)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache  # layers: models/, retrieval/, tools/ never import assistant/ or eval/ (pyproject.toml)
.venv/bin/python -m pytest "$@"
