"""Routing accuracy on the labelled mixed suite: confusion matrix, stage shares, latency per question.

Usage: python bench/bench_router.py [--set suite|held-out] [--with-model] [--no-thread] [--output DIR]

Labels come from ``eval.datasets.expected_route``: fact -> FACT, arithmetic and word_problem -> MATH, chat -> CHAT
except MT-bench's "math" category (calculations) -> MATH. ``--set suite`` is the mixed eval suite (the exemplars and
shape rules were written while reading its mistakes); ``--set held-out`` is 580 other questions the router was not
tuned on. Without ``--with-model`` the router stops at the exemplar vote (no language model); with it, split votes
go to the small model. An MT-bench follow-up turn is routed as in a thread, after the router has routed its first
turn (``--no-thread``: alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from assistant.routing import ROUTES, CascadeRouter
from assistant.settings import Settings
from eval.datasets import expected_route, mixed_suite, routing_held_out, thread_first_turns
from retrieval.embedders import load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("suite", "held-out"), default="suite", dest="which")
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
    suite = (mixed_suite if args.which == "suite" else routing_held_out)(settings.cache_dir, progress=False)
    first_turns = {} if args.no_thread else thread_first_turns(settings.cache_dir, progress=False)
    confusion: Counter[tuple[str, str]] = Counter()
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
        stages[decision.stage] += 1
        if decision.route != expected:
            mistakes.append(
                {"id": item.id, "kind": item.kind, "source": item.source, "got": decision.route,
                 "question": item.question[:120]}
            )
    correct = sum(count for (expected, got), count in confusion.items() if expected == got)
    result = {
        "set": args.which,
        "items": len(suite),
        "accuracy": round(correct / len(suite), 4),
        "confusion": {expected: {got: confusion[(expected, got)] for got in ROUTES} for expected in ROUTES},
        "stages": dict(stages),
        "latency_ms": {"p50": round(statistics.median(latency), 2),
                       "p95": round(sorted(latency)[int(0.95 * (len(latency) - 1))], 2)},
        "with_model": args.with_model,
        "follow_ups_in_a_thread": sum(1 for item in suite if item.id in first_turns),
        "mistakes": mistakes,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    name = f"bench_router_{args.which}{'_model' if args.with_model else ''}{'_nothread' if args.no_thread else ''}.json"
    (args.output / name).write_text(json.dumps(result, indent=2))
    print(f"accuracy {result['accuracy']:.4f} on {len(suite)} items; stages {dict(stages)}; "
          f"latency p50 {result['latency_ms']['p50']} ms")
    print("expected \\ routed  " + "  ".join(f"{route:>5}" for route in ROUTES))
    for expected in ROUTES:
        print(f"{expected:<17} " + "  ".join(f"{confusion[(expected, got)]:>5}" for got in ROUTES))
    for mistake in mistakes[:15]:
        print(f"  {mistake['kind']:<12} -> {mistake['got']:<5} {mistake['question']}")


if __name__ == "__main__":
    main()
