#!/usr/bin/env bash
# Install everything and start the assistant on the default models (an interactive chat with the small tier
# until the web server lands). Extra arguments go to `assistant chat`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/assistant chat "$@"
