"""Decontamination: no code or prompt of the project may quote a test item or name one.

lm-evaluation-harness flags test items that share long n-grams with training or prompt text; here the "training
text" is everything a developer tunes: the router's exemplars and rules, prompts, comments. A source file leaks when
its normalised text shares an 8-word sequence with a test question, or contains a test item's id.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eval.datasets import EvalItem

NGRAM = 8
SCANNED_SUFFIXES = (".py", ".html", ".toml", ".md")
_WORD = re.compile(r"[a-z0-9]+")
# SQuAD-format ids are 24 hex digits: distinctive enough to search for on their own.
_HEX_ID = re.compile(r"^[0-9a-f]{24}$")
_TOKEN = re.compile(r"[A-Za-z0-9_:.-]+")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words after NFKC normalisation (punctuation and spacing do not matter)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words of ``text``."""
    tokens = words(text)
    return {tuple(tokens[index:index + n]) for index in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Leak:
    """A source file that quotes or names a test item."""

    path: str
    item_id: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.path}: {self.evidence} (test item {self.item_id})"


def source_files(roots: Iterable[Path]) -> list[Path]:
    """The files scanned under ``roots`` (directories searched recursively)."""
    found: set[Path] = set()
    for root in roots:
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            found.update(path for path in root.rglob("*") if path.suffix in SCANNED_SUFFIXES and path.is_file()
                         and "__pycache__" not in path.parts)
    return sorted(found)


def find_leaks(files: Iterable[Path], test_items: Iterable[EvalItem], *, n: int = NGRAM) -> list[Leak]:
    """Every (file, test item) pair where the file shares an ``n``-word sequence with the item's question or
    contains the item's id."""
    index: dict[tuple[str, ...], str] = {}
    ids: dict[str, str] = {}
    for item in test_items:
        for gram in ngrams(item.question, n):
            index.setdefault(gram, item.id)
        ids[item.id] = item.id
        bare = item.id.rsplit(":", 1)[-1]
        if _HEX_ID.match(bare):
            ids[bare] = item.id
    leaks: list[Leak] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        seen: set[str] = set()
        for gram in ngrams(text, n):
            item_id = index.get(gram)
            if item_id is not None and item_id not in seen:
                seen.add(item_id)
                leaks.append(Leak(str(path), item_id, f"shares the words {' '.join(gram)!r}"))
        for token in sorted(set(_TOKEN.findall(text))):
            item_id = ids.get(token.strip(".:-"))
            if item_id is not None and item_id not in seen:
                seen.add(item_id)
                leaks.append(Leak(str(path), item_id, f"names the id {token!r}"))
    return leaks
