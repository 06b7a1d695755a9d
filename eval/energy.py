"""Energy per answer, measured with codecarbon around each item an evaluation answers.

codecarbon reads Intel RAPL counters where the machine exposes them; elsewhere (most VMs, AMD without RAPL access)
it estimates CPU power from the CPU's TDP and this process's CPU load, plus a RAM estimate. Every record carries the
joules of its item and the source of the figure, and the report names that source, because the two differ in kind:
a RAPL reading is a measurement, a load estimate is a model.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

KWH_TO_JOULES = 3_600_000.0


class EnergyMeter:
    """One codecarbon tracker for a run; :meth:`measure` wraps one item and fills ``energy_joules``."""

    def __init__(self) -> None:
        self._tracker: Any = None
        self.source = "unavailable"

    def __enter__(self) -> EnergyMeter:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            return self
        from importlib.metadata import version
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        tracker = OfflineEmissionsTracker(country_iso_code="USA", output_methods=[], log_level="error",
                                          tracking_mode="process", measure_power_secs=5)
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
