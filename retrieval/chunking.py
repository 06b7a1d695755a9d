"""Split documents into chunks on paragraph and sentence boundaries, with a size limit and an overlap."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
"""Where a sentence ends: after . ! or ? (and closing quotes or brackets), before a capital, digit, quote or bracket."""


@dataclass(frozen=True)
class Span:
    """A chunk as character offsets into its document's text."""

    start: int
    end: int


def _units(text: str, max_chars: int) -> list[Span]:
    """Sentences (inside paragraphs), with any sentence longer than ``max_chars`` split between words."""
    units: list[Span] = []
    paragraph_start = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        paragraph_end = match.start() if match else len(text)
        sentence_start = paragraph_start
        ends = [m.start() for m in SENTENCE_END.finditer(text, paragraph_start, paragraph_end)] + [paragraph_end]
        for sentence_end in ends:
            units.extend(_split_long(text, sentence_start, sentence_end, max_chars))
            sentence_start = sentence_end
        paragraph_start = match.end() if match else len(text)
    return [unit for unit in units if text[unit.start : unit.end].strip()]


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    while start < end and text[start].isspace():
        start += 1
    pieces: list[Span] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        cut = cut if cut > start else start + max_chars
        pieces.append(Span(start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append(Span(start, end))
    return pieces


def chunk_text(text: str, max_chars: int = 1000, overlap_chars: int = 150) -> list[Span]:
    """Chunks of at most ``max_chars`` characters made of whole sentences where possible.

    Each chunk after the first starts with the last sentences of the previous one, up to ``overlap_chars``, so
    a fact that straddles a boundary is whole in at least one chunk. A text that fits is a single chunk.
    """
    if max_chars < 50:
        raise ValueError("max_chars must be at least 50")
    units = _units(text, max_chars)
    chunks: list[Span] = []
    first = 0
    while first < len(units):
        last = first
        while last + 1 < len(units) and units[last + 1].end - units[first].start <= max_chars:
            last += 1
        chunks.append(Span(units[first].start, units[last].end))
        if last + 1 >= len(units):
            break
        next_first = last + 1
        while next_first - 1 > first and units[last].end - units[next_first - 1].start <= overlap_chars:
            next_first -= 1
        first = next_first
    return chunks
