"""How many questions the answerability model flags at each threshold, on dev results files (docs/BENCHMARKS.md,
"The escalation models, refitted"): the unanswered ones (rightly) and the answered ones (wrongly).

Usage: python bench/answerable_threshold.py RESULTS_DIR... [--weights assistant/core/escalation_model.json]

The probability is recomputed from each FACT turn's recorded features with the given weights, so a threshold can be
chosen for the model that will run. A run made with ``--assistant-answerable-threshold 0`` (the reader answers every
FACT turn) is read with the answerability each turn recorded (the weights it ran with, questions naming what no
passage holds at 0) and also shows what each threshold costs in answers: the answered turns above it that the reader
got right, and the turns the reader's answer left flagged anyway.
Dev results only (the files say their split; test files are refused).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assistant.core.escalation import DEFAULT_MODEL_PATH, EscalationModel, load_escalation_model
from eval.escalation import WEAK, item_answerable
from eval.results import latest_results, load_results

THRESHOLDS = (0.0, 0.1, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--weights", type=Path, default=DEFAULT_MODEL_PATH)
    args = parser.parse_args()
    model = load_escalation_model(args.weights)
    for location in args.results:
        document = load_results(latest_results(location))
        if document["meta"].get("split") != "dev":
            raise SystemExit(f"{location}: not a dev run")
        suite_answerable = bool(document["meta"].get("answerable", True))
        reader_always = document["meta"].get("settings", {}).get("assistant", {}).get("answerable_threshold") == 0
        turns = [(record.get("answerable") if reader_always else _recomputed(model, record),
                  item_answerable(document["items"].get(key, {}), suite_answerable), record)
                 for key, record in document["runs"].get(WEAK, {}).items()
                 if record.get("route") == "FACT" and "dense_top" in (record.get("features") or {})]
        unanswered = [(probability, record) for probability, answerable, record in turns if not answerable]
        answered = [(probability, record) for probability, answerable, record in turns if answerable]
        print(f"{document['meta'].get('suite')}: {len(unanswered)} unanswered, {len(answered)} answered FACT turns")
        for threshold in THRESHOLDS:
            def below(probability: float | None, threshold: float = threshold) -> bool:
                return probability is not None and probability < threshold

            flagged = sum(1 for probability, record in unanswered
                          if below(probability) or (reader_always and _flagged(record)))
            wrong = sum(1 for probability, record in answered
                        if below(probability) or (reader_always and _flagged(record)))
            line = (f"  {threshold}: unanswered flagged {flagged}/{len(unanswered)}, answered flagged "
                    f"{wrong}/{len(answered)}")
            if reader_always:
                right = sum(1 for probability, record in answered if not below(probability) and record.get("correct"))
                line += f", answered right {right}/{len(answered)}"
            print(line)


def _recomputed(model: EscalationModel, record: dict[str, Any]) -> float | None:
    """The answerability the given weights put on a turn; 0 where the turn named what no passage holds (the graph
    sets it so whatever the model says: ``absent_specifics``)."""
    if record.get("answerable") == 0.0:
        return 0.0
    return model.probability("answerable", record["features"])


def _flagged(record: dict[str, object]) -> bool:
    """Whether the turn ended flagged whatever the threshold (the reader's own refusal, a rule, a labelled answer)."""
    return bool(record.get("not_in_documents") or record.get("general_knowledge"))


if __name__ == "__main__":
    main()
