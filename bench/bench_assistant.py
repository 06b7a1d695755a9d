"""End-to-end latency per route on the default models, and the graph's own overhead.

Usage: python bench/bench_assistant.py [--per-route N] [--interleave] [--prompt-cache N] [--output DIR]

Questions come from the mixed-dev suite (plain arithmetic, word problems, facts) and MT-bench (chat), with
escalation off so each route's own path is timed. Overhead = wall time - time inside the graph's nodes (LangGraph
scheduling and the SQLite checkpoint); node logic = node time - model calls - retrieval - calculator.
``--interleave`` asks the routes in turn (a fact, a chat turn, a word problem, ...) as a real session does, instead
of one route after another; ``--prompt-cache`` sets how many evaluated prompt heads each model keeps (0: off).
Sent and evaluated prompt tokens are reported per route.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from assistant.api import Assistant
from assistant.core.settings import Settings
from common.stats import latency_summary
from eval.run import squad_index_settings
from eval.suites import mixed_items

KINDS = {"arithmetic": "plain arithmetic", "word_problem": "word problem", "fact": "factual", "chat": "chat"}




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-route", type=int, default=10)
    parser.add_argument("--interleave", action="store_true", help="ask the routes in turn, not one after another")
    parser.add_argument("--prompt-cache", type=int, default=None, help="llama.prompt_cache_entries (0: off)")
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    settings = squad_index_settings(Settings.load())
    settings.assistant.checkpoint_path = Path(tempfile.mkdtemp()) / "threads.sqlite"
    if args.prompt_cache is not None:
        settings.llama.prompt_cache_entries = args.prompt_cache
    assistant = Assistant.from_settings(settings, progress=False)
    suite = mixed_items(settings.dataset_store(), "dev", progress=False)
    assistant.ask("What is 1 + 1?")
    assistant.ask("What is oxygen?", escalation="never")
    chosen = {label: [item for item in suite if item.kind == kind][: args.per_route] for kind, label in KINDS.items()}
    order = ([(label, items[index]) for index in range(args.per_route) for label, items in chosen.items()
              if index < len(items)] if args.interleave else
             [(label, item) for label, items in chosen.items() for item in items])
    measured: dict[str, dict[str, list[float]]] = {label: {"wall": [], "overhead": [], "logic": [], "sent": [],
                                                           "evaluated": []} for label in chosen}
    routes: dict[str, list[str]] = {label: [] for label in chosen}
    for label, item in order:
        answer = assistant.ask(item.question, escalation="never")
        nodes_ms = sum(step["ms"] for step in answer.trace)
        model_ms = sum(call.wall_seconds for call in answer.usage) * 1000
        tools_ms = sum(step["ms"] for step in answer.trace if step["step"] in ("retrieve", "calculate", "route"))
        values = measured[label]
        values["wall"].append(answer.wall_seconds * 1000)
        values["overhead"].append(answer.wall_seconds * 1000 - nodes_ms)
        values["logic"].append(max(0.0, nodes_ms - model_ms - tools_ms))
        values["sent"].append(float(answer.cost.total.prompt_tokens))
        values["evaluated"].append(float(answer.cost.total.evaluated_prompt_tokens))
        routes[label].append(answer.route)
    results: dict[str, Any] = {"interleave": args.interleave,
                               "prompt_cache_entries": settings.llama.prompt_cache_entries}
    for label, values in measured.items():
        sent, evaluated = sum(values["sent"]), sum(values["evaluated"])
        results[label] = {"n": len(values["wall"]), "wall_ms": latency_summary(values["wall"]),
                          "graph_overhead_ms": latency_summary(values["overhead"]),
                          "node_logic_ms": latency_summary(values["logic"]),
                          "prompt_tokens_sent_mean": sent / max(1, len(values["sent"])),
                          "prompt_tokens_evaluated_mean": evaluated / max(1, len(values["evaluated"])),
                          "routes": {r: routes[label].count(r) for r in set(routes[label])}}
        row = results[label]
        print(f"{label:<17} n={row['n']:<3} wall p50 {row['wall_ms']['p50']:>9.1f} ms "
              f"p95 {row['wall_ms']['p95']:>9.1f} ms | prompt tokens sent {row['prompt_tokens_sent_mean']:.0f}, "
              f"evaluated {row['prompt_tokens_evaluated_mean']:.0f} | graph overhead p50 "
              f"{row['graph_overhead_ms']['p50']:.2f} ms | node logic p50 "
              f"{row['node_logic_ms']['p50']:.2f} ms | routes {row['routes']}")
    args.output.mkdir(parents=True, exist_ok=True)
    name = f"bench_assistant{'_interleaved' if args.interleave else ''}_cache{settings.llama.prompt_cache_entries}"
    (args.output / f"{name}.json").write_text(json.dumps(results, indent=2))
    assistant.close()


if __name__ == "__main__":
    main()
