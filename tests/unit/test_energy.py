"""The per-answer energy estimate: codecarbon's process-mode load model applied to one turn's CPU and wall time."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from common.energy import PowerModel

HEADLINE = (Path(__file__).resolve().parents[2] / "docs" / "eval" / "archive" / "2026-12-02-bigbench-1.0.0"
            / "mixed-test")
# What codecarbon 3.3.2 detected on the machine of the headline run (2-vCPU AMD EPYC VM, no RAPL): its fallback TDP
# for the CPU, spread over the logical cores, and its RAM figure for a process of a few GB.
HEADLINE_MACHINE = PowerModel(cpu_tdp_watts=8.0, cpu_count=2, ram_watts=10.0, source="headline machine")


def test_the_model_is_tdp_per_core_by_cpu_time_plus_ram_by_wall_time() -> None:
    assert HEADLINE_MACHINE.joules(cpu_seconds=2.0, wall_seconds=1.0) == pytest.approx(8.0 + 10.0)
    assert HEADLINE_MACHINE.joules(cpu_seconds=0.0, wall_seconds=0.0) == 0.0


@pytest.mark.parametrize("system", ["small-only", "large-only", "large-pipeline", "routed-no-escalation"])
def test_the_estimate_reproduces_codecarbons_own_measurement_of_each_answer(system: str) -> None:
    """Each headline record carries codecarbon's measured joules (a task around the item) and the item's CPU and wall
    seconds: the estimate from the latter must give the former, per kind of question that runs a model (the
    calculator's worker is a child process, which codecarbon counts and the process's CPU time does not)."""
    results = json.loads(next(HEADLINE.glob("results_*.json")).read_text())
    sums = _bench().per_kind(results, HEADLINE_MACHINE)
    kinds = {kind for (name, kind) in sums if name == system}
    assert kinds == {"fact", "word_problem", "chat", "arithmetic"}
    for kind in kinds - {"arithmetic"}:
        estimated, measured, count = sums[(system, kind)]
        assert count > 0 and estimated == pytest.approx(measured, rel=0.01), kind


def _bench() -> ModuleType:
    """bench/bench_energy_estimate.py (a script, not a package) as a module."""
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_energy_estimate.py"
    spec = importlib.util.spec_from_file_location("bench_energy_estimate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
