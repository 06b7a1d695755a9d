"""Routing accuracy on a labelled suite: accuracy with its 95% interval, confusion matrix, by source, latency.

Usage: python bench/bench_router.py [--suite routing-dev|routing-test|mixed-dev|mixed-test] [--with-model]
       [--no-thread] [--output DIR]

Labels come from ``eval.datasets.expected_route``: fact -> FACT, arithmetic and word_problem -> MATH, chat -> CHAT
except MT-bench's "math" category (calculations) -> MATH. Tune on the dev suites (their mistakes are printed);
``routing-test`` is the held-out figure (AlpacaEval, HotpotQA, arithmetic and word problems of the test split):
for test suites only counts are printed, never the questions, so nobody tunes on them. Without ``--with-model`` the
router stops at the exemplar vote (no language model); with it, split votes go to the small model. An MT-bench
follow-up turn (routing-dev) is routed as in a thread, after its first turn (``--no-thread``: alone).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from assistant.core.routing import ROUTES, CascadeRouter
from assistant.core.settings import Settings
from common.stats import percentile
from eval.datasets import expected_route, thread_first_turns
from eval.stats import mean_interval
from eval.suites import suite_loaders
from retrieval.embedders import load_embedder

SUITES = ("routing-dev", "routing-test", "mixed-dev", "mixed-test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=SUITES, default="routing-dev", dest="which")
    parser.add_argument("--with-model", action="store_true", help="let the small model settle split votes")
    parser.add_argument("--no-thread", action="store_true", help="route follow-up turns without their first turn")
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    settings = Settings.load()
    model = None
    if args.with_model:
        from models.registry import load_model

        model = load_model(settings, "small", progress=False)
    router = CascadeRouter(load_embedder(settings.retrieval.embedder), model,
                           neighbours=settings.assistant.router_neighbours,
                           min_margin=settings.assistant.router_min_margin)
    loaded = suite_loaders(settings.dataset_store(), progress=False)[args.which]()
    suite = loaded.items
    first_turns = {} if args.no_thread else thread_first_turns(settings.dataset_store(), progress=False)
    confusion: Counter[tuple[str, str]] = Counter()
    by_source: dict[str, Counter[bool]] = {}
    outcomes: list[float] = []
    stages: Counter[str] = Counter()
    latency: list[float] = []
    mistakes = []
    for item in suite:
        previous = router.route(first_turns[item.id]).route if item.id in first_turns else None
        started = time.perf_counter()
        decision = router.route(item.question, previous)
        latency.append((time.perf_counter() - started) * 1000)
        expected = expected_route(item)
        confusion[(expected, decision.route)] += 1
        outcomes.append(float(decision.route == expected))
        by_source.setdefault(item.source.split("/")[0], Counter())[decision.route == expected] += 1
        stages[decision.stage] += 1
        if decision.route != expected and loaded.split != "test":
            mistakes.append(
                {"id": item.id, "kind": item.kind, "source": item.source, "got": decision.route,
                 "question": item.question[:120]}
            )
    interval = mean_interval(outcomes)
    assert interval is not None
    result = {
        "suite": args.which,
        "split": loaded.split,
        "items": len(suite),
        "accuracy": round(interval.estimate, 4),
        "accuracy_ci": [round(interval.low, 4), round(interval.high, 4)],
        "by_source": {source: {"items": sum(counts.values()), "accuracy": round(counts[True] / sum(counts.values()), 4)}
                      for source, counts in sorted(by_source.items())},
        "confusion": {expected: {got: confusion[(expected, got)] for got in ROUTES} for expected in ROUTES},
        "stages": dict(stages),
        "latency_ms": {"p50": round(percentile(latency, 50) or 0.0, 2),
                       "p95": round(percentile(latency, 95) or 0.0, 2)},
        "with_model": args.with_model,
        "follow_ups_in_a_thread": sum(1 for item in suite if item.id in first_turns),
        "mistakes": mistakes,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    name = f"bench_router_{args.which}{'_model' if args.with_model else ''}{'_nothread' if args.no_thread else ''}.json"
    (args.output / name).write_text(json.dumps(result, indent=2))
    print(f"accuracy {interval.format(1, 4)} on {len(suite)} items ({loaded.split}); stages {dict(stages)}; "
          f"latency p50 {result['latency_ms']['p50']} ms")
    for source, part in result["by_source"].items():
        print(f"  {source:<22} {part['accuracy']:.3f} of {part['items']}")
    print("expected \\ routed  " + "  ".join(f"{route:>5}" for route in ROUTES))
    for expected in ROUTES:
        print(f"{expected:<17} " + "  ".join(f"{confusion[(expected, got)]:>5}" for got in ROUTES))
    for mistake in mistakes[:15]:
        print(f"  {mistake['kind']:<12} -> {mistake['got']:<5} {mistake['question']}")


if __name__ == "__main__":
    main()
