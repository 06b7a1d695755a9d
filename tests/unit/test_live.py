"""Live = stored: what a reader of a streamed turn shows ends equal to the stored answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.live import Edit, LiveText


@dataclass
class _Answer:
    text: str


def _show(live: LiveText, events: list[dict[str, Any]]) -> tuple[str, list[Edit], list[str]]:
    """The shown text at the end, the edits, and every text shown on the way."""
    shown, edits, seen = live.shown, [], []
    for event in events:
        for edit in live.feed(event):
            edits.append(edit)
            shown = shown + edit.text if edit.kind == "append" else edit.text
            seen.append(shown)
    assert shown == live.shown
    return shown, edits, seen


def _route(route: str) -> dict[str, Any]:
    return {"type": "step", "step": "route", "detail": {"route": route}}


def test_a_discarded_draft_is_replaced_not_appended() -> None:
    events = [_route("FACT"), {"type": "token", "text": " 14"}, {"type": "token", "text": " days"},
              {"type": "escalate", "reason": "unsure"}, {"type": "reset", "text": ""},
              {"type": "token", "text": "10 days"}, {"type": "answer", "answer": _Answer("10 days [1]")}]
    shown, edits, seen = _show(LiveText(), events)
    assert shown == "10 days [1]" and Edit("replace", "") in edits
    assert "14 days" in seen and not any("14 days10" in text for text in seen)


def test_a_checked_general_knowledge_answer_is_shown_with_its_label() -> None:
    label = "Not in your documents; from general knowledge:"
    events = [_route("FACT"), {"type": "reset", "text": f"{label} Paris"},
              {"type": "answer", "answer": _Answer(f"{label} Paris")}]
    live = LiveText()
    first = live.feed(events[0]) + live.feed(events[1])
    assert first == [Edit("append", f"{label} Paris")]
    assert live.feed(events[2]) == [] and live.shown == f"{label} Paris"


def test_a_refusal_replaces_the_models_words() -> None:
    events = [_route("FACT"), {"type": "token", "text": "not in the documents"},
              {"type": "answer", "answer": _Answer("I could not find this in your documents.")}]
    shown, edits, _ = _show(LiveText(), events)
    assert shown == "I could not find this in your documents." and edits[-1].kind == "replace"


def test_a_reader_that_cannot_take_text_back_sees_documents_answers_only_when_final() -> None:
    events = [_route("FACT"), {"type": "token", "text": "14 days"}, {"type": "reset", "text": ""},
              {"type": "token", "text": "10 days"}, {"type": "answer", "answer": _Answer("10 days [2]")}]
    shown, edits, _ = _show(LiveText(hold_documents=True), events)
    assert edits == [Edit("append", "10 days [2]")] and shown == "10 days [2]"


def test_chat_streams_as_written_and_trailing_space_waits_for_more_text() -> None:
    live = LiveText(hold_documents=True)
    assert live.feed(_route("CHAT")) == []
    assert live.feed({"type": "token", "text": "  Hello"}) == [Edit("append", "Hello")]
    assert live.feed({"type": "token", "text": " there\n"}) == [Edit("append", " there")]
    assert live.feed({"type": "answer", "answer": _Answer("Hello there")}) == []
    assert live.shown == "Hello there"
