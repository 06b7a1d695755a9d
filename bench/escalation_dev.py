"""The escalation decision on a dev run: the confidence the run recorded against the shipped learned model's.

Usage: python bench/escalation_dev.py RESULTS [--model assistant/core/escalation_model.json]

RESULTS is a dev results file (or its directory) with ``routed-no-escalation`` and ``large-pipeline``. The recorded
confidences are whatever the run's code computed (the hand-weighted score when no model was shipped); the learned
ones are recomputed from the recorded features by the model. For each: AUC of the FACT confidence (right vs wrong
small-model answers), expected calibration error, APGR of the threshold sweep, and the routed system at the
threshold ``assistant eval calibrate --target-relative 0.95`` would choose. Dev only: a test file is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assistant.core.escalation import load_escalation_model
from eval.escalation import reconfidence
from eval.results import latest_results, load_results
from eval.sweep import SweepPoint, choose_threshold


def _summary(label: str, document: dict[str, Any]) -> str:
    quality = document.get("confidence") or {}
    the_sweep = document["sweep"]
    points = [SweepPoint.from_dict(point) for point in the_sweep["points"]]
    chosen = choose_threshold(points, target_accuracy=0.95 * the_sweep["strong_accuracy"],
                              total_items=len(document["items"]))
    auc, ece = quality.get("auc"), quality.get("ece")
    strong_flops = document["summaries"]["large-pipeline"]["flops"]
    line = (f"{label:<10} AUC {auc:.3f}  ECE {ece:.3f}  APGR {the_sweep['apgr']:.3f}  "
            f"weak {the_sweep['weak_accuracy']:.3f}  strong {the_sweep['strong_accuracy']:.3f}")
    if chosen is not None:
        line += (f"  | 95% of strong at threshold {chosen.threshold:.3f}: accuracy {chosen.accuracy:.3f}, "
                 f"{chosen.escalated}/{chosen.escalatable} escalated, FLOPs x{chosen.flops / strong_flops:.2f} "
                 "large-pipeline's")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    document = load_results(latest_results(args.results))
    if document["meta"].get("split") != "dev":
        raise SystemExit("a dev results file, please: choices are made on dev only")
    print(_summary("recorded", document))
    print(_summary("learned", reconfidence(document, load_escalation_model(args.model))))


if __name__ == "__main__":
    main()
