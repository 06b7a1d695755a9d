"""Okapi BM25 over chunk texts with a sparse term-by-chunk weight matrix (rebuilt in memory, never stored)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = """a an and are as at be by for from has have he her his i in is it its of on or she that the
their them they this to was were what when where which who whom why how with did do does you your we our not no s"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "s", "ly")


def _stem(word: str) -> str:
    """A light suffix stripper: 'played', 'playing', 'plays' -> 'play'."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            return stem + "y" if suffix in ("ies", "ied") else stem
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words removed, lightly stemmed word tokens."""
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


class BM25Index:
    """BM25 scores of a query against every chunk, as one sparse row-slice and sum."""

    def __init__(self, ids: Sequence[int], texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        counts: list[float] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for column, text in enumerate(texts):
            tokens = tokenize(text)
            lengths[column] = len(tokens)
            for term, count in Counter(tokens).items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                columns.append(column)
                counts.append(count)
        self.vocabulary = vocabulary
        term_frequency = np.asarray(counts, dtype=np.float32)
        column_index = np.asarray(columns, dtype=np.int64)
        row_index = np.asarray(rows, dtype=np.int64)
        average = float(lengths.mean()) if len(texts) else 1.0
        document_frequency = np.bincount(row_index, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log1p((len(texts) - document_frequency + 0.5) / (document_frequency + 0.5))
        norm = k1 * (1 - b + b * lengths[column_index] / max(average, 1e-9))
        weights = idf[row_index] * term_frequency * (k1 + 1) / (term_frequency + norm)
        self._weights: Any = sparse.csr_matrix(
            (weights, (row_index, column_index)), shape=(len(vocabulary), len(texts)), dtype=np.float32
        )

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (chunk id, score) pairs with a positive score, best first."""
        terms = sorted({self.vocabulary[term] for term in tokenize(query) if term in self.vocabulary})
        if not terms or not len(self.ids):
            return []
        scores = np.asarray(self._weights[terms].sum(axis=0)).ravel()
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]
