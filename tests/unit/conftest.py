"""Unit tests run without weights: real model construction is blocked, the cache is a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unit tests must not load real models; use FakeChatModel")

    monkeypatch.setattr("models.llama_cpp_backend.LlamaCppModel.__init__", refuse)


@pytest.fixture(autouse=True)
def _untrained(untrained_escalation: None) -> None:
    """Every unit test runs the untrained decision (see tests/conftest.py)."""
