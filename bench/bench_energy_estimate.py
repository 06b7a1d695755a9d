"""How close the per-answer energy estimate comes to codecarbon's per-item measurement, on a committed results file.

Usage: python bench/bench_energy_estimate.py [RESULTS_JSON] [--tdp W --cores N --ram W]

Every eval record carries the joules codecarbon measured around the item (a task in process mode) and the item's CPU
and wall seconds. The served answer's estimate applies codecarbon's load model to the latter (common/energy.py); this
prints both, per system and kind of question, as a Markdown table. Without ``--tdp``, the figures codecarbon detects
on this machine are used (they must be the machine that produced the results for the comparison to mean anything).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common.energy import PowerModel, codecarbon_power_model

DEFAULT_RESULTS = (Path(__file__).resolve().parents[1] / "docs" / "eval" / "archive" / "2026-12-02-bigbench-1.0.0"
                   / "mixed-test")


def per_kind(results: dict[str, Any], power: PowerModel) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(system, kind) -> (estimated joules, codecarbon's joules, items), summed over the records that have both."""
    sums: dict[tuple[str, str], tuple[float, float, int]] = {}
    for system, records in results["runs"].items():
        for record in records.values():
            if record.get("energy_joules") is None:
                continue
            estimated, measured, count = sums.get((system, record["kind"]), (0.0, 0.0, 0))
            sums[(system, record["kind"])] = (estimated + power.joules(record["cpu_seconds"], record["wall_seconds"]),
                                              measured + record["energy_joules"], count + 1)
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=None)
    parser.add_argument("--tdp", type=float, default=None, help="CPU TDP in watts (default: codecarbon's figure)")
    parser.add_argument("--cores", type=int, default=None)
    parser.add_argument("--ram", type=float, default=None, help="RAM watts (default: codecarbon's figure)")
    args = parser.parse_args()
    path = args.results or next(DEFAULT_RESULTS.glob("results_*.json"))
    detected = codecarbon_power_model()
    if args.tdp is not None:
        power = PowerModel(args.tdp, args.cores or 1, args.ram or 0.0, "given")
    elif detected is not None:
        power = detected
    else:
        raise SystemExit("codecarbon gives no load model here (RAPL?); pass --tdp, --cores and --ram")
    print(f"{path.name}; {power.source}\n")
    print("| system | kind | items | estimate J / answer | codecarbon J / answer | ratio |")
    print("|---|---|---|---|---|---|")
    for (system, kind), (estimated, measured, count) in per_kind(json.loads(path.read_text()), power).items():
        print(f"| {system} | {kind} | {count} | {estimated / count:.2f} | {measured / count:.2f} | "
              f"{estimated / measured:.3f} |")


if __name__ == "__main__":
    main()
