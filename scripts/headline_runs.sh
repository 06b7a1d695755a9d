#!/bin/bash
# The headline runs behind the README's figures (issues #17, #18, #19, #30): every system on mixed-test, the four
# systems the out-of-domain suite needs, and the answerability suite. Hours on two cores; run it with nothing else on the
# CPU (wall-time and energy ratios are only valid then). Interrupted, it resumes from the eval cache: records are
# keyed by the answering code's hash, so run it from a checkout whose answering code has not changed since.
#
# Usage: bash scripts/headline_runs.sh [OUTPUT_DIR] [EVAL_RUN_OPTION...]
#   (default OUTPUT_DIR: ~/.cache/small-first-assistant/headline-runs); the options go to every `eval run`, e.g.
#   `--llama-engine llama-server --workers 4` (about 0.6x the wall time here; the records of near-ties may differ
#   from a sequential run, and per-item times include waiting for a shared model: docs/BENCHMARKS.md, #36)
# From a snapshot (a `git worktree` of the commit, so editing the checkout meanwhile changes nothing):
#   PYTHON=/path/to/repo/.venv/bin/python bash /path/to/snapshot/scripts/headline_runs.sh
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-$HOME/.cache/small-first-assistant/headline-runs}
shift || true
EXTRA=("$@")
mkdir -p "$OUT"
run() {
    local name=$1; shift
    # `python -c` imports the package from this directory (the console script would import the installed one)
    "$PYTHON" -c "import sys; from assistant.cli import main; sys.exit(main(sys.argv[1:]))" eval run \
        --output "$OUT/$name" "$@" "${EXTRA[@]}" > "$OUT/$name.log" 2>&1 || echo "$name failed: see $OUT/$name.log"
}
run unanswerable-test --suite unanswerable-test --systems routed-no-escalation
run mixed-test --suite mixed-test
run ood-hotpotqa --suite ood-hotpotqa --systems routed,large-only,large-pipeline,oracle
date > "$OUT/DONE"
