"""Fact accuracy and escalation rate against the evidence budget and the sentence-selection method, on dev items.

Usage: python bench/evidence_budget.py [--limit N] [--budgets 300,500,...] [--methods terms,embedding,both]
                                       [--reference terms:700] [--output DIR]

Every fact item of the ``mixed-dev`` suite (up to ``--limit``) is answered by the small model alone (escalation
off) over the default knowledge base, once per (method, budget); the turn would have escalated when its confidence
is under the threshold. Reports exact match and F1 with 95% bootstrap intervals, the paired difference in exact
match against the ``--reference`` configuration (today's default) over the same items, the would-escalate rate,
prompt tokens sent and evaluated, and latency. Dev items only: this is how the budget is chosen (issue #19).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.api import Assistant
from assistant.core.settings import Settings
from common.stats import percentile
from eval.metrics import score
from eval.run import squad_index_settings
from eval.stats import mean_interval, paired_difference
from eval.suites import mixed_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--budgets", default="300,500,700,1000,1400")
    parser.add_argument("--methods", default="terms,embedding,both")
    parser.add_argument("--reference", default="terms:700", help="method:budget the others are compared with")
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    settings = squad_index_settings(Settings.load())
    settings.assistant.checkpoint_path = Path(tempfile.mkdtemp()) / "threads.sqlite"
    assistant = Assistant.from_settings(settings, progress=False)
    items = [item for item in mixed_items(settings.dataset_store(), "dev", progress=False) if item.kind == "fact"]
    items = items[: args.limit]
    threshold = settings.assistant.threshold
    assistant.ask("What is oxygen?", escalation="never", persist=False)
    rows: list[dict[str, Any]] = []
    args.output.mkdir(parents=True, exist_ok=True)
    reference_method, reference_budget = args.reference.split(":")
    configurations = [(reference_method, int(reference_budget))] + [
        (method, int(budget)) for method in args.methods.split(",") for budget in args.budgets.split(",")
        if (method, int(budget)) != (reference_method, int(reference_budget))]
    reference: list[float] = []
    for method, budget in configurations:
        settings.assistant.evidence_method = method
        settings.assistant.evidence_chars = budget
        exact, f1, escalate, sent, evaluated, walls = [], [], [], [], [], []
        started = time.perf_counter()
        for item in items:
            answer = assistant.ask(item.question, escalation="never", persist=False)
            result = score("fact", answer.text, item.answers)
            exact.append(float(result.exact_match or 0.0))
            f1.append(float(result.f1 or 0.0))
            escalate.append(float(answer.confidence < threshold))
            sent.append(answer.cost.total.prompt_tokens)
            evaluated.append(answer.cost.total.evaluated_prompt_tokens)
            walls.append(answer.wall_seconds)
        interval = mean_interval(exact)
        reference = reference or exact
        difference = paired_difference(exact, reference)
        row = {"method": method, "budget_chars": budget, "n": len(items),
               "exact_match": sum(exact) / len(exact), "exact_match_ci": interval.to_dict() if interval else None,
               "exact_match_vs_reference": difference.to_dict() if difference else None,
               "exact_match_by_item": dict(zip((item.id for item in items), exact, strict=True)),
               "f1": sum(f1) / len(f1), "would_escalate": sum(escalate) / len(escalate),
               "prompt_tokens_sent": sum(sent) / len(sent), "prompt_tokens_evaluated": sum(evaluated) / len(sent),
               "wall_p50_s": percentile(walls, 50), "seconds": time.perf_counter() - started}
        rows.append(row)
        ci, versus = row["exact_match_ci"] or {}, row["exact_match_vs_reference"] or {}
        print(f"{method:<9} {budget:>5} chars | EM {100 * row['exact_match']:5.1f} "
              f"[{100 * ci.get('low', 0):.1f}, {100 * ci.get('high', 0):.1f}] "
              f"(vs {args.reference}: {100 * versus.get('estimate', 0):+.1f} [{100 * versus.get('low', 0):+.1f}, "
              f"{100 * versus.get('high', 0):+.1f}]) F1 {100 * row['f1']:5.1f} | "
              f"would escalate {100 * row['would_escalate']:5.1f}% | prompt tokens {row['prompt_tokens_sent']:.0f} "
              f"sent, {row['prompt_tokens_evaluated']:.0f} evaluated | p50 {row['wall_p50_s']:.2f} s", flush=True)
        (args.output / "evidence_budget.json").write_text(json.dumps(
            {"suite": "mixed-dev facts", "threshold": threshold, "reference": args.reference, "rows": rows},
            indent=2))
    assistant.close()


if __name__ == "__main__":
    main()
