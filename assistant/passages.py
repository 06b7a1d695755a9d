"""Send the model only what answers the question: the best sentences of the retrieved chunks, within a budget.

The prototype sent whole paragraphs and the small model's prompts cost more than the large model answering
closed-book. Here each retrieved chunk is split into sentences, every sentence is scored by the question words it
contains (BM25-style idf weights over the retrieved sentences, plus a bonus for the chunk's retrieval rank), and the
best sentences are kept, in their original order, until the character budget is spent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from assistant.confidence import citations, strip_citations, support
from retrieval.bm25 import tokenize
from retrieval.retriever import Hit

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True)
class Evidence:
    """The sentences kept from one retrieved chunk."""

    chunk_id: str
    title: str
    text: str
    score: float


def _sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in _SENTENCE.split(text) if sentence.strip()]


def select_evidence(question: str, hits: list[Hit], budget_chars: int = 700, max_chunks: int = 3,
                    window: int = 1) -> list[Evidence]:
    """The most relevant sentences (with ``window`` neighbours each side) from the top chunks, within budget."""
    question_terms = set(tokenize(question))
    candidates: list[tuple[float, int, int, str]] = []
    chunk_sentences: list[list[str]] = []
    for rank, hit in enumerate(hits[:max_chunks]):
        sentences = _sentences(hit.text)
        chunk_sentences.append(sentences)
        for position, sentence in enumerate(sentences):
            candidates.append((0.0, rank, position, sentence))
    if not candidates:
        return []
    frequency = Counter(term for _, _, _, sentence in candidates for term in set(tokenize(sentence)))
    scored = []
    for _, rank, position, sentence in candidates:
        terms = set(tokenize(sentence))
        overlap = sum(math.log1p(len(candidates) / frequency[term]) for term in terms & question_terms)
        scored.append((overlap / (1 + 0.15 * rank), rank, position))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    chosen: set[tuple[int, int]] = set()
    used = 0
    for score, rank, position in scored:
        if score <= 0 and chosen:
            break
        block = [(rank, p) for p in range(position - window, position + window + 1)
                 if 0 <= p < len(chunk_sentences[rank]) and (rank, p) not in chosen]
        cost = sum(len(chunk_sentences[r][p]) + 1 for r, p in block)
        if used + cost > budget_chars:
            block = [(rank, position)] if (rank, position) not in chosen else []
            cost = sum(len(chunk_sentences[r][p]) + 1 for r, p in block)
            if not block or used + cost > budget_chars:
                continue
        chosen.update(block)
        used += cost
    evidence = []
    for rank, hit in enumerate(hits[:max_chunks]):
        positions = sorted(p for r, p in chosen if r == rank)
        if positions:
            text = " ".join(chunk_sentences[rank][p] for p in positions)
            evidence.append(Evidence(hit.chunk_id, hit.title, text, hit.score))
    return evidence


def cite(answer: str, evidence: list[Evidence]) -> str:
    """The answer with its source: the model's citations of chunks it was shown, else the chunk that supports the
    answer best (most of its words), so a small model need not spend its attention on the citation format."""
    shown = {item.chunk_id for item in evidence}
    valid = [chunk_id for chunk_id in citations(answer) if chunk_id in shown]
    bare = strip_citations(answer)
    if valid:
        return f"{bare} " + " ".join(f"[{chunk_id}]" for chunk_id in dict.fromkeys(valid))
    best = max(evidence, key=lambda item: support(bare, item.text), default=None)
    if best is None or support(bare, best.text) == 0:
        return bare
    return f"{bare} [{best.chunk_id}]"
