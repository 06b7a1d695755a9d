"""The one percentile definition every report and benchmark uses (linear interpolation, numpy's default)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` percentile (0-100) with linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """``{"p50", "p95", "max", "n"}`` of latencies, rounded; empty for no values."""
    if not values:
        return {}
    return {"p50": round(percentile(values, 50) or 0.0, digits), "p95": round(percentile(values, 95) or 0.0, digits),
            "max": round(max(values), digits), "n": len(values)}
