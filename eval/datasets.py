"""Dataset loaders shared by the evaluation suite and the default knowledge base."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eval.sources import SQUAD_DEV, ensure_bigbench_member


@dataclass(frozen=True)
class Paragraph:
    """One SQuAD context paragraph; ``doc_id`` is stable: ``squad-dev/<article>/<paragraph>``."""

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


@dataclass(frozen=True)
class SquadDev:
    """SQuAD v1.1 dev: 2,067 paragraphs (the corpus) and 10,565 questions."""

    paragraphs: tuple[Paragraph, ...]
    questions: tuple[SquadQuestion, ...]


def parse_squad(path: Path) -> SquadDev:
    """Read a SQuAD v1.1 JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: list[Paragraph] = []
    questions: list[SquadQuestion] = []
    for article_index, article in enumerate(data["data"]):
        title = str(article["title"]).replace("_", " ")
        for paragraph_index, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"squad-dev/{article_index:02d}/{paragraph_index:03d}"
            paragraphs.append(Paragraph(doc_id, title, str(paragraph["context"])))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(str(answer["text"]) for answer in qa["answers"]))
                questions.append(SquadQuestion(str(qa["id"]), str(qa["question"]), answers, doc_id))
    return SquadDev(tuple(paragraphs), tuple(questions))


def load_squad_dev(cache_dir: Path, *, progress: bool = True) -> SquadDev:
    """SQuAD v1.1 dev from the pinned BIG-bench archive (fetched, verified and cached on first use)."""
    return parse_squad(ensure_bigbench_member(cache_dir, SQUAD_DEV, progress=progress))
