"""SQuAD-format corpora: SQuAD v1.1 dev (the default knowledge base) and the SQuADShifts sets (nyt, reddit,
amazon), fetched from the pinned BIG-bench archive, verified and cached (``common.sources``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common.sources import SQUAD_DEV, SQUAD_SHIFTS, DatasetError, ensure_bigbench_member


@dataclass(frozen=True)
class Paragraph:
    """One SQuAD-format context paragraph; ``doc_id`` is stable: ``<prefix>/<article>/<paragraph>``."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class SquadQuestion:
    """One SQuAD question, its reference answers, and the paragraph that holds them."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str
    title: str = ""


@dataclass(frozen=True)
class SquadDev:
    """A SQuAD-format set: SQuAD v1.1 dev (2,067 paragraphs, 10,565 questions) or a SQuADShifts set."""

    paragraphs: tuple[Paragraph, ...]
    questions: tuple[SquadQuestion, ...]


def parse_squad(path: Path, prefix: str = "squad-dev") -> SquadDev:
    """Read a SQuAD v1.1-format JSON file; paragraph ids start with ``prefix``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: list[Paragraph] = []
    questions: list[SquadQuestion] = []
    for article_index, article in enumerate(data["data"]):
        title = str(article["title"]).replace("_", " ")
        for paragraph_index, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{prefix}/{article_index:02d}/{paragraph_index:03d}"
            paragraphs.append(Paragraph(doc_id, title, str(paragraph["context"])))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(str(answer["text"]) for answer in qa["answers"]))
                questions.append(SquadQuestion(str(qa["id"]), str(qa["question"]), answers, doc_id, title))
    return SquadDev(tuple(paragraphs), tuple(questions))


def load_squad_dev(cache_dir: Path, *, progress: bool = True) -> SquadDev:
    """SQuAD v1.1 dev from the pinned BIG-bench archive (fetched, verified and cached on first use)."""
    return parse_squad(ensure_bigbench_member(cache_dir, SQUAD_DEV, progress=progress))


SHIFT_NAMES = tuple(SQUAD_SHIFTS)


def load_squad_shift(cache_dir: Path, name: str, *, progress: bool = True) -> SquadDev:
    """A SQuADShifts set (``nyt``, ``reddit`` or ``amazon``; ``new_wiki`` is reserved and never loaded)."""
    if name not in SQUAD_SHIFTS:
        raise DatasetError(f"no SQuADShifts set {name!r}", f"use one of {', '.join(SHIFT_NAMES)}")
    return parse_squad(ensure_bigbench_member(cache_dir, SQUAD_SHIFTS[name], progress=progress),
                       prefix=f"squadshifts-{name}")
