"""Text helpers for confidence (citations, support) and the heuristic FACT score used only without learned weights.

The product's confidence is the learned probability of ``assistant.core.escalation``; :func:`heuristic_fact_confidence`
is used only when the loaded weights have no ``fact`` model (a weights file trained without FACT rows, or a source
tree without the shipped file)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.bm25 import tokenize

TOKEN_QUANTILE = 0.1


def low_quantile(probabilities: Sequence[float], quantile: float = TOKEN_QUANTILE) -> float:
    """The ``quantile`` of per-token probabilities, the lower of two neighbours (a low quantile: one unsure token
    matters, the mean hides it); 0 for no tokens."""
    if not probabilities:
        return 0.0
    ordered = sorted(probabilities)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


_CITATION = re.compile(r"\s*\[(?:\d{1,3}|[^\]\s]+#\d+)\]")


def strip_citations(text: str) -> str:
    """The answer without its citations: numbered markers (``[2]``) and chunk ids (``[notes.md#3]``); other square
    brackets are part of the answer (``[%f/%t]``)."""
    return _CITATION.sub("", text).strip()


def citations(text: str) -> list[str]:
    """Chunk ids cited in square brackets."""
    return re.findall(r"\[([^\]\s]+#\d+)\]", text)


def support(answer: str, evidence: str) -> float:
    """Share of the answer's content words that appear in the evidence (0 when the answer has none)."""
    words = set(tokenize(strip_citations(answer)))
    if not words:
        return 0.0
    found = set(tokenize(evidence))
    return len(words & found) / len(words)


def heuristic_fact_confidence(token_probabilities: list[float], answer: str, evidence: str, top_dense: float | None,
                              not_found: bool) -> tuple[float, dict[str, float]]:
    """FACT without a learned model: 0.5 token 10th percentile + 0.35 support + 0.15 top passage similarity (a
    hand-weighted score with no calibrated meaning)."""
    signals = {
        "token_p10": round(low_quantile(token_probabilities), 4),
        "support": round(support(answer, evidence), 4),
        "retrieval": round(max(0.0, min(1.0, top_dense or 0.0)), 4),
    }
    if not_found:
        return 0.0, signals | {"not_found": 1.0}
    score = 0.5 * signals["token_p10"] + 0.35 * signals["support"] + 0.15 * signals["retrieval"]
    return round(score, 4), signals


def agreement(values: list[str | None]) -> float:
    """Share of samples that agree with the most common successful value (0 when none succeeded)."""
    successful = [value for value in values if value is not None]
    if not successful or not values:
        return 0.0
    most = max(successful.count(value) for value in set(successful))
    return most / len(values)
