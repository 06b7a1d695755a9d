"""Prometheus text-format metrics kept in memory: counters, gauges and latency histograms."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = ",".join(f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                       for key, value in labels)
    return "{" + escaped + "}"


class Metrics:
    """Thread-safe counters, gauges and histograms rendered in the Prometheus text exposition format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: dict[str, float] = {}
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}

    def _describe(self, name: str, kind: str, help_text: str) -> None:
        self._help.setdefault(name, (kind, help_text))

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to a counter."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._describe(name, "counter", help_text)
            self._counters[name][key] = self._counters[name].get(key, 0.0) + amount

    def set(self, name: str, help_text: str, value: float) -> None:
        """Set a gauge."""
        with self._lock:
            self._describe(name, "gauge", help_text)
            self._gauges[name] = value

    def observe(self, name: str, help_text: str, seconds: float, **labels: str) -> None:
        """Record one latency in a histogram (buckets in seconds)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._describe(name, "histogram", help_text)
            values = self._histograms[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    values[index] += 1
            values[-2] += 1  # count
            values[-1] += seconds  # sum

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                if kind == "counter":
                    lines += [f"{name}{_labels(key)} {value:g}" for key, value in sorted(self._counters[name].items())]
                elif kind == "gauge":
                    lines.append(f"{name} {self._gauges[name]:g}")
                else:
                    for key, values in sorted(self._histograms[name].items()):
                        for index, bound in enumerate(LATENCY_BUCKETS):
                            lines.append(f"{name}_bucket{_labels((*key, ('le', f'{bound:g}')))} {values[index]:g}")
                        lines.append(f"{name}_bucket{_labels((*key, ('le', '+Inf')))} {values[-2]:g}")
                        lines.append(f"{name}_count{_labels(key)} {values[-2]:g}")
                        lines.append(f"{name}_sum{_labels(key)} {values[-1]:g}")
        return "\n".join(lines) + "\n"
