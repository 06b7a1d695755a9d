"""The stage a turn enters after each of its events (what the page shows instead of a bare cursor)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.stages import stage_after


@pytest.mark.parametrize(("event", "stage"), [
    ({"type": "start"}, "routing"),
    ({"type": "step", "step": "route", "detail": {"route": "FACT", "stage": "exemplars"}}, "retrieving"),
    ({"type": "step", "step": "route", "detail": {"route": "MATH", "stage": "calculator"}}, "computing"),
    ({"type": "step", "step": "route", "detail": {"route": "MATH", "stage": "exemplars"}}, "working"),
    ({"type": "step", "step": "route", "detail": {"route": "CHAT", "stage": "model"}}, "drafting"),
    ({"type": "step", "step": "retrieve", "detail": {}}, "reading"),
    ({"type": "step", "step": "answer_fact", "detail": {}}, "checking"),
    ({"type": "step", "step": "word_problem", "detail": {}}, "checking"),
    ({"type": "escalate", "reason": "unsure"}, "escalating"),
    ({"type": "token", "text": "Paris"}, None),
    ({"type": "step", "step": "check", "detail": {}}, None),
    ({"type": "step", "step": "general", "detail": {}}, None),
])
def test_each_event_starts_its_stage(event: dict[str, Any], stage: str | None) -> None:
    found = stage_after(event)
    assert (found.name if found else None) == stage
    if found:
        assert found.to_dict() == {"event": "stage", "stage": stage, "label": found.label} and found.label
