"""Bootstrap intervals: for a mean, for a paired difference between systems, and for any statistic of the items.

Percentile bootstrap over items (Efron & Tibshirani), 2,000 resamples and a fixed seed, so the same results file
always gives the same intervals. Paired statistics resample the item indices once and apply them to every system,
which keeps the pairing (the difference of two systems on the same items varies much less than either alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 20261201


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval over ``n`` items."""

    estimate: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (a difference the data supports)."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        """``52.0 [45.1, 58.9]``, scaled (percentages by default)."""
        return (f"{self.estimate * scale:.{digits}f} [{self.low * scale:.{digits}f}, "
                f"{self.high * scale:.{digits}f}]")


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(columns: Sequence[Sequence[float]], statistic: Callable[..., float], *, resamples: int = RESAMPLES,
              level: float = LEVEL, seed: int = SEED) -> Interval | None:
    """The interval of ``statistic(*columns)`` over item resamples; every column is resampled with the same indices.

    Resamples where the statistic is undefined (NaN) are dropped; None when there are no items.
    """
    arrays = [np.asarray(column, dtype=float) for column in columns]
    n = len(arrays[0]) if arrays else 0
    if n == 0 or any(len(array) != n for array in arrays):
        return None
    estimate = float(statistic(*arrays))
    values = np.array([statistic(*(array[rows] for array in arrays))
                       for rows in _resample_indices(n, resamples, seed)], dtype=float)
    values = values[~np.isnan(values)]
    if not len(values) or math.isnan(estimate):
        return None
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high), n)


def _mean(values: np.ndarray) -> float:
    return float(values.mean())


def _difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(first.mean() - second.mean())


def mean_interval(values: Sequence[float], **options: Any) -> Interval | None:
    """The mean (an accuracy when ``values`` are 0/1 scores) with its interval."""
    return bootstrap([values], _mean, **options)


def paired_difference(first: Sequence[float], second: Sequence[float], **options: Any) -> Interval | None:
    """mean(first) - mean(second) over the same items, with its paired interval."""
    return bootstrap([first, second], _difference, **options)


def ratio_of_sums(numerator: Sequence[float], denominator: Sequence[float], **options: Any) -> Interval | None:
    """sum(numerator) / sum(denominator) over the same items (a FLOPs or time ratio), with its paired interval."""

    def ratio(top: np.ndarray, bottom: np.ndarray) -> float:
        total = float(bottom.sum())
        return float(top.sum()) / total if total else math.nan

    return bootstrap([numerator, denominator], ratio, **options)


def apgr_of(confidence: np.ndarray, weak: np.ndarray, strong: np.ndarray, scored: np.ndarray,
            swept: np.ndarray) -> float:
    """APGR of escalating swept turns in order of rising confidence (eval/sweep.py's definition, vectorised).

    ``weak`` and ``strong`` are the two systems' scores (0 where unscored), ``scored`` marks items with answers,
    ``swept`` the turns the threshold decides. NaN when the strong system is not better than the weak one.
    """
    n_scored = float(scored.sum())
    if n_scored == 0:
        return math.nan
    gap = float(((strong - weak) * scored).sum()) / n_scored
    total = int(swept.sum())
    if gap <= 0 or total == 0:
        return math.nan
    order = np.argsort(confidence[swept], kind="stable")
    values = confidence[swept][order]
    gains = ((strong - weak) * scored)[swept][order] / (n_scored * gap)
    cumulative = np.cumsum(gains)
    # a threshold at each distinct confidence escalates every turn below it; then every turn ("always")
    last_of_value = np.flatnonzero(np.append(values[1:] != values[:-1], True))
    shares = np.concatenate([[0.0], (last_of_value + 1) / total])
    pgrs = np.concatenate([[0.0], cumulative[last_of_value]])
    return float(np.sum((shares[1:] - shares[:-1]) * (pgrs[1:] + pgrs[:-1]) / 2))


def calibration(probabilities: Sequence[float], outcomes: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and the reliability table: predictions in ``bins`` equal-width bins, each bin's
    mean prediction against its observed rate; ECE is their gap weighted by the bin's share of items."""
    if len(probabilities) != len(outcomes):
        raise ValueError("one outcome per probability")
    table = []
    gap = 0.0
    total = len(probabilities)
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        members = [(p, o) for p, o in zip(probabilities, outcomes, strict=True)
                   if low <= p < high or (index == bins - 1 and p == 1.0)]
        if not members:
            continue
        mean_p = sum(p for p, _ in members) / len(members)
        rate = sum(o for _, o in members) / len(members)
        gap += len(members) / total * abs(mean_p - rate)
        table.append({"low": low, "high": high, "n": len(members), "mean_probability": mean_p, "observed": rate})
    return {"ece": gap if total else 0.0, "n": total, "bins": table}


def roc_auc(outcomes: Sequence[float], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: the chance a random right item scores above a random wrong one (ties count half);
    None when either class is missing."""
    positives = [score for score, outcome in zip(scores, outcomes, strict=True) if outcome >= 0.5]
    negatives = [score for score, outcome in zip(scores, outcomes, strict=True) if outcome < 0.5]
    if not positives or not negatives:
        return None
    ordered = np.sort(np.array(negatives))
    below = np.searchsorted(ordered, positives, side="left")
    ties = np.searchsorted(ordered, positives, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (len(positives) * len(negatives)))
