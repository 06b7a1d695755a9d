"""Send the model only what answers the question: the best sentences of the retrieved chunks, within a budget.

The prototype sent whole paragraphs and the small model's prompts cost more than the large model answering
closed-book. Here each retrieved chunk is split into sentences (a table into rows read with their header, a list
into items: ``evidence_units`` in retrieval/markdown.py), every sentence is scored, and the best sentences are kept,
in their original order, until the character budget is spent. Scores (``method``): ``terms``, the question
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

from assistant.core.confidence import citations, strip_citations, support
from retrieval.bm25 import tokenize
from retrieval.markdown import evidence_units, kinded_evidence_units, sentences
from retrieval.retriever import Hit

__all__ = ["Evidence", "EvidenceMethod", "SentenceSimilarity", "cite", "echoes_question", "numbered",
           "select_evidence", "sentence_scores", "sentences", "supporting_quote", "unsupported"]

EvidenceMethod = Literal["terms", "embedding", "both"]
SentenceSimilarity = Callable[[str, Sequence[str]], Sequence[float]]
"""(question, sentences) -> one similarity per sentence (the embedder's cosine)."""



@dataclass(frozen=True)
class Evidence:
    """The sentences kept from one retrieved chunk."""

    chunk_id: str
    title: str
    text: str
    score: float
    section: str = ""


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


def fitted(unit: str, limit: int) -> str:
    """``unit`` cut at a word to at most ``limit`` characters, "…" marking the cut.

    A table row longer than the whole evidence budget is cut to fit it: it was skipped, and with it the one row
    holding the answer; its first cells name the row. Other units are not cut: a long code line matching many question
    words took the whole budget (docs-dev, docs/BENCHMARKS.md)."""
    if len(unit) <= limit:
        return unit
    head = unit[:max(1, limit - 1)]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"


def _structured(text: str) -> bool:
    """Whether a chunk has lines of its own (markdown blocks, rows, items) rather than one paragraph of prose."""
    return "\n" in text.strip()


def select_evidence(question: str, hits: list[Hit], budget_chars: int = 400, max_chunks: int = 3,
                    window: int = 1, method: EvidenceMethod = "terms",
                    similarity: SentenceSimilarity | None = None, row_floor: float = 0.0) -> list[Evidence]:
    """The most relevant sentences (with ``window`` neighbours each side in prose; a structured chunk's rows and items
    alone, and a table's rows only when scoring at least ``row_floor`` of the best unit) from the top chunks, within
    budget.

    ``method`` ``embedding`` or ``both`` needs ``similarity``; without it the term scores are used."""
    candidates: list[tuple[float, int, int, str]] = []
    chunk_sentences: list[list[str]] = []
    table_rows: set[tuple[int, int]] = set()
    # a structured chunk's rows, items and code lines stand alone: no neighbours (they filled the budget with rows
    # around the one that mattered); a prose sentence keeps its neighbours, which it may refer to
    structured = [_structured(hit.text) for hit in hits[:max_chunks]]
    for rank, hit in enumerate(hits[:max_chunks]):
        kinded = kinded_evidence_units(hit.text)
        split = [fitted(text, budget_chars - 1) if kind == "table" else text for kind, text in kinded]
        table_rows.update((rank, position) for position, (kind, _) in enumerate(kinded) if kind == "table")
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
    best = scored[0][0]
    for score, rank, position in scored:
        if score <= 0 and chosen:
            break
        if (rank, position) in table_rows and score < row_floor * best:
            continue
        spread = 0 if structured[rank] else window
        block = [(rank, p) for p in range(position - spread, position + spread + 1)
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
            # a structured chunk's rows and items one per line: run together, "Date: 14 September Holiday: ..."
            # would blur which cell belongs to which row
            separator = "\n" if structured[rank] else " "
            text = separator.join(chunk_sentences[rank][p] for p in positions)
            evidence.append(Evidence(hit.chunk_id, hit.title, text, hit.score, hit.section))
    return evidence


def cite(answer: str, evidence: list[Evidence]) -> tuple[str, list[str]]:
    """The answer without citation marks, and the ids of the chunks supporting it: those the model cited among the
    ones it was shown, else the one that supports the answer best (most of its words), so a small model need not
    spend its attention on the citation format."""
    shown = {item.chunk_id: item for item in evidence}
    bare = strip_citations(answer)
    chosen = [chunk_id for chunk_id in dict.fromkeys(citations(answer)) if chunk_id in shown]
    if not chosen:
        best = max(evidence, key=lambda item: support(bare, item.text), default=None)
        chosen = [best.chunk_id] if best is not None and support(bare, best.text) > 0 else []
    return bare, chosen


_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f](?=\d{3}\b)")


def numbers(text: str) -> set[str]:
    """The digit runs of ``text`` ("12.8.1" -> 12, 8, 1), thousands separators dropped ("1,000" -> 1000)."""
    return set(_NUMBER.findall(_THOUSANDS.sub("", text)))


def unsupported(answer: str, evidence: list[Evidence]) -> bool:
    """Whether the answer did not come from the passages the reader was shown (a yes or no aside): none of them holds
    any of its content words ("13" servers, read from nowhere; in the dev runs behind the shipped confidence weights
    none of 29 such answers was right), or it holds a number none of them holds ("Debian 9" from passages that name
    no release)."""
    bare = strip_citations(answer)
    if _YES_NO.match(bare) or not tokenize(bare):
        return False
    if all(support(bare, item.text) == 0 for item in evidence):
        return True
    shown = set().union(*(numbers(f"{item.title} {item.section} {item.text}") for item in evidence))
    return not numbers(bare) <= shown


_CHOICE = re.compile(r"\bor\b", re.IGNORECASE)


def echoes_question(answer: str, question: str) -> bool:
    """Whether the answer only repeats a phrase of the question ("SQL" to "Which version added the SQL output
    format?"): that is not an answer, whatever the passages say. A question offering a choice ("X or Y?") is left
    alone. In the dev runs (docs-dev, 300 facts-dev, unanswerable-dev, unanswerable-near-dev) none of 40 such
    answers was right."""
    bare = " ".join(strip_citations(answer).lower().split()).strip(" .,;:!?\"'")
    if not bare or _CHOICE.search(question):
        return False
    return f" {bare} " in f" {' '.join(question.lower().split()).strip(' .,;:!?')} "


def supporting_quote(answer: str, text: str) -> str:
    """The sentence (table row, list item) of a chunk's ``text`` that holds most of the answer's words, as the chunk
    writes it (so a reader can find and mark it there)."""
    units = evidence_units(text) or [text]
    best = max(units, key=lambda unit: (support(answer, unit), -len(unit)))
    return written_as(best, text)


def written_as(unit: str, text: str) -> str:
    """``unit`` (markup stripped, a table row read with its header) as it is written in ``text``: itself when it is
    there, the same words across other spacing, else the line of ``text`` sharing most of its words."""
    if unit in text:
        return unit
    words = unit.split()
    spaced = re.search(r"\s+".join(re.escape(word) for word in words), text) if words else None
    if spaced:
        return spaced.group(0)
    wanted = set(tokenize(unit))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return max(lines, key=lambda line: len(wanted & set(tokenize(line))), default=unit)


def numbered(answer: str, cited: list[str], sources: list[dict[str, object]]) -> str:
    """The answer with a numbered marker per cited chunk: ``[n]`` is the n-th of ``sources``."""
    positions = {str(source.get("chunk_id")): number for number, source in enumerate(sources, start=1)}
    markers = [f"[{positions[chunk_id]}]" for chunk_id in cited if chunk_id in positions]
    return f"{answer} {''.join(markers)}" if markers else answer
