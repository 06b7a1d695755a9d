"""End-to-end latency per route on the default models, and the graph's own overhead.

Usage: python bench/bench_assistant.py [--per-route N] [--output DIR]

Questions come from the mixed-dev suite (plain arithmetic, word problems, facts) and MT-bench (chat), with
escalation off so each route's own path is timed. Overhead = wall time - time inside the graph's nodes (LangGraph
scheduling and the SQLite checkpoint); node logic = node time - model calls - retrieval - calculator.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from assistant.api import Assistant
from assistant.settings import Settings
from common.stats import latency_summary
from eval.suites import mixed_items

KINDS = {"arithmetic": "plain arithmetic", "word_problem": "word problem", "fact": "factual", "chat": "chat"}




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-route", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    settings = Settings.load()
    settings.assistant.checkpoint_path = Path(tempfile.mkdtemp()) / "threads.sqlite"
    assistant = Assistant.from_settings(settings, progress=False)
    suite = mixed_items(settings.cache_dir, "dev", progress=False)
    assistant.ask("What is 1 + 1?")
    assistant.ask("Who won Super Bowl 50?", escalation="never")
    results: dict[str, Any] = {}
    for kind, label in KINDS.items():
        items = [item for item in suite if item.kind == kind][: args.per_route]
        wall, overhead, logic, routes = [], [], [], []
        for item in items:
            answer = assistant.ask(item.question, escalation="never")
            nodes_ms = sum(step["ms"] for step in answer.trace)
            model_ms = sum(usage["wall_seconds"] for usage in answer.usage) * 1000
            tools_ms = sum(step["ms"] for step in answer.trace if step["step"] in ("retrieve", "calculate", "route"))
            wall.append(answer.wall_seconds * 1000)
            overhead.append(answer.wall_seconds * 1000 - nodes_ms)
            logic.append(max(0.0, nodes_ms - model_ms - tools_ms))
            routes.append(answer.route)
        results[label] = {"n": len(items), "wall_ms": latency_summary(wall),
                          "graph_overhead_ms": latency_summary(overhead), "node_logic_ms": latency_summary(logic),
                          "routes": {r: routes.count(r) for r in set(routes)}}
        print(f"{label:<17} n={len(items):<3} wall p50 {results[label]['wall_ms']['p50']:>9.1f} ms "
              f"p95 {results[label]['wall_ms']['p95']:>9.1f} ms | graph overhead p50 "
              f"{results[label]['graph_overhead_ms']['p50']:.2f} ms | node logic p50 "
              f"{results[label]['node_logic_ms']['p50']:.2f} ms | routes {results[label]['routes']}")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_assistant.json").write_text(json.dumps(results, indent=2))
    assistant.close()


if __name__ == "__main__":
    main()
