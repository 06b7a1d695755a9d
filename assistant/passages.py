"""Send the model only what answers the question: the best sentences of the retrieved chunks, within a budget.

The prototype sent whole paragraphs and the small model's prompts cost more than the large model answering
closed-book. Here each retrieved chunk is split into sentences, every sentence is scored, and the best sentences are
kept, in their original order, until the character budget is spent. Scores (``method``): ``terms``, the question
words a sentence contains (BM25-style idf weights over the retrieved sentences); ``embedding``, the embedder's
cosine between the question and the sentence; ``both``, their sum after scaling each to its best sentence. Every
score is discounted by the chunk's retrieval rank.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from assistant.confidence import citations, strip_citations, support
from retrieval.bm25 import tokenize
from retrieval.retriever import Hit

EvidenceMethod = Literal["terms", "embedding", "both"]
SentenceSimilarity = Callable[[str, Sequence[str]], Sequence[float]]
"""(question, sentences) -> one similarity per sentence (the embedder's cosine)."""

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True)
class Evidence:
    """The sentences kept from one retrieved chunk."""

    chunk_id: str
    title: str
    text: str
    score: float


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (after . ! or ? and before a capital, digit, quote or bracket)."""
    return [sentence.strip() for sentence in _SENTENCE.split(text) if sentence.strip()]


def _term_scores(question: str, sentences: list[str]) -> list[float]:
    question_terms = set(tokenize(question))
    frequency = Counter(term for sentence in sentences for term in set(tokenize(sentence)))
    return [sum(math.log1p(len(sentences) / frequency[term]) for term in set(tokenize(sentence)) & question_terms)
            for sentence in sentences]


def _scaled(scores: Sequence[float]) -> list[float]:
    best = max(scores, default=0.0)
    return [max(score, 0.0) / best if best > 0 else 0.0 for score in scores]


def sentence_scores(question: str, sentences: list[str], method: EvidenceMethod = "terms",
                    similarity: SentenceSimilarity | None = None) -> list[float]:
    """How relevant each sentence is to the question, by ``method`` (see the module's docstring)."""
    if method == "terms" or similarity is None:
        return _term_scores(question, sentences)
    cosines = [float(value) for value in similarity(question, sentences)]
    if method == "embedding":
        return cosines
    return [terms + meaning for terms, meaning in zip(_scaled(_term_scores(question, sentences)), _scaled(cosines),
                                                      strict=True)]


def select_evidence(question: str, hits: list[Hit], budget_chars: int = 400, max_chunks: int = 3,
                    window: int = 1, method: EvidenceMethod = "terms",
                    similarity: SentenceSimilarity | None = None) -> list[Evidence]:
    """The most relevant sentences (with ``window`` neighbours each side) from the top chunks, within budget.

    ``method`` ``embedding`` or ``both`` needs ``similarity``; without it the term scores are used."""
    candidates: list[tuple[float, int, int, str]] = []
    chunk_sentences: list[list[str]] = []
    for rank, hit in enumerate(hits[:max_chunks]):
        split = sentences(hit.text)
        chunk_sentences.append(split)
        for position, sentence in enumerate(split):
            candidates.append((0.0, rank, position, sentence))
    if not candidates:
        return []
    relevance = sentence_scores(question, [sentence for _, _, _, sentence in candidates], method, similarity)
    scored = [(value / (1 + 0.15 * rank), rank, position)
              for value, (_, rank, position, _) in zip(relevance, candidates, strict=True)]
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
