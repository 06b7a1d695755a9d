#!/usr/bin/env bash
# Install the product (with its eval and examples extras) and verify the shipped weights, then serve the chat page
# and the OpenAI-compatible API on http://127.0.0.1:8000/. Extra arguments go to `assistant serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh eval,examples
exec .venv/bin/assistant serve "$@"
