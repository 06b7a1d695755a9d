"""Retrieval with the real shipped embedders on a small SQuAD corpus, and the default knowledge base loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.core.settings import RetrievalSettings, Settings
from retrieval.documents import Document
from retrieval.embedders import load_embedder
from retrieval.retriever import Retriever
from retrieval.squad import SquadDev, load_squad_dev

OXYGEN = "squad-dev/07/"


@pytest.fixture(scope="module")
def squad(real_settings: Settings) -> SquadDev:
    return load_squad_dev(real_settings.dataset_store(), progress=False)


def _corpus(squad: SquadDev) -> list[Document]:
    """The first 25 paragraphs of Oxygen (a dev-split article) plus 40 paragraphs from other articles."""
    chosen = [p for p in squad.paragraphs if p.doc_id.startswith(OXYGEN)][:25]
    chosen += [p for p in squad.paragraphs if not p.doc_id.startswith(OXYGEN)][::50][:40]
    return [Document(p.doc_id, p.text, p.title) for p in chosen]


def test_squad_dev_loads_with_its_checksum(squad: SquadDev) -> None:
    assert len(squad.paragraphs) == 1204 and len(squad.questions) == 11873 and len(squad.answerable) == 5928
    first = next(question for question in squad.questions if question.doc_id.startswith(OXYGEN))
    assert first.question == "The atomic number of the periodic table for oxygen?"
    assert first.answers == ("8",) and first.doc_id == "squad-dev/07/000" and first.title == "Oxygen"
    unanswerable = next(question for question in squad.questions if not question.answerable)
    assert unanswerable.answers == () and unanswerable.doc_id == "squad-dev/00/000"


@pytest.mark.parametrize("embedder_name", ["minilm", "e5-small-q4"])
def test_the_right_paragraph_is_found_for_known_questions(
    squad: SquadDev, tmp_path: Path, embedder_name: str
) -> None:
    embedder = load_embedder(embedder_name)
    vectors = embedder.embed_queries(["a question", "another question"])
    assert vectors.shape == (2, embedder.dimension) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    corpus = _corpus(squad)
    settings = RetrievalSettings(embedder=embedder_name, knowledge_base="none")
    retriever = Retriever.open(tmp_path / "index", embedder, settings)
    retriever.add_documents(corpus, progress=False)
    in_corpus = {document.doc_id for document in corpus}
    questions = [q for q in squad.answerable if q.doc_id in in_corpus][::7][:40]
    for mode in ("dense", "hybrid"):
        found = sum(q.doc_id in {hit.doc_id for hit in retriever.search(q.question, k=5, mode=mode)}  # type: ignore[arg-type]
                    for q in questions)
        assert found / len(questions) >= 0.8, (embedder_name, mode, found)
    question = "Which group of the periodic table does oxygen belong to?"
    hits = retriever.search(question, k=3)
    assert "squad-dev/07/000#0" in [hit.chunk_id for hit in hits]
    assert any("chalcogen" in hit.text for hit in hits)
    reopened = Retriever.open(tmp_path / "index", embedder, settings)
    assert [hit.chunk_id for hit in reopened.search(question, k=3)] == [hit.chunk_id for hit in hits]


def test_index_evaluate_measures_recall_in_an_index_of_its_own(real_settings: Settings,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from assistant.cli import main

    before = real_settings.index_dir().exists()
    assert main(["index", "evaluate", "--limit", "60", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 60 and result["documents"] == 1204
    assert result["recall"]["hybrid"]["@5"] >= 0.8, result["recall"]
    assert real_settings.index_dir().exists() == before, "the user's own index is left alone"
