"""Would a yes/no check by the large model tell a passage that answers a question from one that only shares its
topic? An exploration for issue #31, on dev items only.

Usage: python bench/bench_verification.py [--n 60] [--output FILE]

Answers ``n`` questions of ``unanswerable-near-dev`` (no paragraph answers them) and ``n`` of ``facts-dev`` with the
shipped graph (escalation never, the SQuAD dev paragraphs as knowledge base), keeps the FACT turns the reader answered
(not flagged), asks the large model whether the passage the answer cites states it, and reports the probability of
"yes" for the near misses, the right answers and the wrong ones, with the AUC of near misses against right answers.
Nothing here changes the product.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

CHECK = ("Passage:\n{passage}\n\nQuestion: {question}\nProposed answer: {answer}\n\n"
         "Does the passage itself state this answer to this exact question? Reply with yes or no.")


def p_yes(model: Any, passage: str, question: str, answer: str) -> float:
    """The large model's probability that the passage states the answer (from its one-token reply)."""
    completion = model.chat([{"role": "system", "content": "You check answers against a passage. Reply yes or no."},
                             {"role": "user", "content": CHECK.format(passage=passage, question=question,
                                                                      answer=answer)}],
                            max_tokens=1, temperature=0.0)
    word = completion.text.strip().lower()
    probability = completion.token_probabilities[0] if completion.token_probabilities else 0.5
    return probability if word.startswith("yes") else 1.0 - probability


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    from assistant.api import Assistant
    from assistant.core.settings import Settings
    from eval.metrics import contains_answer
    from eval.run import squad_index_settings
    from eval.suites import suite_loaders

    settings = squad_index_settings(Settings.load(None, {"auto_fetch": True}), progress=False).model_copy(deep=True)
    settings.assistant.checkpoint_path = Path("/tmp/bench-verification/threads.sqlite")
    loaders = suite_loaders(settings.dataset_store(), progress=False)
    groups = {"near miss": loaders["unanswerable-near-dev"]().items[: args.n],
              "answerable": loaders["facts-dev"]().items[: args.n]}
    assistant = Assistant.from_settings(settings, progress=False, preload_large=True)
    large = assistant.models["large"]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for group, items in groups.items():
        for item in items:
            answer = assistant.ask(item.question, escalation="never")
            if answer.route != "FACT" or answer.not_in_documents or answer.general_knowledge:
                continue
            cited = [source for source in answer.sources if source.cited] or answer.used_sources
            text = re.sub(r"\s*\[\d+\]", "", answer.text).strip()
            if not cited or not text:
                continue
            kind = group if group == "near miss" else ("right" if contains_answer(text, item.answers) else "wrong")
            rows.append({"kind": kind, "p_yes": round(p_yes(large, cited[0].text, item.question, text), 4),
                         "answerable": answer.answerable, "confidence": answer.confidence})
    assistant.close()
    report: dict[str, Any] = {"n": args.n, "seconds": round(time.perf_counter() - started, 1), "groups": {}}
    for kind in ("near miss", "right", "wrong"):
        values = sorted(row["p_yes"] for row in rows if row["kind"] == kind)
        report["groups"][kind] = {"turns": len(values), "median_p_yes": values[len(values) // 2] if values else None,
                                  "below_0.5": sum(value < 0.5 for value in values)}
    pairs = [row for row in rows if row["kind"] in ("near miss", "right")]
    labels = [row["kind"] == "right" for row in pairs]
    if len(set(labels)) == 2:
        report["auc_p_yes"] = round(float(roc_auc_score(labels, [row["p_yes"] for row in pairs])), 3)
        report["auc_answerable"] = round(float(roc_auc_score(labels, [row["answerable"] or 0.0 for row in pairs])), 3)
    report["rows"] = rows
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: value for key, value in report.items() if key != "rows"}, indent=2))


if __name__ == "__main__":
    main()
