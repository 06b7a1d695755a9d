"""Calculator latency: small expressions in-process, plain language, the worker path, and hostile inputs.

Usage: python bench/bench_calculator.py [--repeats 2000] [--output DIR]

Each group is timed call by call with perf_counter after a warm-up (the worker is started and warm first).
Hostile inputs are timed once each, in sequence, each one on the worker that the previous one left behind.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from common.stats import percentile
from tools import CalculatorError, calculate, extract_expression
from tools.worker import default_worker

SMALL = ["347 * 29", "2 + 3 * 4", "1/3 + 1/6", "15% of 240", "sqrt(144)", "2^10", "0.1 + 0.2", "round(2.675, 2)",
         "(1 + 2) * (3 + 4) - 5 / (6 - 1)", "sin(pi / 6)", "5!", "gcd(12, 18)"]
PLAIN = ["What is 347 times 29?", "what's 15% of 240", "square root of 144", "7 plus 8 divided by 2",
         "What is 697 times 205?", "What is the capital of France?"]
WORKER = ["2 ** 10000", "solve 2x + 3 = 7", "factorial(3000)", "solve x^2 - 5x + 6 = 0"]
HOSTILE = ["9**9**9", "((9**9)**9999)**9999", "factorial(10**9)", "10**10**10", "exp(10**100)",
           "sqrt(2) ** (10**9)", "solve x^7 - 3*x^2 + x - 5 = 0", "solve x^5 - x + 1 = 0",
           "__import__('os').system('touch /tmp/x')", "().__class__.__bases__"]


def _time_calls(inputs: list[str], repeats: int, plain: bool = False) -> dict[str, Any]:
    samples: list[float] = []
    for index in range(repeats):
        text = inputs[index % len(inputs)]
        started = time.perf_counter()
        expression = extract_expression(text) if plain else text
        if expression is not None:
            calculate(expression)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    total_s = sum(samples) / 1000
    return {
        "calls": repeats,
        "calls_per_s": round(repeats / total_s, 1),
        "p50_ms": round(percentile(samples, 50) or 0.0, 3),
        "p95_ms": round(percentile(samples, 95) or 0.0, 3),
        "max_ms": round(samples[-1], 3),
    }


def _time_hostile() -> list[dict[str, Any]]:
    rows = []
    for text in HOSTILE:
        started = time.perf_counter()
        try:
            calculate(text)
            outcome = "answered"
        except CalculatorError as error:
            outcome = f"{type(error).__name__}: {error}"
        rows.append({"input": text, "seconds": round(time.perf_counter() - started, 3), "outcome": outcome[:90]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    default_worker().evaluate("1 + 1")  # wait until the worker is warm
    _time_calls(SMALL, 200)
    _time_calls(PLAIN, 100, plain=True)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "small_in_process": _time_calls(SMALL, args.repeats),
        "plain_language": _time_calls(PLAIN, args.repeats, plain=True),
        "worker_path": _time_calls(WORKER, max(40, args.repeats // 50)),
        "hostile": _time_hostile(),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_calculator.json").write_text(json.dumps(results, indent=2))
    print("| group | calls | calls/s | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|")
    for group in ("small_in_process", "plain_language", "worker_path"):
        row = results[group]
        cells = [group, row["calls"], row["calls_per_s"], row["p50_ms"], row["p95_ms"], row["max_ms"]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    print("\n| hostile input | seconds | outcome |\n|---|---|---|")
    for row in results["hostile"]:
        print(f"| `{row['input']}` | {row['seconds']} | {row['outcome']} |")


if __name__ == "__main__":
    main()
