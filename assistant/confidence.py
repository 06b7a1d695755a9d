"""Confidence of an answer from cheap signals; below the threshold the turn escalates to the large model."""

from __future__ import annotations

import re

from retrieval.bm25 import tokenize

TOKEN_QUANTILE = 0.1


def low_quantile(probabilities: list[float], quantile: float = TOKEN_QUANTILE) -> float:
    """The ``quantile`` of per-token probabilities (a low quantile: one unsure token matters, the mean hides it)."""
    if not probabilities:
        return 0.0
    ordered = sorted(probabilities)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def strip_citations(text: str) -> str:
    """The answer without its ``[chunk id]`` citations."""
    return re.sub(r"\s*\[[^\]]*\]", "", text).strip()


def citations(text: str) -> list[str]:
    """Chunk ids cited in square brackets."""
    return re.findall(r"\[([^\]\s]+#\d+)\]", text)


def support(answer: str, evidence: str) -> float:
    """Share of the answer's content words that appear in the evidence (1.0 when the answer has none)."""
    words = set(tokenize(strip_citations(answer)))
    if not words:
        return 0.0
    found = set(tokenize(evidence))
    return len(words & found) / len(words)


def fact_confidence(token_probabilities: list[float], answer: str, evidence: str, top_dense: float | None,
                    not_found: bool) -> tuple[float, dict[str, float]]:
    """FACT: the token-probability quantile, answer/passage agreement and the top passage's similarity."""
    signals = {
        "token_p10": round(low_quantile(token_probabilities), 4),
        "support": round(support(answer, evidence), 4),
        "retrieval": round(max(0.0, min(1.0, top_dense or 0.0)), 4),
    }
    if not_found:
        return 0.0, signals | {"not_found": 1.0}
    score = 0.5 * signals["token_p10"] + 0.35 * signals["support"] + 0.15 * signals["retrieval"]
    return round(score, 4), signals


def chat_confidence(token_probabilities: list[float]) -> tuple[float, dict[str, float]]:
    """CHAT: the token-probability quantile alone."""
    value = round(low_quantile(token_probabilities), 4)
    return value, {"token_p10": value}


def agreement(values: list[str | None]) -> float:
    """Share of samples that agree with the most common successful value (0 when none succeeded)."""
    successful = [value for value in values if value is not None]
    if not successful or not values:
        return 0.0
    most = max(successful.count(value) for value in set(successful))
    return most / len(values)
