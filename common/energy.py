"""Energy per answer: measured with codecarbon around each item an evaluation answers, estimated for each served turn.

codecarbon reads Intel RAPL counters where the machine exposes them; elsewhere (most VMs, AMD without RAPL access)
it estimates CPU power from the CPU's TDP and this process's CPU load, plus a RAM estimate. Every eval record carries
the joules of its item and the source of the figure, and the report names that source, because the two differ in
kind: a RAPL reading is a measurement, a load estimate is a model.

A served turn cannot afford a codecarbon task of its own (about 19 ms a task here, and tasks cannot overlap while two
turns run at once), so :class:`PowerModel` applies codecarbon's own load model to the turn's CPU and wall seconds:
TDP x CPU seconds / logical cores + RAM watts x wall seconds, exactly what codecarbon's process mode integrates.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

KWH_TO_JOULES = 3_600_000.0


def _offline_tracker() -> Any:
    """codecarbon's offline tracker as the project uses it everywhere: process mode, quiet, no output files."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(country_iso_code="USA", output_methods=[], log_level="error",
                                   tracking_mode="process", measure_power_secs=5)


@dataclass(frozen=True)
class PowerModel:
    """The watts codecarbon's load model assigns this process: the CPU's TDP spread over its logical cores, by CPU
    time, plus a constant RAM figure, by wall time."""

    cpu_tdp_watts: float
    cpu_count: int
    ram_watts: float
    source: str

    def joules(self, cpu_seconds: float, wall_seconds: float) -> float:
        """Estimated energy of work that used ``cpu_seconds`` of this process's CPU over ``wall_seconds``."""
        return self.cpu_tdp_watts * cpu_seconds / self.cpu_count + self.ram_watts * wall_seconds


def codecarbon_power_model() -> PowerModel | None:
    """This machine's :class:`PowerModel` from codecarbon's hardware detection (about 1.5 s here), or None when
    codecarbon is missing or reads a power counter instead (RAPL: no load model to apply to a single turn)."""
    try:
        from importlib.metadata import version

        tracker = _offline_tracker()
        tracker._ensure_hardware_ready()  # codecarbon 3.3 has no public way to detect hardware without tracking
        parts = {type(part).__name__: part for part in tracker._hardware}
        cpu, ram = parts["CPU"], parts["RAM"]
        if cpu._mode != "cpu_load" or not cpu._tdp:
            return None
        ram_watts = float(ram.total_power().W)
        return PowerModel(cpu_tdp_watts=float(cpu._tdp), cpu_count=int(cpu._cpu_count), ram_watts=ram_watts,
                          source=(f"estimate: codecarbon {version('codecarbon')} load model, {cpu._tdp:g} W TDP over "
                                  f"{cpu._cpu_count} cores by CPU time + {ram_watts:g} W RAM by wall time"))
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None


class EnergyMeter:
    """One codecarbon tracker for a run; :meth:`measure` wraps one item and fills ``energy_joules``."""

    def __init__(self) -> None:
        self._tracker: Any = None
        self.source = "unavailable"

    def __enter__(self) -> EnergyMeter:
        try:
            tracker = _offline_tracker()
        except ImportError:
            return self
        from importlib.metadata import version
        tracker.start()
        self._tracker = tracker
        modes = [getattr(part, "_mode", None) for part in getattr(tracker, "_hardware", [])]
        cpu_mode = next((mode for mode in modes if mode), "unknown")
        self.source = f"codecarbon {version('codecarbon')}, CPU {cpu_mode.replace('_', ' ')}, process mode"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._tracker is not None:
            with contextlib.suppress(Exception):
                self._tracker.stop()
            self._tracker = None

    @contextlib.contextmanager
    def measure(self, into: dict[str, Any]) -> Iterator[None]:
        """Measure the block's energy into ``into["energy_joules"]`` and ``into["energy_source"]`` (nothing is
        written when codecarbon is unavailable)."""
        if self._tracker is None:
            yield
            return
        self._tracker.start_task("item")
        try:
            yield
        finally:
            data = self._tracker.stop_task()
            energy = float(getattr(data, "energy_consumed", 0.0) or 0.0)
            into["energy_joules"] = round(energy * KWH_TO_JOULES, 3)
            into["energy_source"] = self.source
