"""The optional knowledge base: none by default, and one that cannot be fetched never stops the product."""

from __future__ import annotations

from pathlib import Path

import pytest

import assistant.core.knowledge_base as knowledge_base
from assistant.core.knowledge_base import ensure_knowledge_base, open_retriever
from assistant.core.settings import Settings
from common.sources import DatasetError, DatasetStore
from retrieval.squad import Paragraph, SquadDev


def _settings(tmp_path: Path, corpus: str) -> Settings:
    return Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                "retrieval": {"embedder": "fake", "knowledge_base": corpus}})


def test_there_is_no_knowledge_base_by_default(tmp_path: Path) -> None:
    assert Settings.load(None, {"cache_dir": str(tmp_path)}).retrieval.knowledge_base == "none"
    retriever = open_retriever(_settings(tmp_path, "none"), progress=False)
    assert len(retriever.store) == 0 and ensure_knowledge_base(retriever, _settings(tmp_path, "none")) is None


def test_an_unreachable_knowledge_base_is_a_warning_not_a_failed_start(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(store: DatasetStore, *, progress: bool = True) -> SquadDev:
        raise DatasetError("could not get SQuAD v2.0 dev (squad-v2.0-dev.json): no such version")

    monkeypatch.setattr(knowledge_base, "load_squad_dev", unreachable)
    retriever = open_retriever(_settings(tmp_path, "squad"), progress=False)
    assert len(retriever.store) == 0
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: the knowledge base 'squad' was not indexed") and "no such version" in warning
    assert len(warning.splitlines()) == 1


def test_the_demonstration_knowledge_base_is_indexed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paragraphs = (Paragraph("squad-dev/00/000", "Oxygen", "Oxygen is a member of the chalcogen group."),
                  Paragraph("squad-dev/00/001", "Oxygen", "Oxygen has atomic number 8."))
    calls: list[int] = []

    def loaded(store: DatasetStore, *, progress: bool = True) -> SquadDev:
        calls.append(1)
        return SquadDev(paragraphs, ())

    monkeypatch.setattr(knowledge_base, "load_squad_dev", loaded)
    settings = _settings(tmp_path, "squad")
    retriever = open_retriever(settings, progress=False)
    assert set(retriever.store.documents()) == {"squad-dev/00/000", "squad-dev/00/001"}
    assert ensure_knowledge_base(retriever, settings, progress=False) is None, "all there: nothing to add"
    assert len(calls) == 2


def test_index_build_without_a_knowledge_base_says_how_to_add_documents(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    assert main(["index", "build", "--cache-dir", str(tmp_path), "--retrieval-embedder", "fake"]) == 0
    assert "assistant index add PATH" in capsys.readouterr().out
