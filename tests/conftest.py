"""Shared fixtures. Tests under tests/integration and tests/e2e are marked automatically."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by directory so `pytest -m "not integration and not e2e"` is the fast set."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def untrained_escalation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fakes' features (a fake embedder's scores, scripted token probabilities) mean nothing to the weights fitted on
    real runs, so tests over fake models run the untrained decision unless they pass their own weights (unit tests:
    always, tests/unit/conftest.py; end-to-end tests over fakes: by ``usefixtures``). The shipped file itself is
    checked in tests/unit/test_escalation.py and used by every test on the real models."""
    import assistant.core.escalation

    monkeypatch.setattr(assistant.core.escalation, "DEFAULT_MODEL_PATH", tmp_path / "no-escalation-model.json")
